"""What every concept layer is to the rest of the code: the ``ConceptLayer`` interface.

Models, the trainer, the encode step and the consistency regularizer talk to a concept layer only
through this interface, never by its class or its attributes; a new layer subclasses it, registers
its name (``neurosym/concepts/registry.py``) and is then usable from any config.

Shape legend: B batch, S slots, D input width, K codes, E code width.
"""

from __future__ import annotations

from torch import Tensor, nn

from neurosym.concepts.output import CodebookUsage, ConceptOutput
from neurosym.errors import ConfigError


class ConceptLayer(nn.Module):
    """Base class of the concept layers: slot states ``[B, S, D]`` -> ConceptOutput.

    A subclass sets ``num_codes`` (K) and ``usage`` (a ``CodebookUsage`` it updates in ``forward``),
    implements ``forward`` and ``code_vectors``, and overrides ``from_config`` when it reads options
    beyond ``num_codes``. ``set_step`` and ``statistics`` have defaults for layers without a schedule.
    """

    num_codes: int
    usage: CodebookUsage

    @classmethod
    def from_config(cls, config, dim: int) -> ConceptLayer:
        """The layer a ``ConceptConfig`` describes, over slot states of width ``dim``."""
        return cls(dim=dim, num_codes=config.num_codes)

    def forward(self, x: Tensor) -> ConceptOutput:
        raise NotImplementedError

    def code_vectors(self, which: str = "embedding") -> Tensor:
        """The ``[K, E]`` vectors the codes stand for.

        ``embedding``: the vectors fed to later layers (what the store records the norms of);
        ``readout``: the vectors that select the codes, where the layer has them apart (else the same).
        """
        raise NotImplementedError

    def embed_codes(self, codes: Tensor) -> Tensor:
        """Code ids ``[B, S]`` -> the vectors later layers read for them ``[B, S, E]``."""
        return self.code_vectors("embedding")[codes]

    def code_tensors(self) -> list[Tensor]:
        """The tensors whose row k belongs to code k (``[K, ...]``), which re-grounding reorders
        (``neurosym.regrounding``); a layer that cannot rename its codes raises ConfigError."""
        raise ConfigError(f"{type(self).__name__} cannot reorder its codes (re-grounding, train.reground_at)")

    def set_step(self, step: int) -> None:
        """Move step-dependent state (e.g. a temperature) to optimizer step ``step``; none by default."""

    def statistics(self) -> dict[str, float]:
        """Codebook usage since the last ``usage.reset()``, plus the layer's scheduled values."""
        return self.usage.stats()


def no_codebook(layer: nn.Module) -> ConfigError:
    """The error of a layer without discrete codes, asked for them."""
    return ConfigError(f"{type(layer).__name__} (concept kind 'none') emits no discrete codes and has no "
                       "codebook; use a discrete concept layer (model.concept.kind = 'gumbel' or 'vq')")
