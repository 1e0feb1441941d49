import pytest
import torch

from neurosym.errors import ConfigError
from neurosym.model import ConceptConfig, ConceptTransformer, ModelConfig
from neurosym.prefix import DiscretePrefix, PrefixedConceptTransformer, snap_to_anchors


def test_snapping_picks_the_nearest_anchor_and_passes_gradients_to_both():
    anchors = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]], requires_grad=True)
    prefix = torch.tensor([[0.9, 1.2], [4.0, 6.0]], requires_grad=True)
    snapped, codes, log_probs = snap_to_anchors(prefix, anchors)
    assert codes.tolist() == [1, 2]
    assert torch.equal(snapped.detach(), anchors.detach()[[1, 2]])
    assert log_probs.shape == (2, 3)
    (snapped * torch.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    assert torch.equal(prefix.grad, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))  # straight-through
    assert torch.equal(anchors.grad[1:], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))  # the chosen anchors
    assert anchors.grad[0].abs().sum() == 0  # an unchosen anchor gets nothing from the task


def test_prefix_is_prepended_and_anchors_learn():
    torch.manual_seed(0)
    layer = DiscretePrefix(length=3, dim=4, num_anchors=5, context=10)
    x = torch.randn(2, 6, 4)
    out = layer(x)
    assert out.sequence.shape == (2, 9, 4)
    assert torch.equal(out.sequence[:, 3:], x)
    assert torch.allclose(out.sequence[0, :3], layer.anchors[out.codes])
    (out.sequence.sum() + out.aux_loss).backward()
    assert layer.anchors.grad[out.codes].abs().sum() > 0
    assert layer.prefix.grad.abs().sum() > 0
    codes, confidence = layer.symbols()
    assert torch.equal(codes, out.codes) and ((confidence > 0) & (confidence <= 1)).all()


def test_prefix_longer_than_the_context_is_a_clear_error():
    with pytest.raises(ConfigError, match="prefix length 12 is longer than the model's context of 10"):
        DiscretePrefix(length=12, dim=4, num_anchors=5, context=10)
    layer = DiscretePrefix(length=4, dim=4, num_anchors=5, context=10)
    with pytest.raises(ConfigError, match=r"prefix length 4 \+ 7 input tokens exceeds the model's context of 10"):
        layer(torch.randn(1, 7, 4))
    model = ConceptTransformer(ModelConfig(input="tokens", vocab_size=9, max_tokens=8, d_model=16, n_heads=2))
    with pytest.raises(ConfigError, match="longer than the model's context of 8"):
        PrefixedConceptTransformer(model, length=9, num_anchors=4)


@pytest.mark.parametrize("slots", ["pooled", "tokens"])
def test_prefixed_transformer_trains_its_prefix(slots):
    torch.manual_seed(0)
    config = ModelConfig(input="tokens", vocab_size=9, max_tokens=12, d_model=16, n_heads=2, n_layers=2,
                         concept_depth=1, num_classes=3, concept=ConceptConfig(kind="vq", num_slots=2, slots=slots))
    model = PrefixedConceptTransformer(ConceptTransformer(config), length=3, num_anchors=6)
    out = model(torch.randint(0, 9, (4, 7)))
    assert out.logits.shape == (4, 3)
    assert out.concepts.codes.shape == (4, 2 if slots == "pooled" else 7)
    (out.logits.sum() + out.concepts.aux_loss).backward()
    assert model.prefix.anchors.grad.abs().sum() > 0
