"""``ConceptConfig``: which concept layer a model uses, its codebook, its slots and its options.

The same section configures the Concept Transformer (``model.concept``) and the VQ-VAE
(``VQVAEConfig.concept``); each layer's ``from_config`` reads the options it understands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from neurosym.concepts.schedule import TemperatureSchedule
from neurosym.errors import ConfigError


@dataclass
class ConceptConfig:
    """The discrete layer: kind (a registered name), codebook size K, slots S and the layers' options.

    ``kind``: ``gumbel``, ``vq``, ``none`` (the continuous baseline, no bottleneck) or any name
    registered with ``neurosym.concepts.registry.register``. Gumbel reads ``hard``, ``temperature``,
    ``diversity_weight``; VQ reads ``commitment_weight``, ``ema``, ``decay``, ``cosine``,
    ``dead_code_threshold`` and ``data_init`` (codebook set from the first training batch).
    """

    kind: str = "gumbel"
    num_codes: int = 10
    num_slots: int = 1
    slots: Literal["pooled", "tokens"] = "pooled"
    hard: bool = True
    temperature: TemperatureSchedule = field(default_factory=TemperatureSchedule)
    diversity_weight: float = 0.0
    commitment_weight: float = 0.25
    ema: bool = True
    decay: float = 0.99
    cosine: bool = False
    dead_code_threshold: float = 0.1
    data_init: bool = False

    def __post_init__(self) -> None:
        from neurosym.concepts.registry import layer_class

        layer_class(self.kind)  # an unknown kind is an error here, where the config is read
        if self.num_codes < 2:
            raise ConfigError(f"concept.num_codes must be >= 2, got {self.num_codes}")
        if self.num_slots < 1:
            raise ConfigError(f"concept.num_slots must be >= 1, got {self.num_slots}")
