"""Shared by the store tests: ``@BOTH_BACKENDS`` runs a test on SQLite and on PostgreSQL (the
``backend`` fixture of tests/kg/conftest.py), the bundled KG's path and size, and a tiny run to add."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from kg.rdf.vocab import ARITH

ARITHMETIC = Path(__file__).resolve().parents[1] / "data" / "arithmetic.ttl"


@lru_cache(maxsize=1)
def arithmetic_triples() -> int:
    """How many distinct triples the bundled KG holds, counted by rdflib from the file itself (696 today:
    the numbers n0..n18 with their labels, classes and successor/lessThan facts, and the addition facts)."""
    from rdflib import Graph

    return len(Graph().parse(ARITHMETIC))


def same_answer(store, query: str, bindings: dict | None = None, ordered: bool = False):
    """``store.sparql``'s answer, asserted equal to the RDF view's own (rows in order where ``ordered``,
    else as a multiset), and returned: its ``answered_by`` tells which engine gave it."""
    from collections import Counter

    from kg.query.evaluate import run_query

    fast, slow = store.sparql(query, bindings), run_query(store.view, query, bindings)
    assert fast.vars == slow.vars, query
    if ordered:
        assert fast.rows == slow.rows, query
    else:
        assert Counter(fast.rows) == Counter(slow.rows), query
    return fast


BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)


def add_tiny_run(st) -> int:
    """Run 1 into ``st``: 8 inputs, one slot, codes 0..3 aligned to n2, n3, n4, n9."""
    run = st.create_run("tiny", {"lr": 0.1}, 7, "abc123", "ckpt.pt", "sha256:00")
    st.add_codes(run, np.arange(4), np.ones(4), np.full(4, 0.25))
    ids = st.add_inputs("digits", "test", [f"k{i}" for i in range(8)])
    st.add_assignments(run, ids, np.zeros(8, dtype=int), np.array([0, 1, 2, 3, 0, 1, 2, 3]),
                       np.array([0.95, 0.91, 0.5, 0.99, 0.2, 0.97, 0.93, 0.1]))
    st.add_alignments(run, [0, 1, 2, 3], [str(ARITH.n2), str(ARITH.n3), str(ARITH.n4), str(ARITH.n9)],
                      [0.9, 0.8, 0.7, 0.3], "hungarian")
    return run


def add_tiny_explanations(st, run: int) -> None:
    """Explanations of 3 pairs of run 1's inputs over (a, b, sum): 2 + 3 = 5 (right), 4 + 9 = 13 (true
    4 + 2 = 6: the second image misread), 2 + 2 = 4 (right)."""
    from kg.sql.explanations import Variable

    def n(k: int) -> str:
        return str(ARITH[f"n{k}"])

    ids = st.add_inputs("digits", "test", [f"k{i}" for i in range(8)])
    variables = [Variable("a", "input", ("a",), member=0), Variable("b", "input", ("b",), member=1),
                 Variable("sum", "label", ("sum",))]
    st.add_explanations(
        run, variables, [[ids[0], ids[1]], [ids[2], ids[3]], [ids[4], ids[6]]],
        [[n(2), n(3), n(5)], [n(4), n(9), n(13)], [n(2), n(2), n(4)]],
        [[0.95, 0.91, 0.8], [0.5, 0.99, 0.45], [0.2, 0.93, 0.15]],
        true_values=[[n(2), n(3), n(5)], [n(4), n(2), n(6)], [n(2), n(2), n(4)]],
        correct=[True, False, True])
