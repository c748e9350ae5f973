#!/usr/bin/env bash
# Builds the full tpn extension (ops.cpp + scan_cpu.cpp + scan_cuda.cu) against a
# CUDA-enabled torch with torch.utils.cpp_extension.CUDAExtension, then imports it
# and checks that the ops registered their CPU and CUDA kernels. Works on a
# machine without a GPU (the import succeeds; calling the ops on CUDA would not).
#
# Usage: scripts/build_cuda_extension.sh [VENV_DIR]    (default /tmp/tpn-cuda-venv)
# The venv gets torch==$TPN_CUDA_TORCH (default 2.14.1, the CUDA 13 build; ~5.5 GB)
# and is reused when it already has that version. The build goes to a temporary
# directory that is removed afterwards (set TPN_KEEP_BUILD=1 to keep it).
# Environment: TORCH_CUDA_ARCH_LIST (default below: every arch CUDA 13 still
# supports, Turing and newer), MAX_JOBS (default 2), CUDA_HOME.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-/tmp/tpn-cuda-venv}"
TORCH_VERSION="${TPN_CUDA_TORCH:-2.14.1}"
PY="$VENV/bin/python"

if [[ -x /usr/local/cuda/bin/nvcc ]]; then export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"; fi
if ! command -v nvcc >/dev/null 2>&1 && [[ -z "${CUDA_HOME:-}" ]]; then
  echo "build_cuda_extension: nvcc not found (set CUDA_HOME); cannot build the CUDA extension" >&2
  exit 1
fi

if [[ -x "$PY" ]] && "$PY" -c "import torch, sys; sys.exit(not torch.__version__.startswith('$TORCH_VERSION'))" 2>/dev/null; then
  echo "build_cuda_extension: reusing $VENV (torch $TORCH_VERSION)"
else
  echo "build_cuda_extension: creating $VENV with torch==$TORCH_VERSION"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "torch==$TORCH_VERSION" ninja setuptools
fi
"$VENV/bin/pip" install --quiet ninja setuptools >/dev/null 2>&1 || true  # older venvs

# CUDA 13 supports sm_75 (Turing) and newer; +PTX on the last one lets future
# GPUs JIT the kernels.
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-7.5;8.0;8.6;8.9;9.0;10.0;12.0+PTX}"
export MAX_JOBS="${MAX_JOBS:-2}"

BUILD="$(mktemp -d /tmp/tpn-cuda-build.XXXXXX)"
if [[ "${TPN_KEEP_BUILD:-0}" != 1 ]]; then trap 'rm -rf "$BUILD"' EXIT; fi
echo "build_cuda_extension: building in $BUILD (archs $TORCH_CUDA_ARCH_LIST, $MAX_JOBS jobs)"

cat > "$BUILD/setup.py" <<EOF
import importlib.util
from setuptools import setup
import torch
from torch.utils.cpp_extension import BuildExtension, CUDAExtension

root = "$ROOT/kernels"
# The package's own flags (the same module setup.py loads), portable: no -march=native.
spec = importlib.util.spec_from_file_location("tpn_build_flags", f"{root}/build_flags.py")
flags = importlib.util.module_from_spec(spec)
spec.loader.exec_module(flags)
setup(
    name="tpn_cuda_check",
    ext_modules=[
        CUDAExtension(
            name="_C",
            sources=[f"{root}/ops.cpp", f"{root}/scan_cpu.cpp", f"{root}/scan_cuda.cu"],
            include_dirs=[root],
            extra_compile_args=flags.compile_args(torch.__version__, portable=True),
            extra_link_args=["-fopenmp"],
        )
    ],
    cmdclass={"build_ext": BuildExtension},
)
EOF

start=$(date +%s)
(cd "$BUILD" && "$PY" setup.py build_ext --build-lib "$BUILD/lib" --build-temp "$BUILD/tmp" 2>&1) \
  | grep -v "^copying\|^running\|^creating" || true
so="$(ls "$BUILD"/lib/_C*.so 2>/dev/null | head -n 1 || true)"
if [[ -z "$so" ]]; then
  echo "build_cuda_extension: FAILED, no extension built" >&2
  exit 1
fi
echo "build_cuda_extension: built $(basename "$so") ($(du -h "$so" | cut -f1)) in $(( $(date +%s) - start )) s"

"$PY" - "$BUILD/lib" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import torch
import _C  # noqa: F401  (runs the TORCH_LIBRARY registrations)

ok = True
for op in ("scan", "scan_backward", "scan_transpose"):
    name = f"tpn::{op}"
    keys = {k: torch._C._dispatch_has_kernel_for_dispatch_key(name, k) for k in ("CPU", "CUDA")}
    print(f"build_cuda_extension: {name}: " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in keys.items()))
    ok &= all(keys.values())
print(f"build_cuda_extension: torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"GPU available: {torch.cuda.is_available()}")
sys.exit(0 if ok else 1)
EOF
echo "build_cuda_extension: OK"
