"""neurosym.consistency: expected plausibility, the two terms, and the task wrapper (off by default)."""

from __future__ import annotations

import pytest
import torch

from neurosym.consistency import (
    ConsistencyConfig, ConsistencyTask, code_vectors, consistency_tables, expected_plausibility,
    geometry_loss, relation_loss, tuple_consistency,
)
from neurosym.errors import ConfigError, ShapeError
from neurosym.gnn import RelationScorer
from neurosym.model import ConceptTransformer
from neurosym.tasks import RelationTask, SymbolData


def test_expected_plausibility_is_the_double_sum():
    torch.manual_seed(0)
    table = torch.rand(3, 3, 2)
    probs = torch.softmax(torch.randn(4, 2, 3), -1)
    relations = torch.tensor([0, 1, 1, 0])
    expected = torch.stack([
        sum(probs[b, 0, i] * probs[b, 1, j] * table[i, j, relations[b]] for i in range(3) for j in range(3))
        for b in range(4)])
    assert torch.allclose(expected_plausibility(probs.log(), table, relations), expected, atol=1e-6)


def test_relation_loss_rewards_plausible_symbols_and_skips_unlabelled_pairs():
    table = torch.zeros(2, 2, 1)
    table[0, 1, 0] = 1.0  # only (0, 1) is plausible
    good = torch.tensor([[[0.0, -20.0], [-20.0, 0.0]]])  # predicts (0, 1)
    bad = torch.tensor([[[-20.0, 0.0], [0.0, -20.0]]])  # predicts (1, 0)
    holds = torch.tensor([True])
    assert relation_loss(good, table, torch.tensor([0]), holds) < 1e-3
    assert relation_loss(bad, table, torch.tensor([0]), holds) > 5
    assert relation_loss(bad, table, torch.tensor([0]), ~holds) < 1e-3  # "does not hold" flips it
    assert relation_loss(bad, table, torch.tensor([-1]), holds) == 0
    with pytest.raises(ShapeError):
        relation_loss(torch.zeros(1, 3, 2), table, torch.tensor([0]), holds)


def test_geometry_loss_is_zero_when_codes_follow_the_graph_and_has_gradients():
    gnn = torch.randn(4, 6)
    _, geometry = consistency_tables(gnn, RelationScorer(1, 6), torch.arange(4))
    assert geometry_loss(gnn @ torch.linalg.qr(torch.randn(6, 6))[0], geometry) < 1e-8  # rotation-invariant
    codes = torch.randn(4, 5, requires_grad=True)
    geometry_loss(codes, geometry).backward()
    assert torch.isfinite(codes.grad).all() and codes.grad.abs().sum() > 0


def _task(num_codes=4):
    generator = torch.Generator().manual_seed(0)
    symbols = torch.arange(num_codes).repeat(8)
    data = SymbolData(torch.rand(symbols.shape[0], 8, 8, generator=generator), symbols)
    tuples = [(a, b, int(a < b)) for a in range(num_codes) for b in range(num_codes)]
    return RelationTask(data, data, torch.tensor(tuples), num_codes, tuples_per_epoch=16, test_tuples=8)


def test_task_wrapper_is_off_by_default_and_adds_terms(tiny_model_config):
    torch.manual_seed(0)
    base = _task()
    model = ConceptTransformer(tiny_model_config(num_codes=4)).eval()
    plausibility, geometry = torch.rand(4, 4, 1), torch.eye(4)
    batch = next(iter(base.batches(0, torch.Generator().manual_seed(0), 8)))
    cpu = torch.device("cpu")
    off = ConsistencyTask(base, plausibility, geometry, ConsistencyConfig())
    assert not off.config.active
    assert torch.equal(off.loss(model, batch, cpu), base.loss(model, batch, cpu))
    on = ConsistencyTask(base, plausibility, geometry, ConsistencyConfig(relation_weight=1.0, geometry_weight=1.0),
                         label_relation=torch.tensor([0, 0]), label_holds=torch.tensor([False, True]))
    loss = on.loss(model, batch, cpu)
    assert torch.isfinite(loss) and loss > base.loss(model, batch, cpu)
    loss.backward()
    assert model.concept.to_logits.weight.grad.abs().sum() > 0
    assert on.steps_per_epoch(8) == base.steps_per_epoch(8) and on.num_codes == 4
    assert code_vectors(model.concept, "embedding").shape == (4, 16)


def test_wrapper_rejects_bad_config():
    base = _task()
    with pytest.raises(ConfigError, match=">= 0"):
        ConsistencyConfig(relation_weight=-1)
    with pytest.raises(ConfigError, match="label -> relation"):
        ConsistencyTask(base, torch.rand(4, 4, 1), torch.eye(4), ConsistencyConfig(relation_weight=1.0))
    with pytest.raises(ShapeError, match="tables"):
        ConsistencyTask(base, torch.rand(3, 3, 1), torch.eye(3), ConsistencyConfig())


def test_tuple_consistency():
    tuples = torch.tensor([[0, 1, 1], [1, 0, 1]])
    codes, labels = torch.tensor([[0, 1], [1, 1], [1, 0]]), torch.tensor([1, 1, 0])
    assert tuple_consistency(codes, labels, tuples) == pytest.approx(1 / 3)
