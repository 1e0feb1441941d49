"""The compiled-query constraint's checks, word for word, and the shapes at its edges: one input, no input,
a single relation, labels outside their domain. The messages are compared whole because a researcher
reads them instead of a traceback (the CLI prints them as one line)."""

from __future__ import annotations

import math

import pytest
import torch

from neurosym.errors import ConfigError, NonFiniteError, ShapeError
from neurosym.query_constraint import Factor, QueryConstraint

SUM_TABLE = torch.tensor([[[a + b == y for y in range(3)] for b in range(2)] for a in range(2)])  # [2, 2, 3]


def adder(inputs=("a", "b"), evidence=("y",), domains=None) -> QueryConstraint:
    return QueryConstraint([Factor("add", ("a", "b", "y"), SUM_TABLE)], domains or {"a": 2, "b": 2, "y": 3},
                           list(inputs), list(evidence))


def message(error: type, build) -> str:
    with pytest.raises(error) as caught:
        build()
    return str(caught.value)


def test_each_bad_query_is_named_in_one_exact_line():
    ones = torch.ones(2, 2, dtype=torch.bool)
    assert message(ConfigError, lambda: Factor("r", ("a", "b"), torch.ones(2, dtype=torch.bool))) == \
        "factor r: 2 variables but a 1-d table"
    assert message(ConfigError, lambda: Factor("r", ("a", "a"), ones)) == "factor r: a variable occurs twice in ('a', 'a')"
    assert message(ConfigError, lambda: QueryConstraint([], {}, [], [])) == "the query has no relations"
    assert message(ConfigError, lambda: adder(inputs=("a", "z"))) == "input variable 'z' occurs in no relation of the query"
    assert message(ConfigError, lambda: adder(evidence=("z",))) == "label variable 'z' occurs in no relation of the query"
    twice = "a variable is bound to two inputs (or two label positions)"
    assert message(ConfigError, lambda: adder(inputs=("a", "a"))) == twice  # inputs twice, labels once
    assert message(ConfigError, lambda: adder(evidence=("y", "y"))) == twice  # and the other way round
    assert message(ConfigError, lambda: adder(inputs=("a", "y"), evidence=("y",))) == \
        "variables ['y'] are bound to both an input and the label"
    assert message(ConfigError, lambda: adder(domains={"a": 3, "b": 2, "y": 3})) == \
        "factor add: variable 'a' has an axis of 2, its domain has 3"
    assert message(ConfigError, lambda: adder(domains={"a": 2, "y": 3})) == \
        "factor add: variable 'b' has an axis of 2, its domain has None"
    unequal = QueryConstraint
    assert message(ConfigError, lambda: unequal([Factor("r", ("a", "b"), torch.ones(2, 3, dtype=torch.bool))],
                                                {"a": 2, "b": 3}, ["a", "b"], [])) == \
        "every input variable needs the same domain (the concept layer's K codes)"


def test_each_bad_tensor_is_named_in_one_exact_line():
    query = adder()
    log_probs = torch.zeros(3, 2, 2).log_softmax(-1)  # B = 3 differs from A = 2: the message must say which
    assert message(ShapeError, lambda: query(torch.zeros(3, 2, 5), torch.zeros(3, dtype=torch.long))) == \
        "query constraint log_probs: expected [B, 2, 2], got [3, 2, 5]"
    assert message(ShapeError, lambda: query(log_probs, torch.zeros(2, 1, dtype=torch.long))) == \
        "query constraint labels: expected [3, 1] (one value per label variable ['y']), got [2, 1]"
    outside = "label position 0 (y) has values outside [0, 3)"
    assert message(ConfigError, lambda: query(log_probs, torch.tensor([0, -1, 0]))) == outside
    assert message(ConfigError, lambda: query(log_probs, torch.tensor([0, 3, 0]))) == outside  # the domain's size itself
    query(log_probs, torch.tensor([0, 2, 1]))  # its largest value is inside
    assert message(NonFiniteError, lambda: query(torch.full((3, 2, 2), float("nan")), torch.zeros(3, dtype=torch.long))) == \
        "query constraint: log_probs hold NaN"
    certain = torch.tensor([[0.0, -math.inf], [0.0, -math.inf]]).expand(3, 2, 2)  # both inputs surely 0
    assert message(NonFiniteError, lambda: query(certain, torch.tensor([0, 1, 0]))) == \
        "query constraint: an observed label has no assignment that explains it; check that the KG's relations cover every label"


def test_one_input_is_a_query_of_its_own():
    """A single input variable (the concept layer's K codes are its domain) and a unary label."""
    parity = torch.tensor([[k % 2 == y for y in range(2)] for k in range(4)])  # [4, 2]
    query = QueryConstraint([Factor("parity", ("x", "y"), parity)], {"x": 4, "y": 2}, ["x"], ["y"])
    log_probs = torch.tensor([[0.1, 0.2, 0.3, 0.4]]).log()[:, None, :]  # [1, 1, 4]
    assert query.num_symbols == 4
    assert query.log_likelihood(log_probs, torch.tensor([1])).exp().item() == pytest.approx(0.2 + 0.4)
    assert query.predict(log_probs).tolist() == [[1]]  # the most probable symbol (3) is odd


def test_a_query_without_inputs_counts_the_relation_for_every_example():
    """No input and no label: every example gets log(number of the relation's rows); with the label
    observed, log(rows with that label). A single relation is one step of the plan, which only reduces."""
    query = QueryConstraint([Factor("add", ("a", "b", "y"), SUM_TABLE)], {"a": 2, "b": 2, "y": 3}, [], [])
    assert query.num_symbols == 0
    free = query.log_likelihood(torch.zeros(5, 0, 0), torch.zeros(5, 0, dtype=torch.long))
    assert free.shape == (5,) and free.exp().tolist() == pytest.approx([4.0] * 5)  # 4 rows: 0+0, 0+1, 1+0, 1+1
    labelled = QueryConstraint([Factor("add", ("a", "b", "y"), SUM_TABLE)], {"a": 2, "b": 2, "y": 3}, [], ["y"])
    counts = labelled.log_likelihood(torch.zeros(3, 0, 0), torch.tensor([0, 1, 2])).exp()
    assert counts.tolist() == pytest.approx([1.0, 2.0, 1.0])  # one way to make 0, two to make 1, one to make 2
    explanation = labelled.explain(torch.zeros(3, 0, 0), torch.tensor([0, 1, 2]))
    assert explanation.values["a"].tolist()[::2] == [0, 1] and explanation.values["b"].tolist()[::2] == [0, 1]
    assert explanation.values["y"].tolist() == [0, 1, 2]


def test_the_relation_tables_stay_out_of_checkpoints():
    """The log-tables are rebuilt from the KG on every load, so a checkpoint holds none of them (a checkpoint
    of a run whose KG grew a fact still loads)."""
    query = adder()
    assert len(query.tables()) == 1 and query.tables()[0].shape == (2, 2, 3)
    assert query.state_dict() == {}
