"""Shared by the store tests: ``@BOTH_BACKENDS`` runs a test on SQLite and on PostgreSQL (the
``backend`` fixture of tests/kg/conftest.py), and the bundled KG's path."""

from __future__ import annotations

from pathlib import Path

import pytest

ARITHMETIC = Path(__file__).resolve().parents[1] / "data" / "arithmetic.ttl"
BOTH_BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=True)
