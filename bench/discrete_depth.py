"""Where a discrete intermediate layer hurts least: digit accuracy over the concept layer's depth k.

    python bench/discrete_depth.py --json bench/discrete_depth.json

A ConceptTransformer with L blocks (2x2 patches, 16 tokens, ``slots = "tokens"``) classifies the 8x8
digits (supervised, fixed split). The concept layer sits after block k of L (k = 0: right after the
patch embedding; k = L: after the last block); the blocks above it and the head see only the code
vectors. Each depth is trained with VQ (K codes per token) and compared to the continuous model with
the same architecture (``concept.kind = "none"``). Prints and writes one JSON object.
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

from neurosym.concepts import CodebookUsage  # noqa: E402
from neurosym.data.digits import load_digit_splits  # noqa: E402
from neurosym.model import ConceptConfig, ConceptTransformer, ModelConfig  # noqa: E402
from neurosym.train import TrainConfig, fit  # noqa: E402


class DigitClassification:
    """Images -> digit labels through the model's head (a ``neurosym.train.Task``)."""

    def __init__(self, train, test) -> None:
        self.train, self.test = train, test

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-len(self.train) // batch_size)

    def batches(self, epoch, generator, batch_size, rank=0, world=1):
        order = torch.randperm(len(self.train), generator=generator)
        for start in range(0, order.shape[0], batch_size):
            chosen = order[start:start + batch_size]
            yield self.train.images[chosen], self.train.labels[chosen]

    def loss(self, model, batch, device):
        images, labels = batch
        out = model(images.to(device))
        return F.cross_entropy(out.logits.float(), labels.to(device)) + out.concepts.aux_loss

    def evaluate(self, model, device):
        out = model(self.test.images.to(device))
        usage = CodebookUsage(out.concepts.log_probs.shape[-1])
        usage.update(out.concepts.codes.cpu())
        return {"test_acc": float((out.logits.argmax(-1).cpu() == self.test.labels).double().mean()),
                "test_usage": usage.usage()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--layers", type=int, default=4, help="L, the number of blocks")
    parser.add_argument("--codes", type=int, default=16, help="K codes per token slot")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train, test = load_digit_splits()
    task = DigitClassification(train, test)
    started = time.perf_counter()
    rows = []
    for kind in ("vq", "none"):
        for depth in range(args.layers + 1):
            accs, usages, seconds = [], [], []
            for seed in (int(s) for s in args.seeds.split(",")):
                concept = ConceptConfig(kind=kind, num_codes=args.codes, slots="tokens")
                config = ModelConfig(d_model=32, n_heads=4, n_layers=args.layers, concept_depth=depth,
                                     num_classes=10, concept=concept)
                torch.manual_seed(seed)
                model = ConceptTransformer(config)
                with tempfile.TemporaryDirectory() as scratch:
                    result = fit(model, task, TrainConfig(epochs=args.epochs, batch_size=64, seed=seed, device="cpu"),
                                 scratch, progress=False)
                accs.append(result.metrics["test_acc"])
                usages.append(result.metrics["test_usage"])
                seconds.append(result.train_seconds)
            row = {"kind": kind, "depth": depth, "layers": args.layers, "test_acc": round(sum(accs) / len(accs), 4),
                   "test_acc_per_seed": [round(a, 4) for a in accs],
                   "usage": round(sum(usages) / len(usages), 4) if kind == "vq" else None,
                   "train_seconds": round(sum(seconds) / len(seconds), 1)}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    continuous = {r["depth"]: r["test_acc"] for r in rows if r["kind"] == "none"}
    for row in rows:
        if row["kind"] == "vq":
            row["acc_drop_vs_continuous"] = round(continuous[row["depth"]] - row["test_acc"], 4)
    vq_rows = [r for r in rows if r["kind"] == "vq"]
    best = min(vq_rows, key=lambda r: (r["acc_drop_vs_continuous"], -r["test_acc"]))
    result = {"rows": rows, "least_harmful_depth": best["depth"],
              "settings": {"layers": args.layers, "codes": args.codes, "epochs": args.epochs, "seeds": args.seeds,
                           "d_model": 32, "threads": args.threads},
              "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__},
              "total_seconds": round(time.perf_counter() - started, 1)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
