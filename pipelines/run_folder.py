"""The run folder: its default name and the one record that describes it.

A run folder (``runs/<name>-seed<seed>/``) holds what the training loop writes while it trains
(``config.toml``, ``checkpoint.pt``, ``metrics.csv``, see ``neurosym/train.py``) and what
``RunResult.save`` writes once a step ends: ``result.json`` (seed, config, code version, metrics,
vocabularies, checkpoint hash, and what later steps add: alignment, pipeline summary) and, after the
whole pipeline, ``pipeline.json``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurosym.config import to_dict
from neurosym.version import code_version

RUNS_DIR = Path("runs")


def default_run_dir(config, parent: str | Path = RUNS_DIR) -> Path:
    """Where an experiment's run goes unless told otherwise: ``<parent>/<name>-seed<seed>``."""
    return Path(parent) / f"{config.name}-seed{config.train.seed}"


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class RunResult:
    """What a trained run leaves behind, and the writer of its ``result.json``.

    ``extra`` holds what steps after training add (``consistency``, ``store_run_id``, ``alignment``,
    ``pipeline``); ``save`` writes the whole record again, so the file always says everything known.
    """

    run_dir: Path
    config: Any  # the ExperimentConfig
    metrics: dict[str, float]
    symbols: tuple[str, ...]  # code i means symbols[i]
    labels: tuple[str, ...]
    train_seconds: float
    checkpoint_hash: str
    history: list[dict[str, float]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    code_version: str = field(default_factory=code_version)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    @property
    def seed(self) -> int:
        return self.config.train.seed

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.config.name, "seed": self.seed, "code_version": self.code_version,
            "created": self.created, "metrics": self.metrics, "train_seconds": self.train_seconds,
            "checkpoint": str(self.run_dir / "checkpoint.pt"), "checkpoint_sha256": self.checkpoint_hash,
            "symbols": list(self.symbols), "labels": list(self.labels), "config": to_dict(self.config),
            **self.extra,
        }

    def save(self) -> Path:
        """Write ``result.json`` (and ``pipeline.json`` once the pipeline summary is known)."""
        path = self.run_dir / "result.json"
        path.write_text(json.dumps(self.to_json(), indent=2))
        if "pipeline" in self.extra:
            (self.run_dir / "pipeline.json").write_text(json.dumps(self.extra["pipeline"], indent=2))
        return path
