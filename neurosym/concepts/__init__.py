"""Concept layers behind one interface (``ConceptLayer``), chosen by name from a registry:
Gumbel-softmax, vector quantization and the continuous baseline, one shared output type.

Shape legend: B batch, S slots (symbols per input), K codes, D input width, E code width.
"""

from neurosym.concepts.config import ConceptConfig
from neurosym.concepts.continuous import ContinuousConcepts
from neurosym.concepts.gumbel import GumbelConcepts, gumbel_softmax_sample, straight_through
from neurosym.concepts.layer import ConceptLayer
from neurosym.concepts.output import CodebookUsage, ConceptOutput
from neurosym.concepts.registry import build_concept_layer, register
from neurosym.concepts.schedule import TemperatureSchedule
from neurosym.concepts.vq import VectorQuantizer

__all__ = [
    "CodebookUsage",
    "ConceptConfig",
    "ConceptLayer",
    "ConceptOutput",
    "ContinuousConcepts",
    "GumbelConcepts",
    "TemperatureSchedule",
    "VectorQuantizer",
    "build_concept_layer",
    "gumbel_softmax_sample",
    "register",
    "straight_through",
]
