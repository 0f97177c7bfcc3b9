#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU, nvcc and a CUDA build of torch already
# installed (nothing is fetched): in order of importance,
#   1. builds the CUDA extension in place and checks that its CUDA kernels are registered;
#   2. runs the CUDA tests (tests/test_cuda.py);
#   3. `kf upscale --device cuda --preset cpu` on the bundled example, with a report;
#   4. the degradation speed suite on CUDA (fused ops against cuDNN and FFT compositions);
#   5. benchmarks.gpu_paper on the cases packed in $CASES (the paper preset's cost per
#      phase, one full-scale Phase 2, the cpu preset beside it);
#   6. the test suite ($SUITE, default all) with the GPU present, in the time that is left.
# Each stage has a time limit and the whole ends within $BUDGET seconds (default 540).
# Stage 5 stops Phase 2 after $PAPER_SECONDS (default 180: the paper preset's timings
# only; a full Phase 2 at 128² LR takes about 6 min on one H200, so a quality run needs
# PAPER_SECONDS=420 in a call of its own, e.g. with SUITE= and the other stages' results
# already in hand). SUITE= (empty) skips stage 6.
# Logs go to $OUT (default ./gpu_check_out), at most 7 files.
#   python -m benchmarks.gpu_paper --pack zebra/levin_k2 --cases .gpu/cases.pt   # beforehand
#   OUT=/some/dir bash benchmarks/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_check_out}
CASES=${CASES:-.gpu/cases.pt}
BUDGET=${BUDGET:-540}
SUITE=${SUITE:-tests}          # what stage 6 runs
PAPER_SECONDS=${PAPER_SECONDS:-180}  # Phase-2 limit of stage 5 (0 skips the stage)
PY=${PY:-python3}
mkdir -p "$OUT"
KFOPS_CACHE=$(mktemp -d)
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 KFOPS_CACHE

stage() {  # stage NAME LIMIT CMD...: run CMD with min(LIMIT, time left) seconds
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET - SECONDS - 5))
  ((left < limit)) && limit=$left
  if ((limit < 10)); then
    echo "== $name: skipped, no time left"
    return 124
  fi
  echo "== $name (limit ${limit}s, at ${SECONDS}s)"
  local t0=$SECONDS
  timeout -k 5 "$limit" "$@"
  local rc=$?
  echo "== $name: rc=$rc after $((SECONDS - t0))s"
  return $rc
}

{
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  nvcc --version | tail -2
  $PY -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.is_available())"
  lscpu | grep -E "Model name|^CPU\(s\)"
  stage build 300 env FORCE_CUDA=1 MAX_JOBS=16 $PY setup.py build_ext --inplace
  $PY - <<'EOF'
import torch
import kfops
print("HAS_EXT", kfops.HAS_EXT)
for op in ("degrade", "degrade_adjoint", "degrade_kernel_grad", "tv_grad"):
    print(op, "CUDA kernel:", torch._C._dispatch_has_kernel_for_dispatch_key(f"kfops::{op}", "CUDA"))
EOF
} > "$OUT/env_build.log" 2>&1

PYTEST=($PY -m pytest -p no:cacheprovider -q -rs)
$PY -c "import pytest_timeout" 2>/dev/null && PYTEST+=(--timeout 120)
{
  stage cuda_tests 120 "${PYTEST[@]}" tests/test_cuda.py tests/test_degrade_ops.py tests/test_tv_op.py
} > "$OUT/tests.log" 2>&1

{
  stage kf_upscale_cuda 150 $PY -m kfcli.main upscale examples/butterfly.png -s 4 \
    -o /tmp/sr_cuda.png --device cuda --preset cpu --report "$OUT/report.png" \
    --save-kernel /tmp/kernel_cuda.npy
  $PY -c "import numpy as np; k = np.load('/tmp/kernel_cuda.npy'); print('kernel', k.shape, k.sum())"
} > "$OUT/run.log" 2>&1

stage bench_cuda 150 "${PYTEST[@]}" benchmarks/test_bench_degrade.py -k cuda \
  --benchmark-json "$OUT/bench.json" --benchmark-columns=min,mean,stddev,rounds \
  > "$OUT/bench.log" 2>&1

{
  if ((PAPER_SECONDS > 0)); then
    stage gpu_paper $((PAPER_SECONDS + 150)) $PY -m benchmarks.gpu_paper --cases "$CASES" \
      --prior-seconds 45 --phase2-seconds "$PAPER_SECONDS" --out "$OUT/paper.jsonl"
  fi
} >> "$OUT/run.log" 2>&1

if [[ -n "$SUITE" ]]; then
  stage test_suite 300 "${PYTEST[@]}" $SUITE >> "$OUT/tests.log" 2>&1
fi
echo "done at ${SECONDS}s" >> "$OUT/run.log"
