#!/usr/bin/env bash
# The GPU checks of the CUDA kernels, in one short run (a few minutes) on a machine
# with an NVIDIA GPU, a CUDA build of torch and nvcc:
#   1. build the extension in place with its CUDA kernels, for this GPU's
#      architecture only (fast);
#   2. the op tests on CUDA tensors (tests/test_ops_cuda.py: against the CPU op and
#      the reference up to 4K frames, gradcheck at 1080p), then the CPU op tests;
#   3. benchmarks/bench_scan.py --device cuda: the CUDA figures against the traffic floor.
# Usage: bash scripts/check_gpu.sh     (MAX_JOBS, CUDA_HOME as for any torch extension)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [[ -z "${CUDA_HOME:-}" && -x /usr/local/cuda/bin/nvcc ]]; then export CUDA_HOME=/usr/local/cuda; fi

"$PY" - <<'PYEOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit(f"check_gpu: no usable GPU (torch {torch.__version__}, CUDA {torch.version.cuda})")
print(f"check_gpu: torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}")
PYEOF
arch="$("$PY" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')"

start=$(date +%s)
TPN_BUILD_CUDA=1 TORCH_CUDA_ARCH_LIST="$arch" MAX_JOBS="${MAX_JOBS:-8}" \
  "$PY" setup.py build_ext --inplace > /tmp/tpn-check-gpu-build.log 2>&1 \
  || { tail -n 40 /tmp/tpn-check-gpu-build.log; echo "check_gpu: build FAILED"; exit 1; }
echo "check_gpu: built for sm_${arch/./} in $(( $(date +%s) - start )) s"

"$PY" -m pytest -q -rs tests/test_ops_cuda.py tests/test_ops_dtypes.py tests/test_ops.py
"$PY" benchmarks/bench_scan.py --device cuda --repeat 5
echo "check_gpu: done in $(( $(date +%s) - start )) s"
