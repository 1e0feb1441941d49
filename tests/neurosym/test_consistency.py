"""neurosym.consistency: expected plausibility, the two terms, and the task wrapper (off by default)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from neurosym.consistency import (
    ConsistencyConfig, ConsistencyTask, curried_table, expected_plausibility, fit_platt,
    fit_temperature, geometry_loss, geometry_table, holds_table, relation_loss, tuple_consistency,
)
from neurosym.errors import ConfigError, ShapeError
from neurosym.gnn import RelationScorer
from neurosym.model import ConceptTransformer
from neurosym.tasks import RelationTask, SymbolData


def test_expected_plausibility_is_the_double_sum():
    torch.manual_seed(0)
    table = torch.rand(3, 3, 2)
    probs = torch.softmax(torch.randn(4, 2, 3), -1)
    labels = torch.tensor([0, 1, 1, 0])
    expected = torch.stack([
        sum(probs[b, 0, i] * probs[b, 1, j] * table[i, j, labels[b]] for i in range(3) for j in range(3))
        for b in range(4)])
    assert torch.allclose(expected_plausibility(probs.log(), table, labels), expected, atol=1e-6)


def test_relation_loss_rewards_plausible_symbols_and_ignores_labels_without_knowledge():
    table = torch.zeros(2, 2, 2)
    table[0, 1, 0] = 1.0  # label 0: only (0, 1) is plausible
    table[:, :, 1] = 1.0  # label 1: no KG reading, every pair plausible
    good = torch.tensor([[[0.0, -20.0], [-20.0, 0.0]]])  # predicts (0, 1)
    logits = torch.tensor([[[-20.0, 0.0], [0.0, -20.0]]], requires_grad=True)
    bad = logits.log_softmax(-1)  # predicts (1, 0)
    assert relation_loss(good, table, torch.tensor([0])) < 1e-3
    assert relation_loss(bad, table, torch.tensor([0])) > 5
    free = relation_loss(bad, table, torch.tensor([1]))
    free.backward()
    assert free.abs() < 1e-6 and logits.grad.abs().max() < 1e-6
    with pytest.raises(ShapeError):
        relation_loss(torch.zeros(1, 3, 2), table, torch.tensor([0]))


def test_holds_table_is_the_sigmoid_and_its_complement():
    torch.manual_seed(0)
    scorer, emb = RelationScorer(2, 8), torch.randn(6, 8)
    ids = torch.tensor([5, 0, 3])
    table = holds_table(emb, scorer, ids, relation=1)
    assert table.shape == (3, 3, 2)
    assert torch.allclose(table[2, 0, 1], torch.sigmoid(scorer(emb[3:4], torch.tensor([1]), emb[5:6]))[0], atol=1e-6)
    assert torch.allclose(table.sum(-1), torch.ones(3, 3))
    with pytest.raises(ConfigError, match="index the 6 entities"):
        holds_table(emb, scorer, torch.tensor([6]), relation=0)


def test_curried_table_is_the_scorers_distribution_of_the_value():
    torch.manual_seed(0)
    scorer, emb = RelationScorer(4, 8), torch.randn(7, 8)
    first, second, values = torch.tensor([5, 2]), torch.tensor([3, 2]), torch.tensor([4, 0, 6])
    table = curried_table(emb, scorer, first, second, values)  # (2, 2, 3)
    assert table.shape == (2, 2, 3) and torch.allclose(table.sum(-1), torch.ones(2, 2))
    # entry (i=1, j=0): code 1 is entity 2, code 0's relation is 3: softmax_v score(e_2, 3, e_v)
    logits = scorer(emb[[2, 2, 2]], torch.tensor([3, 3, 3]), emb[values])
    assert torch.allclose(table[1, 0], torch.softmax(logits, 0), atol=1e-6)
    sharp = curried_table(emb, scorer, first, second, values, temperature=0.01)
    assert sharp.max(-1).values.min() > table.max(-1).values.min()
    # calibrated: the temperature fitted on known facts sharpens the distribution toward them
    known = torch.tensor([[i, j, int(torch.argmax(table[i, j]))] for i in range(2) for j in range(2)])
    fitted = curried_table(emb, scorer, first, second, values, known=known)
    assert fitted.max(-1).values.min() > table.max(-1).values.min()
    with pytest.raises(ShapeError, match="second_relations"):
        curried_table(emb, scorer, first, torch.tensor([0]), values)
    with pytest.raises(ConfigError, match="temperature"):
        curried_table(emb, scorer, first, second, values, temperature=0)


def test_platt_scaling_separates_the_facts_that_hold():
    logits = torch.tensor([-2.0, -1.5, -1.0, -3.5, -4.0, -3.8])  # true facts score low but above false ones
    holds = torch.tensor([True, True, True, False, False, False])
    scale, bias = fit_platt(logits, holds)
    calibrated = torch.sigmoid(scale * logits + bias)
    assert calibrated[holds].min() > 0.8 and calibrated[~holds].max() < 0.2
    assert torch.sigmoid(logits)[holds].max() < 0.3  # the raw probabilities were all low
    with pytest.raises(ConfigError, match="hold and facts that do not"):
        fit_platt(logits, torch.ones(6, dtype=torch.bool))
    scorer, emb = RelationScorer(1, 8), torch.randn(4, 8)
    known = torch.eye(4, dtype=torch.bool).roll(1, 1)
    table = holds_table(emb, scorer, torch.arange(4), 0, known=known)
    assert table.shape == (4, 4, 2) and torch.allclose(table.sum(-1), torch.ones(4, 4))
    with pytest.raises(ShapeError, match="known"):
        holds_table(emb, scorer, torch.arange(4), 0, known=known[:3])


def test_fitted_temperature_matches_the_sharpness_of_the_data():
    torch.manual_seed(0)
    targets = torch.randint(0, 5, (400,))
    logits = torch.randn(400, 5) + 4.0 * F.one_hot(targets, 5)
    # Data generated from softmax(logits / 0.5) is best explained by temperature ~0.5.
    sampled = torch.distributions.Categorical(logits=logits / 0.5).sample()
    assert 0.35 < fit_temperature(logits, sampled) < 0.7
    with pytest.raises(ShapeError):
        fit_temperature(torch.zeros(3), torch.zeros(3, dtype=torch.long))


def test_geometry_loss_is_zero_when_codes_follow_the_graph_and_has_gradients():
    gnn = torch.randn(4, 6)
    geometry = geometry_table(gnn, torch.arange(4))
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
    label_table, geometry = torch.rand(4, 4, 2), torch.eye(4)
    batch = next(iter(base.batches(0, torch.Generator().manual_seed(0), 8)))
    cpu = torch.device("cpu")
    off = ConsistencyTask(base, ConsistencyConfig(), label_table, geometry)
    assert not off.config.active
    assert torch.equal(off.loss(model, batch, cpu), base.loss(model, batch, cpu))
    on = ConsistencyTask(base, ConsistencyConfig(relation_weight=1.0, geometry_weight=1.0), label_table, geometry)
    loss = on.loss(model, batch, cpu)
    assert torch.isfinite(loss) and loss > base.loss(model, batch, cpu)
    loss.backward()
    assert model.concept.to_logits.weight.grad.abs().sum() > 0
    assert on.steps_per_epoch(8) == base.steps_per_epoch(8) and on.num_codes == 4
    assert model.concept.code_vectors("embedding").shape == (4, 16)
    assert model.concept.code_vectors("readout").shape == (4, 16)


def test_wrapper_rejects_bad_config():
    base = _task()
    with pytest.raises(ConfigError, match=">= 0"):
        ConsistencyConfig(relation_weight=-1)
    with pytest.raises(ConfigError, match="no label table"):
        ConsistencyTask(base, ConsistencyConfig(relation_weight=1.0))
    with pytest.raises(ShapeError, match="label_table"):
        ConsistencyTask(base, ConsistencyConfig(relation_weight=1.0), torch.rand(3, 3, 2))
    with pytest.raises(ConfigError, match="no NaN"):
        ConsistencyTask(base, ConsistencyConfig(relation_weight=1.0), torch.full((4, 4, 2), float("nan")))
    with pytest.raises(ShapeError, match="geometry"):
        ConsistencyTask(base, ConsistencyConfig(geometry_weight=1.0), geometry=torch.eye(3))


def test_tuple_consistency():
    tuples = torch.tensor([[0, 1, 1], [1, 0, 1]])
    codes, labels = torch.tensor([[0, 1], [1, 1], [1, 0]]), torch.tensor([1, 1, 0])
    assert tuple_consistency(codes, labels, tuples) == pytest.approx(1 / 3)
