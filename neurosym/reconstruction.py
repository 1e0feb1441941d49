"""Reconstruction as a training task, code statistics, and the digit generator's checkpoint.

Shape legend: N inputs, S slots, K codes.

``ReconstructionTask`` plugs a VQ-VAE into ``neurosym.train.fit``; ``code_statistics`` measures a
trained model (reconstruction MSE, codebook usage and perplexity on a split); ``save_generator`` /
``load_generator`` keep a VQ-VAE and its code prior in one self-describing checkpoint, which
``neurosym sample`` reads.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from neurosym.concepts import CodebookUsage
from neurosym.config import from_dict
from neurosym.errors import ConfigError, check_finite
from neurosym.prior import CodePrior, PriorConfig
from neurosym.tasks import shuffled_batches
from neurosym.version import code_version
from neurosym.vqvae import VQVAE, VQVAEConfig, upgrade_saved_config

GENERATOR_KIND = "neurosym.vqvae+prior"


class ReconstructionTask:
    """Rebuild the inputs: the loss is the model's ``VQVAEOutput.loss`` (reconstruction + the
    discrete layer's own loss). Evaluation reports held-out reconstruction loss, codebook usage and
    perplexity of the test inputs.

    Shapes: train/test inputs ``[N, ...]`` as the model reads them.
    """

    def __init__(self, train: Tensor, test: Tensor) -> None:
        check_finite("train inputs", train)
        check_finite("test inputs", test)
        self.train, self.test = train, test

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-self.train.shape[0] // batch_size)

    def batches(self, epoch: int, generator: torch.Generator, batch_size: int, rank: int = 0, world: int = 1):
        return shuffled_batches(self.train, generator, batch_size, rank, world)

    def loss(self, model: nn.Module, batch: Tensor, device: torch.device) -> Tensor:
        return model(batch.to(device, non_blocking=True)).loss

    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        stats = code_statistics(model, self.test, device)
        return {f"test_{k}": stats[k] for k in ("recon", "usage", "perplexity")}


@torch.no_grad()
def code_statistics(model: VQVAE, inputs: Tensor, device: torch.device | str = "cpu",
                    batch_size: int = 512) -> dict[str, Any]:
    """Encode ``inputs`` in eval mode: reconstruction loss (MSE, or cross-entropy for tokens), the
    fraction of codes used at least once, code perplexity, and the codes ``[N, S]`` themselves."""
    was_training = model.training
    model.eval()
    usage = CodebookUsage(model.concept.num_codes)
    total, codes, latents = 0.0, [], []
    for chunk in inputs.split(batch_size):
        out = model(chunk.to(device))
        total += float(out.recon_loss) * chunk.shape[0]
        usage.update(out.concepts.codes.cpu())
        codes.append(out.concepts.codes.cpu())
        latents.append(out.concepts.quantized.float().cpu())
    model.train(was_training)
    return {"recon": total / inputs.shape[0], "usage": usage.usage(), "perplexity": usage.perplexity(),
            "codes": torch.cat(codes), "latents": torch.cat(latents)}


def save_generator(path: str | Path, vqvae: VQVAE, prior: CodePrior, extra: dict | None = None) -> None:
    """One checkpoint with both models, their configs, the code version and ``extra`` metadata."""
    torch.save({
        "kind": GENERATOR_KIND, "vqvae_config": dataclasses.asdict(vqvae.config),
        "prior_config": dataclasses.asdict(prior.config), "vqvae": vqvae.state_dict(),
        "prior": prior.state_dict(), "code_version": code_version(), "extra": extra or {},
    }, path)


def load_generator(path: str | Path) -> tuple[VQVAE, CodePrior]:
    """Rebuild the VQ-VAE and prior of ``save_generator``; any other file is one ConfigError line."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise ConfigError(f"{path}: checkpoint not found") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise ConfigError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("kind") != GENERATOR_KIND:
        found = state.get("kind", "no 'kind' field") if isinstance(state, dict) else type(state).__name__
        raise ConfigError(f"{path}: not a VQ-VAE + prior checkpoint (expected kind {GENERATOR_KIND!r}, found {found!r})")
    vqvae = VQVAE(from_dict(VQVAEConfig, upgrade_saved_config(state["vqvae_config"]), "vqvae_config."))
    prior = CodePrior(from_dict(PriorConfig, state["prior_config"], "prior_config."))
    for name, model in (("vqvae", vqvae), ("prior", prior)):
        try:
            model.load_state_dict(state[name])
        except RuntimeError as exc:
            raise ConfigError(f"{path}: {name} weights do not fit its config ({str(exc).splitlines()[0]})") from None
    if (prior.config.num_codes, prior.config.num_slots) != (vqvae.config.num_codes, vqvae.config.num_slots):
        raise ConfigError(f"{path}: the prior models {prior.config.num_slots}x{prior.config.num_codes} codes, "
                          f"the VQ-VAE emits {vqvae.config.num_slots}x{vqvae.config.num_codes}")
    return vqvae.eval(), prior.eval()


def image_grid(images: Tensor, columns: int = 8, pad: int = 1) -> Tensor:
    """Images ``[B, H, W]`` or ``[B, 1, H, W]`` in [0, 1] -> one grid ``[rows*(H+pad)+pad, ...]``."""
    if images.dim() == 4:
        images = images[:, 0]
    count, height, width = images.shape
    rows = -(-count // columns)
    grid = torch.ones(rows * (height + pad) + pad, columns * (width + pad) + pad)
    for index in range(count):
        r, c = divmod(index, columns)
        top, left = pad + r * (height + pad), pad + c * (width + pad)
        grid[top:top + height, left:left + width] = images[index]
    return grid


def save_image_grid(images: Tensor, path: str | Path, columns: int = 8, scale: int = 8) -> Path:
    """Write ``image_grid(images)`` as a grayscale PNG (dark strokes on white), each pixel ``scale``x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = 1 - image_grid(images.detach().float().cpu().clamp(0, 1), columns)
    grid = grid.repeat_interleave(scale, 0).repeat_interleave(scale, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, grid.numpy(), cmap="gray", vmin=0, vmax=1)
    return path


@torch.no_grad()
def sample_inputs(vqvae: VQVAE, prior: CodePrior, count: int, temperature: float = 1.0,
                  top_k: int | None = None, seed: int = 0) -> Tensor:
    """Draw ``count`` code sequences from the prior and decode them: ``[count, ...]`` new inputs."""
    codes = prior.sample(count, temperature, top_k, torch.Generator().manual_seed(seed))
    return vqvae.decode_codes(codes.to(next(vqvae.parameters()).device))


def train_digit_generator(path: str | Path, vqvae_config: VQVAEConfig | None = None,
                          prior_config: PriorConfig | None = None, epochs: int = 30, prior_epochs: int = 40,
                          seed: int = 0, device: str = "cpu", progress: bool = False) -> dict[str, float]:
    """Train a VQ-VAE on the digits' train split, then a prior on its codes; save both to ``path``.

    Returns the held-out metrics (reconstruction MSE, codebook usage, prior NLL per code).
    """
    import tempfile

    from neurosym.data.digits import load_digit_splits
    from neurosym.prior import CodeSequenceTask
    from neurosym.train import TrainConfig, fit

    train, test = load_digit_splits()
    vqvae_config = vqvae_config or VQVAEConfig()
    torch.manual_seed(seed)
    vqvae = VQVAE(vqvae_config)
    with tempfile.TemporaryDirectory() as scratch:
        settings = TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, seed=seed, device=device)
        fit(vqvae, ReconstructionTask(train.images, test.images), settings, Path(scratch) / "vqvae", progress=progress)
        vqvae.cpu()
        train_stats, test_stats = code_statistics(vqvae, train.images), code_statistics(vqvae, test.images)
        prior_config = prior_config or PriorConfig(num_codes=vqvae_config.num_codes, num_slots=vqvae_config.num_slots)
        prior = CodePrior(prior_config)
        settings = TrainConfig(epochs=prior_epochs, batch_size=64, lr=2e-3, seed=seed, device=device)
        result = fit(prior, CodeSequenceTask(train_stats["codes"], test_stats["codes"]), settings,
                     Path(scratch) / "prior", progress=progress)
    metrics = {"test_mse": test_stats["recon"], "test_usage": test_stats["usage"],
               "prior_test_nll": result.metrics["test_nll"]}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_generator(path, vqvae.cpu(), prior.cpu(), extra={"dataset": "digits", "seed": seed, **metrics})
    return metrics
