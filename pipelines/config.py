"""The experiment config: one TOML file holds everything a run needs, and is saved with it.

Relative paths in a config (KG files, query files) are looked up beside the config file first,
then in the bundled ``data/`` folder, so ``kg = ["arithmetic.ttl"]`` works from anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from neurosym.concepts import TemperatureSchedule
from neurosym.config import ConfigError, load_toml
from neurosym.model import ConceptConfig, ModelConfig
from neurosym.train import TrainConfig

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
DEFAULT_CONFIG = DATA_DIR / "configs" / "digits_addition.toml"


@dataclass
class TaskConfig:
    """What is learned: the dataset, the KG and the SPARQL query whose rows are the allowed tuples.

    ``query`` is a path to a ``.rq`` file or inline SPARQL; its first ``arity`` columns are the
    inputs' symbols and its last column the label. ``label_entity`` turns a dataset label into the
    KG entity it denotes (used only for evaluation and alignment accuracy, never for training).
    ``objective``: ``constraint`` (the knowledge is the loss) or ``head`` (a task head learns the
    label from the codes, whose meaning is then recovered by label-free alignment).
    """

    dataset: Literal["digits"] = "digits"
    kg: list[str] = field(default_factory=lambda: ["arithmetic.ttl"])
    query: str = "queries/addition.rq"
    label_entity: str = "https://w3id.org/neurosym/arith#n{label}"
    objective: Literal["constraint", "head"] = "constraint"
    augment: Literal["none", "affine"] = "affine"
    tuples_per_epoch: int = 3000
    test_tuples: int = 1000

    def __post_init__(self) -> None:
        if "{label}" not in self.label_entity:
            raise ConfigError(f"task.label_entity must contain '{{label}}', got {self.label_entity!r}")
        if self.tuples_per_epoch < 1 or self.test_tuples < 1:
            raise ConfigError("task.tuples_per_epoch and task.test_tuples must be >= 1")


@dataclass
class StepsConfig:
    """What the pipeline does after training: encode, align, rules."""

    align_method: Literal["constraint", "majority", "hungarian", "label_free"] = "constraint"
    labelled_examples: int = 50
    rules: list[str] = field(default_factory=lambda: ["rules/digits.rules"])
    top_k: int = 3


@dataclass
class ExperimentConfig:
    """A whole experiment (PyKEEN-style front door): task, model, training and pipeline steps."""

    name: str = "digits-addition"
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(
        default_factory=lambda: ModelConfig(
            d_model=64, n_heads=4, n_layers=2, stem_channels=32, dropout=0.1,
            concept=ConceptConfig(kind="gumbel", num_codes=10, temperature=TemperatureSchedule("exponential", 1.0, 0.5, 1500)),
        )
    )
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=40, batch_size=64, lr=3e-3))
    steps: StepsConfig = field(default_factory=StepsConfig)


def load_config(path: str | Path | None = None, **overrides) -> tuple[ExperimentConfig, Path]:
    """Read an experiment config (the bundled digit-addition one by default).

    Returns the config and the folder its relative paths resolve against.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    config = load_toml(ExperimentConfig, path)
    for key, value in overrides.items():
        if value is not None:
            section, _, name = key.rpartition(".")
            target = config
            for part in filter(None, section.split(".")):
                target = getattr(target, part)
            if not hasattr(target, name):
                raise ConfigError(f"unknown config key {key!r}")
            setattr(target, name, value)
    return config, path.resolve().parent


def resolve_path(name: str, base: Path | None = None) -> Path:
    """A config-relative path: beside the config, else in the bundled data folder."""
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate
    for folder in filter(None, (base, Path.cwd(), DATA_DIR)):
        if (folder / candidate).exists():
            return folder / candidate
    raise ConfigError(f"{name}: file not found (looked beside the config, in {Path.cwd()} and in {DATA_DIR})")
