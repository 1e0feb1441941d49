"""The experiment config: one TOML file holds everything a run needs, and is saved with it.

Relative paths in a config (KG files, query files, the dataset) are looked up beside the config file
first, then in the working folder, then in the bundled data (``pipelines/bundled.py``), so
``kg = ["arithmetic.ttl"]`` works from anywhere. A config path that is no file of the user's may name a
bundled config (``mnist_addition.toml``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from neurosym.concepts import TemperatureSchedule
from neurosym.config import ConfigError, from_dict, read_toml, to_dict
from neurosym.consistency import ConsistencyConfig
from neurosym.gnn import LinkPredictionConfig
from neurosym.model import ConceptConfig, ModelConfig
from neurosym.train import TrainConfig
from kg.rdf.prefixes import PREFIXES, RDF_TYPE, RDFS_SUBCLASS_OF
from pipelines import bundled

#: The bundled data folder, found through importlib.resources (``pipelines/bundled.py``).
DATA_DIR = bundled.root()
DEFAULT_CONFIG = bundled.default_config()


@dataclass
class KnowledgeConfig:
    """A conjunctive query over KG relations with latent variables (``pipelines/knowledge_program.py``).

    ``relations`` maps a name to a SELECT (a ``.rq`` path or inline SPARQL) whose columns are the
    relation's arguments; ``atoms`` join them over variables; ``inputs`` / ``label`` bind variables to
    an example's inputs (in order) and to its observed label; ``constants`` fix latent variables to
    entities; ``params`` are the integers the ``for i in range(...)`` templates may use.
    """

    relations: dict[str, str] = field(default_factory=dict)
    atoms: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    label: list[str] = field(default_factory=list)
    constants: dict[str, str] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, table, kind in (("relations", self.relations, str), ("constants", self.constants, str),
                                 ("params", self.params, int)):
            for name, value in table.items():
                if not isinstance(value, kind) or isinstance(value, bool):
                    raise ConfigError(f"config key 'task.knowledge.{key}.{name}': expected {kind.__name__}, got {value!r}")
        if not self.relations or not self.atoms:
            raise ConfigError("task.knowledge needs relations and atoms")


@dataclass
class TaskConfig:
    """What is learned: the dataset, the KG and the knowledge that labels tuples of inputs.

    ``dataset`` names a dataset of the registry (``neurosym/data/registry.py``: ``digits``, ``mnist``,
    ``arrays``); ``data_path`` is its directory or file (left out for ``mnist``: the folder that
    ``neurosym data fetch mnist`` fills); ``test_fraction`` / ``split_seed`` split an
    ``arrays`` file that holds no test set. The knowledge is either ``query`` (a ``.rq`` path or inline
    SPARQL: its first columns are the inputs' symbols, its last column the label; tuples of inputs
    are drawn at random, ``tuples_per_epoch`` per epoch, ``test_tuples`` held out) or a ``[task.knowledge]``
    program (a conjunctive query with latent variables, which then replaces ``query``: the shuffled
    training inputs are cut into disjoint groups, one per example, as are the test inputs).
    ``label_entity`` turns a dataset label into the KG entity it denotes (evaluation, alignment
    accuracy and drawing tuples; never a training signal). ``objective``: ``constraint`` (the knowledge
    is the loss) or ``head`` (a task head learns the label from the codes, whose meaning is then
    recovered by label-free alignment). ``head_diversity_weight`` weighs the head objective's term
    against collapse onto one code (``neurosym.tasks.TupleHeadTask`` says why it is on by default).
    """

    dataset: Literal["digits", "mnist", "arrays"] = "digits"
    data_path: str = ""
    test_fraction: float = 0.25
    split_seed: int = 0
    kg: list[str] = field(default_factory=lambda: ["arithmetic.ttl"])
    query: str = "queries/addition.rq"
    knowledge: KnowledgeConfig | None = None
    label_entity: str = "https://w3id.org/neurosym/arith#n{label}"
    objective: Literal["constraint", "head"] = "constraint"
    head_diversity_weight: float = 1.0
    augment: Literal["none", "affine", "shift"] = "affine"
    tuples_per_epoch: int = 3000
    test_tuples: int = 1000

    def __post_init__(self) -> None:
        if "{label}" not in self.label_entity:
            raise ConfigError(f"task.label_entity must contain '{{label}}', got {self.label_entity!r}")
        if self.tuples_per_epoch < 1 or self.test_tuples < 1:
            raise ConfigError("task.tuples_per_epoch and task.test_tuples must be >= 1")
        if self.dataset == "arrays" and not self.data_path:
            raise ConfigError("task.dataset = 'arrays' needs task.data_path (the .npz file)")
        if not self.head_diversity_weight >= 0:  # NaN too
            raise ConfigError(f"task.head_diversity_weight must be >= 0, got {self.head_diversity_weight}")
        if self.knowledge is not None and self.objective == "head":
            raise ConfigError("task.objective = 'head' needs a flat task.query, not a [task.knowledge] program")


@dataclass
class StepsConfig:
    """What the pipeline does after training: encode, align, rules."""

    align_method: Literal["constraint", "majority", "hungarian", "label_free"] = "constraint"
    labelled_examples: int = 50
    rules: list[str] = field(default_factory=lambda: ["rules/digits.rules"])
    top_k: int = 3


_NS = PREFIXES["ns"]


@dataclass
class ScorerConfig(LinkPredictionConfig):
    """The regularizer's scorer: ``LinkPredictionConfig`` with the defaults the benchmark uses (one
    R-GCN layer, 100 epochs, lr 0.03, 8 corruptions, no held-out edges: it should see every known
    fact). A partial ``[consistency.link_prediction]`` table keeps these for the keys it omits."""

    num_layers: int = 1
    epochs: int = 100
    lr: float = 0.03
    negatives: int = 8
    test_fraction: float = 0.0


@dataclass
class ConsistencySection:
    """The GNN consistency regularizer (``docs/consistency.md``); off while both weights are 0.

    The R-GCN + ComplEx scorer is pre-trained by link prediction on the KG's ``relations`` (every
    other predicate linking two entities must be listed in ``ignore``), in the curried reading plus
    the task's own allowed tuples as edges ``a --function/b--> label``, so that it can rank facts the
    constraint lacks. ``reading``: how a label names a KG fact: ``curried`` (the label is ``function(a, b)``)
    or ``holds`` (labels ``true``/``false`` say whether ``holds_relation`` links a to b).
    ``calibrate``: fit the table's temperature (curried) or Platt scale (holds) on the facts the KG
    holds; otherwise ``temperature`` is used as given (curried) and raw sigmoids (holds).
    """

    relation_weight: float = 0.0
    geometry_weight: float = 0.0
    code_vectors: Literal["readout", "embedding"] = "readout"
    relations: list[str] = field(default_factory=lambda: [_NS + "successor", _NS + "lessThan"])
    ignore: list[str] = field(default_factory=lambda: [
        RDF_TYPE, RDFS_SUBCLASS_OF, _NS + "addend1", _NS + "addend2", _NS + "sum"])
    reading: Literal["curried", "holds"] = "curried"
    function: str = _NS + "taskLabel"
    holds_relation: str = ""
    calibrate: bool = True
    temperature: float = 1.0
    link_prediction: ScorerConfig = field(default_factory=ScorerConfig)

    def __post_init__(self) -> None:
        if self.reading not in ("curried", "holds"):
            raise ConfigError(f"consistency.reading must be 'curried' or 'holds', got {self.reading!r}")
        if self.reading == "holds" and not self.holds_relation:
            raise ConfigError("consistency.reading = 'holds' needs consistency.holds_relation (a relation IRI)")
        if self.temperature <= 0:
            raise ConfigError(f"consistency.temperature must be > 0, got {self.temperature}")
        self.weights()  # validates the weights and code_vectors

    @property
    def active(self) -> bool:
        return self.relation_weight > 0 or self.geometry_weight > 0

    def weights(self) -> ConsistencyConfig:
        return ConsistencyConfig(self.relation_weight, self.geometry_weight, self.code_vectors)


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
    consistency: ConsistencySection = field(default_factory=ConsistencySection)


def load_config(path: str | Path | None = None, **overrides) -> tuple[ExperimentConfig, Path]:
    """Read an experiment config (the bundled digit-addition one by default; a path that is no file may
    name a bundled config, ``bundled.find``).

    ``overrides`` map dotted keys to values (``**{"train.epochs": 5}``; None values are skipped). They
    are merged into the file's data before it is validated, so an override is checked exactly like the
    same value in the file: an unknown key or a bad value is one ConfigError line naming it.
    Returns the config and the folder its relative paths resolve against.
    """
    path = bundled.local_or_bundled(path, "configs") if path is not None else DEFAULT_CONFIG
    data = read_toml(path)
    defaults = to_dict(ExperimentConfig())
    for key, value in overrides.items():
        if value is not None:
            merge_override(data, defaults, key, value)
    return from_dict(ExperimentConfig, data), path.resolve().parent


def merge_override(data: dict, defaults: dict, key: str, value) -> None:
    """Set dotted ``key`` in the nested ``data``. A section the file lacks starts from its default
    (``defaults``, the experiment's own), as if the file had spelled the default out."""
    *sections, name = key.split(".")
    for depth, section in enumerate(sections):
        if section not in data:
            data[section] = copy.deepcopy(defaults.get(section, {})) if isinstance(defaults, dict) else {}
        data = data[section]
        defaults = defaults.get(section, {}) if isinstance(defaults, dict) else {}
        if not isinstance(data, dict):
            raise ConfigError(f"config key {key!r}: {'.'.join(sections[:depth + 1])!r} is a value, not a section")
    data[name] = value


def resolve_path(name: str, base: Path | None = None) -> Path:
    """A config-relative path: beside the config, else in the working folder, else in the bundled data."""
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate
    for folder in filter(None, (base, Path.cwd(), DATA_DIR)):
        if (folder / candidate).exists():
            return folder / candidate
    raise ConfigError(f"{name}: file not found (looked beside the config, in {Path.cwd()} and in the bundled "
                      f"data, {DATA_DIR})")
