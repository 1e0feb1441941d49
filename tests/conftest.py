"""Fixtures shared by every test package: tiny configs and a CLI runner."""

from __future__ import annotations

import pytest
import torch

from neurosym.model import ConceptConfig, ModelConfig


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture
def tiny_model_config():
    def make(kind: str = "gumbel", **overrides) -> ModelConfig:
        concept = ConceptConfig(kind=kind, num_codes=overrides.pop("num_codes", 10))
        settings = dict(d_model=16, n_heads=2, n_layers=2, stem_channels=4) | overrides
        return ModelConfig(concept=concept, **settings)

    return make


@pytest.fixture
def cli_runner():
    from click.testing import CliRunner

    return CliRunner()
