"""Training throughput of the Concept Transformer: plain, with the Gumbel layer, with VQ.

    python bench/throughput.py --device cpu|cuda --json PATH

Benchmark config: d = 512, 8 blocks, 8 heads, sequences of 256 tokens, vocabulary 1024, and for the
concept variants a layer of K = 1024 codes per token after block 4 (the upper 4 blocks read only the
codes). One training step = forward + backward + AdamW step of a token-reconstruction objective
(predict each input token from the final states), bf16 autocast on CUDA. The three variants run
interleaved in one process, so their ratios are comparable on a noisy machine.

JSON: ``device`` (its name), ``inputs_per_s`` per variant, ``overhead`` (variant ÷ plain step time,
keyed ``gumbel`` and ``vq``), ``mfu`` per variant (model FLOP/s ÷ the device's dense peak) with
``flops_per_input`` and ``peak_flops`` (and where the peak comes from) beside it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from neurosym.model import ConceptConfig, ConceptTransformer, ModelConfig
from neurosym.train import select_device
from _output import emit  # noqa: E402  (bench/ is on sys.path when a script runs)

# Dense bf16 tensor-core peaks (no sparsity), from the vendors' data sheets.
GPU_PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12}
VARIANTS = ("plain", "gumbel", "vq")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark config's shape, as options (shared with ``profile_step.py``)."""
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--codes", type=int, default=1024)
    parser.add_argument("--depth", type=int, default=4)


def build(variant: str, args) -> torch.nn.Module:
    kind = {"plain": "none", "gumbel": "gumbel", "vq": "vq"}[variant]
    config = ModelConfig(
        input="tokens", vocab_size=args.vocab, max_tokens=args.seq, d_model=args.dim, n_heads=args.heads,
        n_layers=args.layers, concept_depth=args.depth,
        concept=ConceptConfig(kind=kind, num_codes=args.codes, slots="tokens"),
    )
    model = ConceptTransformer(config)
    model.lm_head = torch.nn.Linear(args.dim, args.vocab)
    return model


def flops_per_input(model: torch.nn.Module, args) -> float:
    """Training FLOPs of one sequence: 6 x (matmul parameters) x tokens + attention scores/values
    (12 x layers x tokens^2 x width), plus the concept layer's K-way projection/distances."""
    matmul_params = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "position" not in n)
    return 6 * matmul_params * args.seq + 12 * args.layers * args.seq ** 2 * args.dim


def measured_cpu_peak(device: torch.device) -> float:
    """Dense float32 matmul FLOP/s of this CPU (the best it does on a large GEMM)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        a @ b
        best = max(best, 2 * 2048 ** 3 / (time.perf_counter() - started))
    return best


def step_time(model, optimizer, tokens, device) -> float:
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    with autocast:
        out = model(tokens)
        logits = model.lm_head(out.states)  # (B, T, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), tokens.flatten()) + out.concepts.aux_loss
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", dest="json_path", default=None)
    parser.add_argument("--batch", type=int, default=None, help="Sequences per step (default 2 on CPU, 64 on CUDA).")
    parser.add_argument("--steps", type=int, default=None, help="Timed steps per variant (default 3 CPU, 20 CUDA).")
    add_model_arguments(parser)
    parser.add_argument("--compile", action="store_true", help="torch.compile each model first.")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = select_device(args.device)
    cuda = device.type == "cuda"
    batch = args.batch or (64 if cuda else 2)
    steps = args.steps or (20 if cuda else 3)
    models, optimizers = {}, {}
    for variant in VARIANTS:
        torch.manual_seed(0)
        model = build(variant, args).to(device)
        models[variant] = torch.compile(model) if args.compile else model
        optimizers[variant] = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=cuda)
    tokens = torch.randint(0, args.vocab, (batch, args.seq), device=device)
    for variant in VARIANTS:  # warm-up (allocations, kernels, compilation)
        step_time(models[variant], optimizers[variant], tokens, device)
    times = {variant: [] for variant in VARIANTS}
    for _ in range(steps):  # interleaved, so drifts in machine speed hit every variant alike
        for variant in VARIANTS:
            times[variant].append(step_time(models[variant], optimizers[variant], tokens, device))
    median = {v: statistics.median(t) for v, t in times.items()}
    flops = {v: flops_per_input(models[v], args) for v in VARIANTS}
    if cuda:
        name = torch.cuda.get_device_name(device)
        peak = next((p for key, p in GPU_PEAK_BF16.items() if key in name), None)
        peak_source = "vendor dense bf16 peak" if peak else "unknown GPU: no peak known"
    else:
        name = f"CPU ({args.threads} threads)"
        peak, peak_source = measured_cpu_peak(device), "measured dense fp32 GEMM (2048^3) on this CPU"
    result = {
        "device": name,
        "config": {k: getattr(args, k) for k in ("dim", "layers", "heads", "seq", "vocab", "codes", "depth")} | {"batch": batch},
        "steps": steps,
        "step_seconds": median,
        "inputs_per_s": {v: batch / median[v] for v in VARIANTS},
        "overhead": {v: median[v] / median["plain"] for v in ("gumbel", "vq")},
        "flops_per_input": flops,
        "peak_flops": peak,
        "peak_source": peak_source,
        "mfu": {v: (flops[v] * batch / median[v] / peak) if peak else None for v in VARIANTS},
        "compile": args.compile,
    }
    emit(result, args.json_path)


if __name__ == "__main__":
    main()
