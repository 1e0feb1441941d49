"""Every registered concept layer keeps the ConceptLayer contract that models, trainer and pipeline rely on."""

import dataclasses

import pytest
import torch

from neurosym.concepts import ConceptConfig, ConceptLayer, TemperatureSchedule, build_concept_layer
from neurosym.config import from_dict
from neurosym.errors import ConfigError
from neurosym.vqvae import VQVAEConfig, upgrade_saved_config, vqvae_concept

DISCRETE = ["gumbel", "vq"]


@pytest.mark.parametrize("kind", DISCRETE)
def test_the_vectors_of_a_layers_codes_are_what_it_feeds_forward(kind):
    torch.manual_seed(0)
    layer = build_concept_layer(ConceptConfig(kind=kind, num_codes=6), dim=8).eval()
    assert isinstance(layer, ConceptLayer) and layer.num_codes == 6
    out = layer(torch.randn(5, 2, 8))
    assert out.codes.shape == (5, 2) and out.log_probs.shape == (5, 2, 6)
    assert layer.code_vectors().shape[0] == 6 and layer.code_vectors("readout").shape[0] == 6
    torch.testing.assert_close(layer.embed_codes(out.codes), out.quantized)


@pytest.mark.parametrize("kind", DISCRETE)
def test_statistics_count_the_codes_of_the_batches_seen(kind):
    layer = build_concept_layer(ConceptConfig(kind=kind, num_codes=4), dim=8).train()
    layer.usage.reset()
    seen = [layer(torch.randn(n, 1, 8)).codes for n in (64, 16)]  # two batches, counted together
    counts = torch.bincount(torch.cat([c.reshape(-1) for c in seen]), minlength=4).double()
    assert torch.equal(layer.usage.counts, counts)
    share = counts / counts.sum()
    entropy = -(share[share > 0] * share[share > 0].log()).sum()
    stats = layer.statistics()
    assert stats["codebook_usage"] == pytest.approx(float((counts > 0).double().mean()))
    assert stats["codebook_perplexity"] == pytest.approx(float(entropy.exp()))
    layer.usage.reset()
    assert layer.statistics()["codebook_usage"] == 0.0


def test_set_step_anneals_the_gumbel_temperature_and_is_a_no_op_elsewhere():
    schedule = TemperatureSchedule("exponential", 1.0, 0.25, 10)
    gumbel = build_concept_layer(ConceptConfig(kind="gumbel", temperature=schedule), dim=8)
    gumbel.set_step(10)
    assert gumbel.statistics()["temperature"] == pytest.approx(0.25)
    vq = build_concept_layer(ConceptConfig(kind="vq"), dim=8)
    vq.set_step(10)
    assert vq.statistics()["temperature"] == 1.0  # its fixed distance scale
    none = build_concept_layer(ConceptConfig(kind="none"), dim=8)
    none.set_step(10)
    assert "temperature" not in none.statistics()


def test_the_continuous_layer_has_no_codebook_and_says_so():
    layer = build_concept_layer(ConceptConfig(kind="none"), dim=8)
    with pytest.raises(ConfigError, match=r"^ContinuousConcepts \(concept kind 'none'\) emits no discrete codes"):
        layer.code_vectors()


def test_an_unknown_kind_is_an_error_naming_the_known_ones():
    with pytest.raises(ConfigError, match=r"concept.kind = 'vqq' is not a registered concept layer \(known: gumbel, none, vq"):
        ConceptConfig(kind="vqq")


def test_the_vqvae_refuses_a_stem_its_decoder_cannot_undo():
    with pytest.raises(ConfigError, match=r"vqvae.stem_channels must be 0 .*got 8"):
        VQVAEConfig(stem_channels=8)


def test_a_vqvae_config_saved_before_the_concept_section_was_nested_still_loads():
    new = VQVAEConfig(concept=vqvae_concept(kind="gumbel", num_codes=8), d_model=16, n_heads=2)
    saved = dataclasses.asdict(new)
    old = {key: value for key, value in saved.items() if key != "concept"}
    old.update({key: saved["concept"][key] for key in ("kind", "num_codes", "slots", "num_slots", "commitment_weight",
                                                       "decay", "cosine", "dead_code_threshold", "temperature")})
    assert from_dict(VQVAEConfig, upgrade_saved_config(old)) == new
