#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and a CUDA build of torch already installed:
# builds the CUDA extension, runs the CUDA tests, the operator tests (now also on the CUDA
# backend) and the speed suite against cuDNN and the FFT composition. Logs go to $OUT
# (default: ./gpu_check_out). Usage: OUT=/some/dir bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
{ nvidia-smi; python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available(), torch.cuda.get_device_name(0))"; } > "$OUT/env.txt" 2>&1
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || { echo "no CUDA torch/GPU" | tee "$OUT/FAILED"; exit 1; }
pip install -q pytest pytest-benchmark hypothesis scikit-image > "$OUT/pip.log" 2>&1
FORCE_CUDA=1 MAX_JOBS=16 pip install --no-build-isolation --no-deps -e . > "$OUT/build.log" 2>&1 || { tail -50 "$OUT/build.log"; echo "build failed" | tee "$OUT/FAILED"; exit 1; }
python -m pytest tests/test_cuda.py -q -rs 2>&1 | tee "$OUT/cuda_tests.log"
python -m pytest tests/test_degrade_ops.py tests/test_degradation.py -q 2>&1 | tail -5 | tee "$OUT/cpu_tests.log"
python -m pytest benchmarks/test_bench_degrade.py -q -k cuda --benchmark-json "$OUT/bench_cuda.json" 2>&1 | tee "$OUT/bench_cuda.log"
echo done > "$OUT/DONE"
