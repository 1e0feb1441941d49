"""Discrete concept layers: Gumbel-softmax and vector quantization, one shared output type.

Shape legend: B batch, S slots (symbols per input), K codes, D input width, E code width.
"""

from neurosym.concepts.gumbel import GumbelConcepts, gumbel_softmax_sample, straight_through
from neurosym.concepts.output import CodebookUsage, ConceptOutput
from neurosym.concepts.schedule import TemperatureSchedule
from neurosym.concepts.vq import VectorQuantizer

__all__ = [
    "CodebookUsage",
    "ConceptOutput",
    "GumbelConcepts",
    "TemperatureSchedule",
    "VectorQuantizer",
    "gumbel_softmax_sample",
    "straight_through",
]
