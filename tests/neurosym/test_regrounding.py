"""Re-grounding: a consistently misnamed concept layer is renamed to the order the labels call for,
in the layer and in the optimizer's state, and training calls it where the config says; and the best
of several starts, chosen by the probe's training loss, is the one that goes on."""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F

from neurosym.concepts.gumbel import GumbelConcepts
from neurosym.concepts.vq import VectorQuantizer
from neurosym.errors import ConfigError
from neurosym.group_task import GroupTask, label_groups
from neurosym.regrounding import best_code_order, reorder_rows
from neurosym.tasks import SymbolData
from neurosym.train import TrainConfig, fit
from concept_models import NamedConcepts  # noqa: E402  (tests/ is on sys.path)


# Two near-symmetries of multi-digit addition that trap training: d -> d + 5 keeps every sum digit
# mod 10, and swapping neighbours keeps every parity; no single swap of codes gets out of either.
SHIFTED = [5, 6, 7, 8, 9, 0, 1, 2, 3, 4]
NEIGHBOURS_SWAPPED = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8]


def misnamed_groups(chain, n: int, naming: list[int], groups: int, seed: int = 0):
    """Soft concept distributions ``[G, 2n, 10]`` whose codes name symbol s as ``naming[s]``, and the labels."""
    constraint = chain(n)
    generator = torch.Generator().manual_seed(seed)
    symbols = torch.randint(0, 10, (groups * 2 * n,), generator=generator)
    labels, kept = label_groups(constraint, symbols, torch.arange(groups * 2 * n).reshape(groups, 2 * n))
    codes = torch.tensor(naming)[symbols]
    logits = torch.randn(len(symbols), 10, generator=generator) + 2.0 * F.one_hot(codes, 10)
    return constraint, logits.log_softmax(-1)[kept], labels


@pytest.mark.parametrize("n,naming", [(2, SHIFTED), (4, NEIGHBOURS_SWAPPED), (4, SHIFTED)])
def test_misnamed_codes_are_renamed_to_the_symbols_the_labels_call_for(adder_chain, n, naming):
    constraint, log_probs, labels = misnamed_groups(adder_chain, n, naming, groups=128)
    order, fits = best_code_order(constraint.log_likelihood, log_probs, labels)
    # new code j = old code order[j]; symbol s had old code naming[s], so it must now be code s
    assert order[torch.arange(10)].tolist() == naming
    renamed = constraint.log_likelihood(log_probs[..., order], labels).mean()
    assert renamed > constraint.log_likelihood(log_probs, labels).mean() + 1.0
    # one mean log-likelihood per random start of the channel search: best_code_order's default restarts
    assert fits.shape == (inspect.signature(best_code_order).parameters["restarts"].default,) == (8,)


def test_well_named_codes_keep_their_order(adder_chain):
    constraint, log_probs, labels = misnamed_groups(adder_chain, 3, list(range(10)), groups=128)
    order, _ = best_code_order(constraint.log_likelihood, log_probs, labels)
    assert order.tolist() == list(range(10))


@pytest.mark.parametrize("layer", [GumbelConcepts(8, 10), VectorQuantizer(8, 10, ema=False)])
def test_reordering_a_layer_renames_its_codes_and_the_optimizer_state(layer):
    layer.eval()
    x = torch.randn(32, 1, 8, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(layer.parameters(), lr=1e-2)
    layer.train()
    out = layer(x)
    (out.aux_loss - out.log_probs[..., 3].mean()).backward()  # any loss that moves the codes' rows apart
    optimizer.step()
    layer.eval()
    before = layer(x)
    moments = {id(p): optimizer.state[p]["exp_avg"].clone() for p in layer.parameters() if p in optimizer.state}
    order = torch.tensor(SHIFTED)
    reorder_rows(layer.code_tensors(), order, optimizer)
    after = layer(x)
    assert torch.equal(after.codes, torch.argsort(order)[before.codes])
    assert torch.allclose(after.log_probs, before.log_probs[..., order], atol=1e-5)
    checked = 0
    for tensor in layer.code_tensors():
        if isinstance(tensor, torch.nn.Parameter) and id(tensor) in moments:
            assert moments[id(tensor)].abs().sum() > 0
            assert torch.equal(optimizer.state[tensor]["exp_avg"], moments[id(tensor)][order])
            checked += 1
    assert checked >= 1


def Misnamer(naming: list[int]) -> NamedConcepts:  # noqa: N802  (reads as the class it builds)
    """A concept model over one-hot symbol inputs ``[B, 10]`` whose readout starts misnamed."""
    return NamedConcepts(naming)


def test_training_renames_a_misnamed_model_where_the_config_says(tmp_path, adder_chain):
    constraint = adder_chain(2)
    generator = torch.Generator().manual_seed(0)
    symbols = torch.randint(0, 10, (800,), generator=generator)
    data = SymbolData(F.one_hot(symbols, 10), symbols)
    task = GroupTask(data, data, constraint, seed=0)
    model = Misnamer(SHIFTED)
    config = TrainConfig(epochs=1, batch_size=40, lr=1e-3, warmup_steps=0, device="cpu", reground_at=[0.5])
    result = fit(model, task, config, tmp_path / "run", resume=False, progress=False)
    assert result.history[-1]["code_reorders"] == 1
    assert result.metrics["concept_acc"] > 0.99


def test_reground_points_outside_the_run_and_tasks_without_labels_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="reground_at"):
        TrainConfig(epochs=2, reground_at=[3.0])
    with pytest.raises(ConfigError, match="reground_at"):
        TrainConfig(epochs=2, reground_at=[0.0])

    class NoLabels:
        def steps_per_epoch(self, batch_size):
            return 1

    with pytest.raises(ConfigError, match="no code order to re-ground"):
        fit(Misnamer(list(range(10))), NoLabels(), TrainConfig(epochs=1, device="cpu", reground_at=[1]),
            tmp_path / "run", resume=False, progress=False)


def test_the_start_that_explains_the_labels_best_goes_on_in_the_callers_model(tmp_path, adder_chain):
    symbols = torch.randint(0, 10, (800,), generator=torch.Generator().manual_seed(0))
    data = SymbolData(F.one_hot(symbols, 10), symbols)
    task = GroupTask(data, data, adder_chain(2), seed=0)
    model = Misnamer(SHIFTED)  # start 0 falls in the near-symmetry; the restarts are named right
    config = TrainConfig(epochs=1, batch_size=20, lr=1e-3, warmup_steps=0, device="cpu", probe_starts=2, probe_epochs=0.5)
    result = fit(model, task, config, tmp_path / "run", resume=False, progress=False,
                 restart=lambda: Misnamer(list(range(10))))
    assert result.history[0]["probe_start"] == 1
    assert result.history[0]["probe_loss_1"] == result.history[0]["probe_loss"] < result.history[0]["probe_loss_0"]
    assert result.metrics["concept_acc"] > 0.99
    assert torch.equal(model.concept.to_logits.weight.argmax(1), torch.arange(10))  # the caller's object holds it


def test_the_probe_and_the_loop_draw_each_epoch_from_one_seed(tmp_path, adder_chain):
    """Every start of the probe trains on epoch 0's batches, and the winner goes on with them."""
    from neurosym.loop import epoch_seed

    drawn = []

    class Recording(GroupTask):
        def batches(self, epoch, generator, batch_size, **shard):
            drawn.append((epoch, generator.initial_seed()))
            return super().batches(epoch, generator, batch_size, **shard)

    symbols = torch.randint(0, 10, (400,), generator=torch.Generator().manual_seed(0))
    task = Recording(SymbolData(F.one_hot(symbols, 10), symbols), SymbolData(F.one_hot(symbols, 10), symbols),
                     adder_chain(2), seed=0)
    config = TrainConfig(epochs=2, batch_size=20, seed=5, warmup_steps=0, device="cpu", probe_starts=3, probe_epochs=0.5)
    fit(Misnamer(SHIFTED), task, config, tmp_path / "run", resume=False, progress=False,
        restart=lambda: Misnamer(list(range(10))))
    assert drawn == [(0, epoch_seed(5, 0))] * 4 + [(1, epoch_seed(5, 1))]  # three starts, then the loop


def test_several_starts_need_a_way_to_build_the_model(tmp_path, adder_chain):
    symbols = torch.arange(40) % 10
    task = GroupTask(SymbolData(F.one_hot(symbols, 10), symbols), SymbolData(F.one_hot(symbols, 10), symbols),
                     adder_chain(1), seed=0)
    with pytest.raises(ConfigError, match="probe_starts"):
        fit(Misnamer(list(range(10))), task, TrainConfig(epochs=1, batch_size=4, device="cpu", probe_starts=2),
            tmp_path / "run", resume=False, progress=False)
    with pytest.raises(ConfigError, match="probe_epochs"):
        TrainConfig(probe_starts=2, probe_epochs=1.5)
