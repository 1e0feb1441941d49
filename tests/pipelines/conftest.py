import pytest

from kg.store import Store
from pipelines.config import load_config


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "store.sqlite") as opened:
        yield opened


@pytest.fixture
def quick_config():
    """The bundled digit-addition config, cut down to seconds of training."""

    def make(path=None, **overrides):
        settings = {"train.epochs": 2, "task.tuples_per_epoch": 600, "task.test_tuples": 200, "train.device": "cpu"}
        config, base = load_config(path, **(settings | overrides))
        config.model.d_model, config.model.stem_channels = 32, 8
        return config, base

    return make
