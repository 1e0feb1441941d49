#!/usr/bin/env bash
# Every check that needs a GPU, in one call: the CUDA tests, throughput at the benchmark config
# (eager at two batch sizes, then compiled), a profile of the step, and the main job on CUDA.
#   bash bench/gpu_checks.sh OUTDIR
# Without the project installed: run from the repository root (PYTHONPATH is set to it).
set -uo pipefail
out=${1:-gpu-out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a "$out/gpu.txt"
echo "== throughput, eager, batch 64"
timeout 150 python3 bench/throughput.py --device cuda --json "$out/throughput_cuda.json" | tail -25
echo "== throughput, eager, batch 128"
timeout 150 python3 bench/throughput.py --device cuda --batch 128 --json "$out/throughput_cuda_b128.json" | grep -A4 inputs_per_s
echo "== profile"
timeout 150 python3 bench/profile_step.py --device cuda --out "$out" --json "$out/profile.json" | tail -40
echo "== CUDA tests"
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/neurosym/test_cuda.py -rs 2>&1 | tee "$out/pytest_cuda.log" | tail -15
echo "== main job on CUDA"
timeout 200 python3 -m pipelines.cli train --device cuda --store /tmp/gpu.sqlite --run-dir /tmp/gpu-run --fresh 2>&1 \
  | tail -12 | tee "$out/train_cuda.log"
echo "== throughput, torch.compile"
timeout 240 python3 bench/throughput.py --device cuda --compile --json "$out/throughput_cuda_compile.json" | grep -A12 inputs_per_s
