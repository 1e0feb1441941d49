"""neurosym.gnn: R-GCN encoder, DistMult/ComplEx scorer, link prediction with filtered ranks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from rdflib import RDF, RDFS, Graph

from kg.graph import from_rdflib
from kg.rdf.vocab import NS
from neurosym.errors import ConfigError, ShapeError
from neurosym.gnn import (
    KGEmbedding, LinkPredictionConfig, RelationScorer, filtered_ranks, rank_metrics, train_link_prediction,
)

ARITHMETIC = Path(__file__).resolve().parents[2] / "data" / "arithmetic.ttl"


@pytest.fixture(scope="module")
def arithmetic_graph():
    ignore = [str(RDF.type), str(RDFS.subClassOf), str(NS.addend1), str(NS.addend2), str(NS.sum)]
    return from_rdflib(Graph().parse(ARITHMETIC), [str(NS.successor), str(NS.lessThan)], ignore=ignore)


@pytest.mark.parametrize("kind", ["distmult", "complex"])
def test_scorer_shapes_and_head_tail_queries_agree(kind):
    torch.manual_seed(0)
    scorer, emb = RelationScorer(3, 8, kind), torch.randn(5, 8)
    rel = torch.tensor([0, 2])
    tails = scorer.tails_of(emb[[1, 4]], rel, emb)  # (2, 5)
    heads = scorer.heads_of(rel, emb[[3, 0]], emb)  # (2, 5)
    assert tails.shape == heads.shape == (2, 5)
    assert torch.allclose(tails[0, 3], scorer(emb[1:2], rel[:1], emb[3:4])[0], atol=1e-5)
    assert torch.allclose(heads[1, 4], scorer(emb[4:5], rel[1:], emb[0:1])[0], atol=1e-5)
    table = scorer.table(emb)  # (K, K, R)
    assert table.shape == (5, 5, 3) and torch.allclose(table[1, 3, 0], tails[0, 3], atol=1e-5)
    if kind == "distmult":  # DistMult cannot tell (h, r, t) from (t, r, h)
        assert torch.allclose(table, table.transpose(0, 1), atol=1e-5)


def test_filtered_rank_ignores_other_true_triples():
    scorer = RelationScorer(1, 2, "distmult")
    with torch.no_grad():
        scorer.relation.fill_(1.0)
    emb = torch.tensor([[1.0, 0.0], [3.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    test = torch.tensor([[0, 0, 2]])  # candidate tails score 1, 3, 2, 0: entity 1 beats entity 2
    known = torch.tensor([[0, 0, 2], [0, 0, 1], [1, 0, 0]])
    ranks = filtered_ranks(scorer, emb, test, known)
    assert ranks[0] == 1.0  # entity 1 is also a true tail, so it is filtered out
    assert rank_metrics(torch.tensor([1.0, 4.0]))["mrr"] == pytest.approx(0.625)


def test_encoder_handles_isolated_entities_and_rejects_bad_graphs():
    model = KGEmbedding(num_entities=4, num_relations=1, dim=8)
    emb = model(torch.tensor([[0], [1]]), torch.tensor([0]))  # entities 2, 3 are isolated
    assert emb.shape == (4, 8) and torch.isfinite(emb).all()
    with pytest.raises(ConfigError, match="no edges"):
        model(torch.zeros(2, 0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ShapeError, match="edge_index"):
        model(torch.zeros(3, 1, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ConfigError, match="outside"):
        model(torch.tensor([[0], [9]]), torch.tensor([0]))
    with pytest.raises(ConfigError, match="even width"):
        RelationScorer(1, 7, "complex")


def test_trained_scorer_ranks_held_out_facts_above_random_ones(arithmetic_graph):
    g = arithmetic_graph
    config = LinkPredictionConfig(epochs=120, test_fraction=0.1, seed=0)
    result = train_link_prediction(g.edge_index, g.edge_type, g.num_entities, g.num_relations, config)
    # The KG's numbers n0..n18 give 18 successor facts and 19*18/2 = 171 lessThan facts; a tenth of
    # those 189 edges, rounded, is held out: 19.
    numbers = 19
    assert g.edge_index.shape[1] == (numbers - 1) + numbers * (numbers - 1) // 2
    assert result.split.test.shape[0] == round(config.test_fraction * g.edge_index.shape[1]) == 19
    assert result.metrics["mrr"] > 0.5
    emb, scorer = result.embeddings(), result.model.scorer
    test = result.split.test
    with torch.no_grad():
        true_scores = scorer(emb[test[:, 0]], test[:, 1], emb[test[:, 2]])
        generator = torch.Generator().manual_seed(1)
        random = torch.randint(g.num_entities, (500, 2), generator=generator)
        rel = torch.randint(g.num_relations, (500,), generator=generator)
        known = {tuple(t) for t in g.triples().tolist()}
        false = torch.tensor([(h, r, t) not in known for (h, t), r in zip(random.tolist(), rel.tolist())])
        random_scores = scorer(emb[random[:, 0]], rel, emb[random[:, 1]])[false]
    # AUC: a held-out true fact outscores a random false one far more often than chance.
    auc = (true_scores[:, None] > random_scores[None, :]).float().mean()
    assert auc > 0.85
