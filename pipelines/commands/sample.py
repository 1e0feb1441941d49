"""``neurosym sample``: draw new inputs from a VQ-VAE's code prior and write them as a PNG grid."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("sample")
@click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=Path), default=Path("runs/vqvae-digits.pt"),
              show_default=True, help="A VQ-VAE + prior checkpoint (neurosym.reconstruction.save_generator).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("samples.png"), show_default=True,
              help="PNG grid to write.")
@click.option("--count", type=click.IntRange(min=1), default=64, show_default=True, help="How many inputs to draw.")
@click.option("--columns", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--temperature", type=float, default=1.0, show_default=True, help="Prior sampling temperature.")
@click.option("--top-k", type=click.IntRange(min=1), default=None, help="Sample only among the k likeliest codes.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--train", "train_first", is_flag=True,
              help="Train a digit VQ-VAE and its prior into --checkpoint first (about a minute on 2 CPU cores).")
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True, help="VQ-VAE epochs with --train.")
def sample_command(checkpoint, out, count, columns, temperature, top_k, seed, train_first, epochs):
    """Sample codes from the prior of CHECKPOINT, decode them, write a PNG grid to OUT."""
    from neurosym.reconstruction import load_generator, sample_inputs, save_image_grid, train_digit_generator

    if train_first:
        metrics = train_digit_generator(checkpoint, epochs=epochs, seed=seed)
        click.echo(json.dumps({k: round(v, 4) for k, v in metrics.items()}))
    vqvae, prior = load_generator(checkpoint)
    if vqvae.config.input != "patches":
        raise click.ClickException(f"{checkpoint}: a {vqvae.config.input} VQ-VAE has no images to draw")
    images = sample_inputs(vqvae, prior, count, temperature, top_k, seed)
    save_image_grid(images, out, columns)
    click.echo(f"wrote {count} samples from {checkpoint} to {out}")


COMMANDS = [sample_command]
