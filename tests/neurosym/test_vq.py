import pytest
import torch

from neurosym.concepts import VectorQuantizer
from neurosym.concepts.vq import nearest_code_distances
from neurosym.errors import ConfigError


def test_distances_match_brute_force():
    x, codebook = torch.randn(9, 4), torch.randn(6, 4)
    expected = ((x[:, None, :] - codebook[None]) ** 2).sum(-1)
    assert torch.allclose(nearest_code_distances(x, codebook), expected, atol=1e-5)


@pytest.mark.parametrize("cosine", [False, True])
def test_quantizes_to_the_nearest_code(cosine):
    layer = VectorQuantizer(4, 8, cosine=cosine, dead_code_threshold=0).eval()
    x = torch.randn(5, 3, 4)
    out = layer(x)
    z = torch.nn.functional.normalize(x, dim=-1) if cosine else x
    book = torch.nn.functional.normalize(layer.codebook, dim=-1) if cosine else layer.codebook
    expected = nearest_code_distances(z.reshape(-1, 4), book).argmin(-1).view(5, 3)
    assert torch.equal(out.codes, expected)
    assert torch.allclose(out.quantized, book[expected], atol=1e-6)


def test_straight_through_gradient_reaches_encoder_and_codebook():
    encoder = torch.nn.Linear(4, 4)
    layer = VectorQuantizer(4, 8, ema=False, dead_code_threshold=0)
    out = layer(encoder(torch.randn(16, 2, 4)))
    (out.quantized.sum() + out.aux_loss).backward()
    assert encoder.weight.grad.abs().sum() > 0
    assert layer.codebook.grad.abs().sum() > 0


def test_commitment_loss_is_weighted_distance_to_codes():
    layer = VectorQuantizer(4, 8, commitment_weight=0.5, dead_code_threshold=0).eval()
    x = torch.randn(6, 1, 4)
    out = layer(x)
    expected = 0.5 * torch.nn.functional.mse_loss(x.view(-1, 4), layer.codebook[out.codes.view(-1)])
    assert out.aux_loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_ema_moves_codes_toward_their_inputs():
    torch.manual_seed(0)
    layer = VectorQuantizer(2, 4, decay=0.5, dead_code_threshold=0)
    target = torch.tensor([[3.0, 3.0]]).expand(64, 1, 2).contiguous()
    code = layer.eval()(target).codes[0, 0]
    before = (layer.codebook[code] - target[0, 0]).norm()
    layer.train()
    for _ in range(10):
        layer(target)
    assert (layer.codebook[code] - target[0, 0]).norm() < 0.01 * before


def test_inference_is_deterministic_and_leaves_the_codebook_alone():
    torch.manual_seed(0)
    layer = VectorQuantizer(4, 8).eval()
    x = torch.randn(10, 2, 4)
    book = layer.codebook.clone()
    nearest = ((x[:, :, None, :] - book) ** 2).sum(-1).argmin(-1)  # (10, 2), by brute force
    first = layer(x).codes
    assert torch.equal(first, nearest)
    # Again, and one input at a time in another order: the same codes, the codebook untouched.
    assert torch.equal(layer(x).codes, nearest)
    assert torch.equal(torch.cat([layer(x[i:i + 1]).codes for i in reversed(range(10))]), nearest.flip(0))
    assert torch.equal(book, layer.codebook)


def test_dead_codes_are_restarted_from_recent_inputs():
    torch.manual_seed(0)
    layer = VectorQuantizer(2, 16, decay=0.5, dead_code_threshold=0.5, recent_size=256)
    # Inputs live far away from the initial codebook in one small cluster: most codes go unused.
    for _ in range(20):
        layer(torch.randn(64, 1, 2) * 0.1 + 10.0)
    assert int(layer.restarts) > 0
    # Restarted codes were drawn from recent inputs, so now most codes sit near the cluster.
    near = (layer.codebook - 10.0).norm(dim=-1) < 1.0
    assert near.float().mean() > 0.8
    layer.usage.reset()
    layer.eval()(torch.randn(512, 1, 2) * 0.1 + 10.0)
    assert layer.usage.usage() > 0.5


def test_invalid_settings_name_the_parameter():
    with pytest.raises(ConfigError, match="num_codes"):
        VectorQuantizer(4, 1)
    with pytest.raises(ConfigError, match="decay"):
        VectorQuantizer(4, 8, decay=1.5)
