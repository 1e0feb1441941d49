"""Overrides are merged into the config's data before validation: a flag is checked like a file value."""

import pytest

from neurosym.errors import ConfigError
from pipelines.cli import main
from pipelines.config import load_config
from pipelines.run_folder import default_run_dir


@pytest.mark.parametrize("overrides, message", [
    ({"train.epochs": 0}, "train.epochs must be >= 1, got 0"),
    ({"task.objective": "hed"}, "config key 'task.objective': 'hed' is not one of 'constraint', 'head'"),
    ({"trian.epochs": 3}, "unknown config key 'trian'"),
    ({"model.concept.num_codes": "ten"}, "config key 'model.concept.num_codes': expected int, got 'ten'"),
    ({"model.concept.kind": "vqq"}, "concept.kind = 'vqq' is not a registered concept layer (known: gumbel, none, vq"),
    ({"train.epochs.max": 3}, "config key 'train.epochs.max': 'train.epochs' is a value, not a section"),
])
def test_a_bad_override_is_the_error_a_bad_file_value_is(overrides, message):
    with pytest.raises(ConfigError) as caught:
        load_config(None, **overrides)
    assert message in str(caught.value)


def test_an_override_of_a_section_the_file_lacks_keeps_the_experiment_defaults(tmp_path):
    path = tmp_path / "short.toml"
    path.write_text('name = "short"\n')
    config, _ = load_config(path, **{"model.concept.num_codes": 12, "train.seed": 4})
    default, _ = load_config(path)
    assert config.model.concept.num_codes == 12 and config.train.seed == 4
    assert config.model.d_model == default.model.d_model == 64  # the experiment's default model, not ModelConfig's
    assert config.train.epochs == default.train.epochs
    assert default_run_dir(config).as_posix() == "runs/short-seed4"


def test_cli_flags_are_validated_like_the_file(tmp_path, cli_runner):
    store = str(tmp_path / "s.sqlite")
    result = cli_runner.invoke(main, ["train", "--epochs", "0", "--store", store, "--run-dir", str(tmp_path / "r")])
    assert result.exit_code == 1
    assert result.output == "Error: train.epochs must be >= 1, got 0\n"
    assert not (tmp_path / "r").exists()
