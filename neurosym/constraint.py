"""Knowledge as a training constraint: the allowed tuples of a relation.

A relation over A input symbols and one observed label is given as its allowed tuples
``[R, A + 1]`` (columns: the symbol of input 1, ..., input A, then the label). For an example with
per-input distributions ``p_1 .. p_A`` over K symbols and an observed label ``y``, the probability
that the predicted symbols form an allowed tuple with ``y`` is the exact weighted sum

    P(y) = sum over allowed (s_1, .., s_A, y) of  p_1(s_1) * ... * p_A(s_A)

and the loss is ``-log P(y)``. Nothing in here knows what the relation means: digit addition is the
tuples ``(a, b, a + b)``, and any other relation is other tuples.

Scaling: the exact sum costs ``O(B * R * A)`` time and ``O(chunk * A)`` memory per step (tuples are
processed in chunks of ``chunk_size``), with R up to ``K^A``; for two inputs and K <= 1000 (R <= 1e6)
that is fine. When R exceeds ``exact_limit`` the loss switches to a beam approximation: each input
keeps its ``beam`` most probable symbols, the ``beam^A`` combinations per example are looked up in the
sorted table of allowed tuples (``searchsorted``), and only allowed combinations among them are
summed. The beam sum is a lower bound of the exact ``P(y)`` that is tight once the model is confident.
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from neurosym.errors import ConfigError, NonFiniteError, ShapeError


def _as_tuples(tuples) -> Tensor:
    table = torch.as_tensor(tuples, dtype=torch.long)
    if table.dim() != 2 or table.shape[1] < 2:
        raise ConfigError(f"allowed tuples must have shape [R, A + 1] with A >= 1, got {list(table.shape)}")
    if table.shape[0] == 0:
        raise ConfigError("the relation has no allowed tuples")
    if (table < 0).any():
        raise ConfigError("allowed tuples hold negative symbol indices")
    return torch.unique(table, dim=0)


class TupleConstraint(nn.Module):
    """Negative log-probability that the predicted symbols and the label form an allowed tuple.

    Args:
        tuples: allowed tuples ``[R, A + 1]`` (list of lists or int tensor): input symbols, then label.
        num_symbols: K, the size of each input's symbol distribution (default: max symbol + 1).
        num_labels: L, the number of label values (default: max label + 1).
        exact_limit: largest R evaluated exactly; above it the beam approximation takes over.
        beam: symbols kept per input by the approximation.

    Shapes:
        log_probs ``[B, A, K]`` (log-distributions over symbols per input), labels ``[B]`` -> scalar.
    """

    def __init__(
        self,
        tuples,
        num_symbols: int | None = None,
        num_labels: int | None = None,
        exact_limit: int = 1_000_000,
        beam: int = 8,
        chunk_size: int = 65_536,
    ) -> None:
        super().__init__()
        table = _as_tuples(tuples)
        self.arity = table.shape[1] - 1
        max_symbol = int(table[:, :-1].max())
        self.num_symbols = num_symbols or max_symbol + 1
        if max_symbol >= self.num_symbols:
            raise ConfigError(f"a tuple uses symbol {max_symbol}, but num_symbols is {self.num_symbols}")
        self.num_labels = num_labels or int(table[:, -1].max()) + 1
        self.exact = table.shape[0] <= exact_limit
        self.beam, self.chunk_size = beam, chunk_size
        self.register_buffer("tuples", table, persistent=False)
        # Mixed-radix ids of whole tuples, sorted, for the beam approximation's membership test.
        radix = torch.tensor([self.num_symbols] * self.arity + [self.num_labels], dtype=torch.long)
        weights = torch.cat([torch.cumprod(radix.flip(0), 0).flip(0)[1:], torch.ones(1, dtype=torch.long)])
        self.register_buffer("radix_weights", weights, persistent=False)
        self.register_buffer("tuple_ids", torch.sort(table @ weights).values, persistent=False)

    @property
    def num_tuples(self) -> int:
        return self.tuples.shape[0]

    def _check(self, log_probs: Tensor, labels: Tensor | None = None) -> None:
        if log_probs.dim() != 3 or log_probs.shape[1] != self.arity or log_probs.shape[2] != self.num_symbols:
            raise ShapeError(
                f"constraint log_probs: expected [B, {self.arity}, {self.num_symbols}], got {list(log_probs.shape)}"
            )
        if labels is not None and labels.shape != log_probs.shape[:1]:
            raise ShapeError(f"constraint labels: expected [{log_probs.shape[0]}], got {list(labels.shape)}")

    def tuple_log_probs(self, log_probs: Tensor, tuples: Tensor) -> Tensor:
        """``[B, A, K]`` x ``[R, A + 1]`` -> ``[B, R]``: log-probability of each tuple's input symbols."""
        total = log_probs.new_zeros(log_probs.shape[0], tuples.shape[0])
        for position in range(self.arity):
            total = total + log_probs[:, position, :].index_select(1, tuples[:, position])
        return total

    def label_log_probs(self, log_probs: Tensor) -> Tensor:
        """``[B, A, K]`` -> ``[B, L]``: log P(label) for every label value (exact)."""
        self._check(log_probs)
        log_probs = log_probs.float()
        out = log_probs.new_full((log_probs.shape[0], self.num_labels), float("-inf"))
        for chunk in self.tuples.split(self.chunk_size):
            scores = self.tuple_log_probs(log_probs, chunk)  # (B, R_c)
            # logsumexp per label: shift by the row max, scatter-add the exponentials.
            shift = scores.max(dim=1, keepdim=True).values.clamp(min=-1e30)
            sums = log_probs.new_zeros(out.shape).index_add_(1, chunk[:, -1], (scores - shift).exp())
            out = torch.logaddexp(out, sums.log() + shift)
        return out

    def predict(self, log_probs: Tensor) -> Tensor:
        """``[B, A, K]`` -> ``[B]``: the most probable label."""
        return self.label_log_probs(log_probs).argmax(-1)

    def forward(self, log_probs: Tensor, labels: Tensor) -> Tensor:
        self._check(log_probs, labels)
        if (labels < 0).any() or (labels >= self.num_labels).any():
            raise ConfigError(f"labels must be in [0, {self.num_labels}), got values outside that range")
        log_probs = log_probs.float()
        if (log_probs.isnan() | (log_probs == float("inf"))).any():  # -inf is a symbol of probability 0
            raise NonFiniteError("TupleConstraint: its log_probs input holds NaN or +infinity; check the concept layer")
        if self.exact:
            log_p = self._exact(log_probs, labels)
        else:
            log_p = self._beam(log_probs, labels)
        if torch.isinf(log_p).any():
            raise NonFiniteError(
                "constraint: an observed label has no allowed tuple (or none in the beam); "
                "check that the relation covers every label"
            )
        return -log_p.mean()

    def _exact(self, log_probs: Tensor, labels: Tensor) -> Tensor:
        result = log_probs.new_full(labels.shape, float("-inf"))
        for chunk in self.tuples.split(self.chunk_size):
            scores = self.tuple_log_probs(log_probs, chunk)  # (B, R_c)
            allowed = chunk[:, -1].unsqueeze(0) == labels.unsqueeze(1)  # (B, R_c)
            scores = scores.masked_fill(~allowed, float("-inf"))
            result = torch.logaddexp(result, torch.logsumexp(scores, dim=1))
        return result

    def _beam(self, log_probs: Tensor, labels: Tensor) -> Tensor:
        top_lp, top_idx = log_probs.topk(min(self.beam, self.num_symbols), dim=-1)  # (B, A, b)
        combos = torch.tensor(
            list(itertools.product(range(top_idx.shape[-1]), repeat=self.arity)), device=log_probs.device
        )  # (b^A, A)
        positions = torch.arange(self.arity, device=log_probs.device)
        symbols = top_idx[:, positions, combos]  # (B, b^A, A)
        scores = top_lp[:, positions, combos].sum(-1)  # (B, b^A)
        ids = symbols @ self.radix_weights[:-1] + labels.unsqueeze(1)  # (B, b^A)
        where = torch.searchsorted(self.tuple_ids, ids).clamp(max=self.tuple_ids.numel() - 1)
        allowed = self.tuple_ids[where] == ids
        return torch.logsumexp(scores.masked_fill(~allowed, float("-inf")), dim=1)
