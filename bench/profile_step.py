"""Where a training step of the throughput benchmark's config spends its time (torch.profiler).

    python bench/profile_step.py --device cuda --out DIR [--variants plain,gumbel,vq] [--compile]

Per variant: a few profiled steps after warm-up; writes ``profile_<variant>.txt`` (the top
operators and kernels by device time) and prints one JSON object: per variant the wall time of a
step, the summed device-kernel time of a step (``kernel_busy`` = kernel time ÷ wall time: near 1
means the GPU never waits for the host), kernel launches per step, peak memory, and the share of
kernel time in matrix-multiply (GEMM) and attention kernels.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _output import emit  # noqa: E402
from throughput import VARIANTS, add_model_arguments, build, step_time  # noqa: E402

from neurosym.train import select_device  # noqa: E402

GEMM_MARKERS = ("gemm", "sm90_xmma", "cutlass", "nvjet", "matmul")
ATTENTION_MARKERS = ("flash", "fmha", "attention", "sdpa", "cudnn")


def _device_time(event) -> float:
    """Microseconds an event kept the device busy (the attribute's name changed across versions)."""
    for name in ("self_device_time_total", "self_cuda_time_total"):
        value = getattr(event, name, None)
        if value is not None:
            return float(value)
    return 0.0


def profile_variant(variant: str, args, device: torch.device, out: Path) -> dict:
    from torch.profiler import ProfilerActivity, profile

    torch.manual_seed(0)
    model = build(variant, args).to(device)
    step_model = torch.compile(model) if args.compile else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    tokens = torch.randint(0, args.vocab, (args.batch, args.seq), device=device)
    for _ in range(args.warmup):  # compiled modules forward attribute access (lm_head) to the original
        step_time(step_model, optimizer, tokens, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    started = time.perf_counter()
    with profile(activities=activities) as prof:
        for _ in range(args.steps):
            step_time(step_model, optimizer, tokens, device)
    wall = (time.perf_counter() - started) / args.steps
    events = prof.key_averages()
    kernels = [e for e in events if e.device_type is not None and "CUDA" in str(e.device_type) and _device_time(e) > 0]
    kernel_us = sum(_device_time(e) for e in kernels)
    launches = sum(e.count for e in kernels)
    gemm = sum(_device_time(e) for e in kernels if any(m in e.key.lower() for m in GEMM_MARKERS))
    attention = sum(_device_time(e) for e in kernels if any(m in e.key.lower() for m in ATTENTION_MARKERS))
    sort_key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    (out / f"profile_{variant}.txt").write_text(events.table(sort_by=sort_key, row_limit=30, max_name_column_width=70))
    return {
        "wall_ms_per_step": round(1e3 * wall, 3),
        "kernel_ms_per_step": round(kernel_us / 1e3 / args.steps, 3),
        "kernel_busy": round(kernel_us / 1e6 / args.steps / wall, 3) if wall else None,
        "kernel_launches_per_step": round(launches / args.steps, 1),
        "gemm_share": round(gemm / kernel_us, 3) if kernel_us else None,
        "attention_share": round(attention / kernel_us, 3) if kernel_us else None,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2) if device.type == "cuda" else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default="profile")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    add_model_arguments(parser)
    parser.add_argument("--json", dest="json_path", default=None)
    args = parser.parse_args()
    device = select_device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    result = {"device": name, "compile": args.compile, "batch": args.batch,
              "variants": {v: profile_variant(v, args, device, out) for v in args.variants.split(",")}}
    emit(result, args.json_path)


if __name__ == "__main__":
    main()
