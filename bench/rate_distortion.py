"""What discreteness costs: VQ-VAEs on the 8x8 digits over codebook size K and slots S.

    python bench/rate_distortion.py --json bench/rate_distortion.json --png docs/rate_distortion.png

Each point trains the VQ-VAE of ``neurosym.vqvae`` (Transformer encoder, VQ with EMA, data-initialised
codebook and dead-code restarts, Transformer decoder; one slot per patch, so S = 16 with 2x2 patches
and S = 4 with 4x4 patches) on the fixed train split and measures on the test split:

- ``mse``: reconstruction MSE (pixels in [0, 1]); ``mse_ratio_vs_continuous``: over the continuous
  autoencoder with the same architecture and latent width E (the quantizer replaced by the identity);
- ``probe_acc``: logistic regression on one-hot codes of the S slots -> digit (train -> test split);
  the continuous twin's probe reads its float latents;
- ``usage`` (fraction of the K codes used by train + test images), ``perplexity`` (train codes);
- ``bits`` = S log2 K per image; ``storage_ratio`` = float32 latent bits (S E 32) / code bits.

Prints and writes one JSON object; ``vqvae_16x64`` is the headline point (S = 16, K = 64, 96 bits)
and ``k512_usage`` the codebook usage at S = 16, K = 512.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neurosym.data.digits import load_digit_splits  # noqa: E402
from neurosym.reconstruction import ReconstructionTask, code_statistics  # noqa: E402
from neurosym.train import TrainConfig, fit  # noqa: E402
from neurosym.vqvae import VQVAE, VQVAEConfig, vqvae_concept  # noqa: E402

PATCH_FOR_SLOTS = {64: 1, 16: 2, 4: 4}


def linear_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor) -> float:
    from sklearn.linear_model import LogisticRegression

    probe = LogisticRegression(max_iter=3000).fit(train_x.numpy(), train_y.numpy())
    return float(probe.score(test_x.numpy(), test_y.numpy()))


def train_point(config: VQVAEConfig, epochs: int, seed: int, train, test) -> dict:
    """Train one VQ-VAE (or its continuous twin) and measure it."""
    torch.manual_seed(seed)
    model = VQVAE(config)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        settings = TrainConfig(epochs=epochs, batch_size=64, lr=2e-3, seed=seed, device="cpu")
        fit(model, ReconstructionTask(train.images, test.images), settings, scratch, progress=False)
    seconds = time.perf_counter() - started
    tr, te = code_statistics(model, train.images), code_statistics(model, test.images)
    kind = config.concept.kind
    if kind == "none":
        features = tr["latents"].flatten(1), te["latents"].flatten(1)
        usage = perplexity = bits = None
    else:
        features = tuple(F.one_hot(s["codes"], config.num_codes).flatten(1).float() for s in (tr, te))
        usage = len(torch.cat([tr["codes"], te["codes"]]).unique()) / config.num_codes
        perplexity, bits = tr["perplexity"], config.bits
    float_bits = config.num_slots * config.code_dim * 32
    return {
        "kind": kind, "slots": config.num_slots, "codes": config.num_codes if kind != "none" else None,
        "code_dim": config.code_dim, "bits": bits, "float32_bits": float_bits,
        "storage_ratio": round(float_bits / bits, 2) if bits else None,
        "mse": round(te["recon"], 6), "train_mse": round(tr["recon"], 6),
        "probe_acc": round(linear_probe(features[0], train.labels, features[1], test.labels), 4),
        "usage": None if usage is None else round(usage, 4),
        "perplexity": None if perplexity is None else round(perplexity, 2),
        "restarts": int(getattr(model.concept, "restarts", torch.zeros(())).item()) if kind == "vq" else None,
        "train_seconds": round(seconds, 1),
    }


def plot(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for slots in sorted({p["slots"] for p in points}):
        vq = sorted((p for p in points if p["slots"] == slots and p["kind"] == "vq"), key=lambda p: p["bits"])
        ax.plot([p["bits"] for p in vq], [p["mse"] for p in vq], "o-", label=f"VQ, S = {slots}")
        for p in vq:
            ax.annotate(f"K={p['codes']}", (p["bits"], p["mse"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        for p in points:
            if p["slots"] == slots and p["kind"] == "none":
                ax.axhline(p["mse"], ls="--", lw=0.8, color=ax.lines[-1].get_color(),
                           label=f"continuous, S = {slots} (E = {p['code_dim']})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("bits per image (S log2 K)")
    ax.set_ylabel("test reconstruction MSE")
    ax.set_title("Rate-distortion of VQ-VAEs on 8x8 digits")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown_table(points: list[dict]) -> str:
    rows = ["| S | K | bits | E | MSE | MSE / continuous | probe acc | usage | perplexity | storage ratio | train s |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in points:
        fmt = lambda v, spec="": "—" if v is None else format(v, spec)  # noqa: E731
        rows.append(f"| {p['slots']} | {fmt(p['codes']) if p['kind'] != 'none' else 'continuous'} | {fmt(p['bits'], '.0f')} "
                    f"| {p['code_dim']} | {p['mse']:.4f} | {fmt(p.get('mse_ratio_vs_continuous'), '.2f')} | {p['probe_acc']:.3f} "
                    f"| {fmt(p['usage'], '.3f')} | {fmt(p['perplexity'], '.1f')} | {fmt(p['storage_ratio'], '.1f')} | {p['train_seconds']} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the JSON object here too")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "rate_distortion.png")
    parser.add_argument("--table", type=Path, default=None, help="write the markdown table here")
    parser.add_argument("--codes", default="4,16,64,512", help="codebook sizes K to sweep")
    parser.add_argument("--slots", default="4,16", help="slot counts S to sweep (64, 16 or 4)")
    parser.add_argument("--code-dim", type=int, default=2, help="latent width E of every slot (VQ and continuous)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, test = load_digit_splits()
    started = time.perf_counter()
    points: list[dict] = []
    for slots in (int(s) for s in args.slots.split(",")):
        if slots not in PATCH_FOR_SLOTS:
            raise SystemExit(f"--slots: S = {slots} is not one of {sorted(PATCH_FOR_SLOTS)} (one slot per patch)")
        base = dict(patch_size=PATCH_FOR_SLOTS[slots], code_dim=args.code_dim)
        continuous = train_point(VQVAEConfig(concept=vqvae_concept(kind="none"), **base), args.epochs, args.seed, train, test)
        points.append(continuous)
        for codes in (int(k) for k in args.codes.split(",")):
            point = train_point(VQVAEConfig(concept=vqvae_concept(num_codes=codes), **base), args.epochs, args.seed, train, test)
            point["mse_ratio_vs_continuous"] = round(point["mse"] / continuous["mse"], 3)
            points.append(point)
            print(json.dumps(point), file=sys.stderr, flush=True)
    headline = next((p for p in points if p["slots"] == 16 and p["codes"] == 64), None)
    k512 = next((p for p in points if p["slots"] == 16 and p["codes"] == 512), None)
    result = {
        "vqvae_16x64": None if headline is None else {
            k: headline[k] for k in ("usage", "mse_ratio_vs_continuous", "probe_acc", "mse", "perplexity", "bits",
                                     "storage_ratio", "code_dim")},
        "k512_usage": None if k512 is None else k512["usage"],
        "points": points,
        "settings": {"epochs": args.epochs, "seed": args.seed, "code_dim": args.code_dim, "threads": args.threads},
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "torch": torch.__version__},
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    plot(points, args.png)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    if args.table:
        args.table.write_text(markdown_table(points) + "\n")


if __name__ == "__main__":
    main()
