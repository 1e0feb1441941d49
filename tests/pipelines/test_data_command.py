"""``neurosym data``: fetch a dataset into the cache, then train on it with no data path."""

from __future__ import annotations

import json

import numpy as np

from neurosym.data.download import cache_dir
from pipelines.cli import main


def test_cli_fetch_from_a_pickle_then_train_the_bundled_config_without_data_path(tmp_path, monkeypatch, cli_runner,
                                                                             write_tiny_mnist_pickle):
    """The issue's route: fetch --from mnist.pkl.gz into the cache, then train the bundled MNIST config,
    named from another folder, with no data path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    write_tiny_mnist_pickle(tmp_path / "mnist.pkl.gz", train=48, validation=0, test=16)
    result = cli_runner.invoke(main, ["data", "fetch", "mnist", "--from", str(tmp_path / "mnist.pkl.gz")])
    assert result.exit_code == 0, result.output
    assert result.output == f"mnist: copied mnist.pkl.gz into {cache_dir('mnist')}\n"
    # two epochs: the config's trap check after epoch 1 needs training left after it
    result = cli_runner.invoke(main, ["train", "mnist_addition.toml", "--epochs", "2", "--device", "cpu",
                                      "--run-dir", "run", "--store", "s.sqlite"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["config"]["task"]["data_path"] == "" and np.isfinite(saved["metrics"]["train_loss"])
    broken = cli_runner.invoke(main, ["data", "fetch", "mnist", "--from", str(tmp_path / "nowhere")])
    assert broken.exit_code == 1 and broken.output == f"Error: {tmp_path / 'nowhere'}: no such file or folder\n"
