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
