"""The LeNet-5 stem: the plain CNN of the NeSy literature as the model's input section."""

from __future__ import annotations

import pytest
import torch

from neurosym.errors import ConfigError
from neurosym.model import ConceptTransformer, ModelConfig


def lenet(**changes) -> ModelConfig:
    return ModelConfig(**{"image_size": 28, "patch_size": 4, "stem": "lenet", "stem_channels": 16, "n_layers": 0,
                          "d_model": 84, "n_heads": 4} | changes)


def test_a_28_pixel_digit_becomes_lenets_4x4_map_and_one_token():
    config = lenet()
    assert config.stem_map_size == 4 and config.patch_tokens == 1
    model = ConceptTransformer(config)
    convolutions = [m for m in model.adapter.proj if isinstance(m, torch.nn.Conv2d)]
    # LeNet-5: 1 -> 6 -> 16 maps with 5x5 kernels, then the 4x4 map read whole (patch 4) into d_model
    assert [(c.in_channels, c.out_channels, c.kernel_size) for c in convolutions] == [
        (1, 6, (5, 5)), (6, 16, (5, 5)), (16, 84, (4, 4))]
    _, concepts = model.encode(torch.randn(3, 28, 28))
    assert concepts.log_probs.shape == (3, 1, 10)


def test_patch_sizes_that_do_not_divide_the_map_and_images_too_small_are_refused():
    with pytest.raises(ConfigError, match=r"patch_size 3 does not divide the 4x4 map the lenet stem leaves \(4\)"):
        lenet(patch_size=3)
    with pytest.raises(ConfigError, match="model.stem = 'lenet' needs images of at least 16 pixels a side, got 8"):
        lenet(image_size=8, patch_size=1)
    with pytest.raises(ConfigError, match="model.stem = 'lenet' needs model.stem_channels > 0"):
        lenet(stem_channels=0)
