#!/usr/bin/env bash
# Every check that needs the device machine, in one call: the CUDA tests, the main job on CUDA,
# throughput at the benchmark config (eager at two batch sizes, then compiled), a profile of the step,
# and the RDF view's bulk load on 2 cores and on all of the machine's cores.
#   bash bench/gpu_checks.sh OUTDIR [SECTION ...]
# SECTIONs (default: all, in this order): tests train throughput profile compile view.
# Without the project installed: run from the repository root (PYTHONPATH is set to it).
set -uo pipefail
out=${1:-gpu-out}
shift || true
sections=${*:-tests train throughput profile compile view}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda)" | tee -a "$out/gpu.txt"
echo "cores: $(nproc); $(grep -m1 'model name' /proc/cpuinfo)" | tee -a "$out/gpu.txt"

for section in $sections; do
  case $section in
    tests)
      echo "== CUDA tests"
      timeout 300 python3 -m pytest -q -p no:cacheprovider tests/neurosym/test_cuda.py -rs 2>&1 | tee "$out/pytest_cuda.log" | tail -15 ;;
    train)
      echo "== main job on CUDA"
      timeout 200 python3 -m pipelines.cli train --device cuda --store /tmp/gpu.sqlite --run-dir /tmp/gpu-run --fresh 2>&1 \
        | tail -12 | tee "$out/train_cuda.log" ;;
    throughput)
      echo "== throughput, eager, batch 64"
      timeout 150 python3 bench/throughput.py --device cuda --json "$out/throughput_cuda.json" | tail -25
      echo "== throughput, eager, batch 128"
      timeout 150 python3 bench/throughput.py --device cuda --batch 128 --json "$out/throughput_cuda_b128.json" | grep -A4 inputs_per_s ;;
    profile)
      echo "== profile"
      timeout 150 python3 bench/profile_step.py --device cuda --out "$out" --json "$out/profile.json" | tail -40 ;;
    compile)
      echo "== throughput, torch.compile"
      timeout 240 python3 bench/throughput.py --device cuda --compile --json "$out/throughput_cuda_compile.json" | grep -A12 inputs_per_s ;;
    view)
      # The view build's floor (bench/view_engine.py) on 2 of the machine's cores and on all of them.
      echo "== RDF view bulk load, 2 cores and all cores"
      timeout 120 taskset -c 0,1 python3 bench/view_engine.py --n 1000000 --layouts nodes5 --json "$out/view_engine_2cores.json" 2>&1 | grep '"layout"'
      timeout 120 python3 bench/view_engine.py --n 1000000 --layouts nodes5 --json "$out/view_engine_allcores.json" 2>&1 | grep '"layout"' ;;
    *) echo "unknown section $section (tests train throughput profile compile view)" >&2; exit 2 ;;
  esac
done
