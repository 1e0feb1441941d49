"""Re-grounding: the order of a concept layer's codes that best explains the training labels.

A concept layer trained through a query constraint is grounded by position: code i stands for
symbol i. Early in training the network can settle into clusters that are right but named wrong:
multi-digit addition has near-symmetries (d -> d + 5 mod 10 keeps every sum digit mod 10; swapping
neighbouring digits keeps every parity) that only the carries break, and a run that falls into one
keeps a wrong grounding for good, since no small step of gradient descent renames a whole cluster.
Re-grounding looks for the renaming directly: a code -> symbol channel fitted to the labels from
several random starts (``best_code_order``; a swap-by-swap search cannot leave these traps), then
renames the codes in the layer (and in the optimizer's moment estimates) so training goes on from the
better grounding.
This is what alignment does after training, done during it while it can still change the outcome.
``Regrounding`` is the training loop's hook that does it at the points ``train.reground_at`` names.

Shape legend: G groups, A inputs per group, K codes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from neurosym.callbacks import TrainingCallback
from neurosym.errors import ConfigError
from neurosym.loop import Loop, concept_layers


def best_code_order(log_likelihood: Callable[[Tensor, Tensor], Tensor], log_probs: Tensor, labels: Tensor,
                    restarts: int = 8, steps: int = 25, lr: float = 0.2, seed: int = 0) -> tuple[Tensor, Tensor]:
    """The renaming of codes that best explains ``labels``: ``order`` ``[K]`` (new code j = old code
    ``order[j]``) and the mean log-likelihood per restart ``[R]``.

    A swap-by-swap search cannot leave a wrong grounding: each single swap of a consistently misnamed
    model explains the labels worse. So the search is over a channel instead: a code -> symbol
    matrix ``M`` ``[K, K]`` (rows softmax-normalised), the concept distributions pushed through it
    (``log p'(s) = logsumexp_c log p(c) + log M[c, s]``) and fitted to the labels by Adam from
    ``restarts`` random starts at once (a tiny model, so restarts are cheap and the basins of the
    near-symmetries are left behind); the best start's ``M`` gives the order by a Hungarian match.

    Shapes: ``log_probs`` ``[G, A, K]``, ``labels`` ``[G, E]``; ``log_likelihood(log_probs, labels)``
    gives one value per group ``[G]``.
    """
    from scipy.optimize import linear_sum_assignment

    groups, arity, num_codes = log_probs.shape
    generator = torch.Generator().manual_seed(seed)
    weights = torch.randn(restarts, num_codes, num_codes, generator=generator).requires_grad_()
    optimizer = torch.optim.Adam([weights], lr=lr)
    repeated = labels.repeat(restarts, *([1] * (labels.dim() - 1)))
    with torch.enable_grad():
        for _ in range(steps):
            channel = weights.log_softmax(-1)  # (R, K codes, K symbols)
            pushed = torch.logsumexp(log_probs[None, :, :, :, None] + channel[:, None, None], dim=-2)  # (R, G, A, K)
            fit = log_likelihood(pushed.reshape(restarts * groups, arity, num_codes), repeated)
            fit = fit.reshape(restarts, groups).mean(1)
            optimizer.zero_grad()
            (-fit.sum()).backward()
            optimizer.step()
    best = weights[int(fit.argmax())].detach().log_softmax(-1)
    codes, symbols = linear_sum_assignment(best.numpy(), maximize=True)
    order = torch.empty(num_codes, dtype=torch.long)
    order[torch.as_tensor(symbols)] = torch.as_tensor(codes)
    return order, fit.detach()


def reorder_rows(tensors: Iterable[Tensor], order: Tensor, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Put row ``order[j]`` of each tensor at row j, in place, and the same for each one's
    optimizer state (Adam's moments) so the next steps continue as if the codes had always been so."""
    for tensor in tensors:
        index = order.to(tensor.device)
        with torch.no_grad():
            tensor.copy_(tensor[index])
        state = optimizer.state.get(tensor, {}) if optimizer is not None and isinstance(tensor, nn.Parameter) else {}
        for value in state.values():
            if isinstance(value, Tensor) and value.shape[:1] == tensor.shape[:1] and value.dim() == tensor.dim():
                value.copy_(value[index])


def is_identity(order: Tensor) -> bool:
    return bool((order == torch.arange(len(order))).all())


class Regrounding(TrainingCallback):
    """Rename the codes to the order the task finds best after the steps ``train.reground_at`` names
    (in epochs: 0.25 is a quarter into the first); the epoch's row counts the renamings in
    ``code_reorders``. Needs a task that can find the order (``reground``: a query-labelled task)."""

    def __init__(self, loop: Loop) -> None:
        if not hasattr(loop.task, "reground"):
            raise ConfigError("train.reground_at needs a task labelled through a query (task.knowledge with groups); "
                              f"{type(loop.task).__name__} has no code order to re-ground")
        self.steps = {max(1, round(point * loop.steps_per_epoch)) for point in loop.config.reground_at}
        self.reorders = 0

    def pre_epoch(self, loop: Loop) -> None:
        self.reorders = 0

    def after_steps(self, loop: Loop, steps: int) -> None:
        """The model has taken its first ``steps`` steps elsewhere (the probe): rename once if any
        point falls within them."""
        if any(step <= steps for step in self.steps):
            self.reorders += reground(loop.model, loop.task, loop.start.optimizer, loop.device)

    def on_batch(self, loop: Loop, step: int) -> None:
        if step + 1 in self.steps:
            self.reorders += reground(loop.model, loop.task, loop.start.optimizer, loop.device)

    def metrics(self, loop: Loop) -> dict[str, float]:
        return {"code_reorders": self.reorders}


def reground(model: nn.Module, task, optimizer: torch.optim.Optimizer, device: torch.device) -> int:
    """Rename the codes of ``model``'s concept layers to the order ``task`` finds best (1), or leave
    them (0); the optimizer's moments follow the rows."""
    order = task.reground(model, device)
    if order is None:
        return 0
    for layer in concept_layers(model):
        reorder_rows(layer.code_tensors(), order, optimizer)
    return 1
