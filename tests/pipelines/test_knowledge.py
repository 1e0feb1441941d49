import pytest
import torch
from rdflib import Literal, URIRef

from neurosym.errors import ConfigError
from pipelines.config import DATA_DIR, load_config
from pipelines.knowledge import compile_relation, dataset_symbols, relation_from_store
from pipelines.train_step import load_kg, read_query

ARITH = "https://w3id.org/neurosym/arith#n"


def relation_for(config_name, store):
    config, base = load_config(DATA_DIR / "configs" / config_name)
    load_kg(store, config, base)
    text, name = read_query(config, base)
    return relation_from_store(store, text, name)


def values(relation, column):
    vocab = relation.symbols if column < relation.arity else relation.labels
    return [int(vocab[i].removeprefix(ARITH)) for i in relation.tuples[:, column].tolist()]


def test_addition_tuples_come_from_the_kg(store):
    relation = relation_for("digits_addition.toml", store)
    assert relation.tuples.shape == (100, 3)
    assert relation.symbols == tuple(f"{ARITH}{d}" for d in range(10))
    assert len(relation.labels) == 19
    a, b, s = values(relation, 0), values(relation, 1), values(relation, 2)
    assert all(x + y == z for x, y, z in zip(a, b, s))


def test_another_relation_needs_only_another_query(store):
    relation = relation_for("digits_maximum.toml", store)
    assert relation.tuples.shape == (100, 3)
    a, b, m = values(relation, 0), values(relation, 1), values(relation, 2)
    assert all(max(x, y) == z for x, y, z in zip(a, b, m))


def test_symbols_are_in_natural_order():
    rows = [(URIRef(f"{ARITH}{a}"), URIRef(f"{ARITH}{a}"), Literal(a)) for a in (10, 2, 1)]
    relation = compile_relation(["a", "b", "y"], rows)
    assert relation.symbols == (f"{ARITH}1", f"{ARITH}2", f"{ARITH}10")


def test_query_without_rows_or_with_wrong_arity_is_named(store):
    with pytest.raises(ConfigError, match="my.rq: returned no rows"):
        compile_relation(["a", "b", "s"], [], "my.rq")
    with pytest.raises(ConfigError, match="row 1 has 2 bound values, expected 3"):
        compile_relation(["a", "b", "s"], [(URIRef("x:a"), None, URIRef("x:s"))], "my.rq")
    with pytest.raises(ConfigError, match="at least 2 columns"):
        compile_relation(["a"], [(URIRef("x:a"),)], "my.rq")
    with pytest.raises(ConfigError, match="must be a SELECT"):
        relation_from_store(store, "ASK { ?s ?p ?o }")


def test_dataset_label_missing_from_the_kg_is_named(store):
    relation = relation_for("digits_addition.toml", store)
    with pytest.raises(ConfigError, match=r"dataset label 3 maps to .*#d3, which the KG's relation does not contain"):
        dataset_symbols(torch.tensor([3]), relation, "https://w3id.org/neurosym/arith#d{label}")
    assert dataset_symbols(torch.tensor([7, 0]), relation, ARITH + "{label}").tolist() == [7, 0]
