#!/usr/bin/env bash
# Compile-only check of every CUDA source in kernels/ (the machines here have no
# GPU, so this is how CI knows the CUDA path still builds). Each .cu is compiled
# by nvcc to an object file against a CUDA-enabled torch's headers; any error
# fails the script. Skips (exit 0) with a message when nvcc is absent.
#
# Torch headers, first match wins:
#   $TPN_TORCH_INCLUDE                  a torch/include directory
#   $TPN_CUDA_PYTHON                    a python whose torch is a CUDA build
#   /tmp/tpn-cuda-venv                  the venv of scripts/build_cuda_extension.sh
#   the current python's torch          if it ships the CUDA headers (CPU wheels do not:
#                                       they lack c10/cuda/impl/cuda_cmake_macros.h)
#   torch/include extracted once from the torch==$TPN_CUDA_TORCH wheel (default 2.14.1,
#   the CUDA 13 build) into ${XDG_CACHE_HOME:-~/.cache}/tpn/
# Environment: NVCC, TPN_CUDA_ARCHS (default "80": one arch keeps CI fast; the
# full list is built by build_cuda_extension.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NVCC="${NVCC:-$(command -v nvcc || true)}"
if [[ -z "$NVCC" && -x /usr/local/cuda/bin/nvcc ]]; then NVCC=/usr/local/cuda/bin/nvcc; fi
if [[ -z "$NVCC" ]]; then
  echo "check_cuda_compile: nvcc not found; skipping the CUDA compile check"
  exit 0
fi

PY="${PYTHON:-python3}"
TORCH_VERSION="${TPN_CUDA_TORCH:-2.14.1}"

has_cuda_headers() { [[ -f "$1/c10/cuda/impl/cuda_cmake_macros.h" && -f "$1/ATen/cuda/CUDAContext.h" ]]; }

torch_include_of() {  # python -> its torch/include, or nothing
  "$1" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))' 2>/dev/null || true
}

find_torch_include() {
  if [[ -n "${TPN_TORCH_INCLUDE:-}" ]]; then echo "$TPN_TORCH_INCLUDE"; return; fi
  local py inc
  for py in "${TPN_CUDA_PYTHON:-}" /tmp/tpn-cuda-venv/bin/python "$PY"; do
    [[ -n "$py" ]] && command -v "$py" >/dev/null 2>&1 || continue
    inc="$(torch_include_of "$py")"
    if [[ -n "$inc" ]] && has_cuda_headers "$inc"; then echo "$inc"; return; fi
  done
  # Extract only torch/include from the CUDA wheel, once; the wheel itself is deleted.
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/tpn/torch-${TORCH_VERSION}-include"
  if ! has_cuda_headers "$cache/torch/include"; then
    echo "check_cuda_compile: fetching the headers of torch==${TORCH_VERSION} (CUDA build) into $cache" >&2
    local tmp
    tmp="$(mktemp -d)"
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "torch==${TORCH_VERSION}" >&2
    rm -rf "$cache"
    mkdir -p "$cache"
    "$PY" - "$tmp" "$cache" <<'EOF'
import glob, sys, zipfile
wheel, = glob.glob(sys.argv[1] + "/torch-*.whl")
with zipfile.ZipFile(wheel) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("torch/include/")])
EOF
    rm -rf "$tmp"
  fi
  echo "$cache/torch/include"
}

TORCH_INC="$(find_torch_include)"
if ! has_cuda_headers "$TORCH_INC"; then
  echo "check_cuda_compile: no CUDA torch headers found (tried $TORCH_INC)" >&2
  exit 1
fi
PY_INC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"

ARCH_FLAGS=()
for a in ${TPN_CUDA_ARCHS:-80}; do ARCH_FLAGS+=(-gencode "arch=compute_${a},code=sm_${a}"); done

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
shopt -s nullglob
sources=("$ROOT"/kernels/*.cu)
if (( ${#sources[@]} == 0 )); then
  echo "check_cuda_compile: no .cu sources in kernels/"
  exit 0
fi
echo "check_cuda_compile: $("$NVCC" --version | tail -n 2 | head -n 1)"
echo "check_cuda_compile: torch headers $TORCH_INC"
status=0
for src in "${sources[@]}"; do
  obj="$OUT/$(basename "${src%.cu}").o"
  # Same defines as torch.utils.cpp_extension uses for CUDA sources.
  if "$NVCC" -c "$src" -o "$obj" -std=c++20 -O3 "${ARCH_FLAGS[@]}" \
      -I "$ROOT/kernels" -I "$TORCH_INC" -I "$TORCH_INC/torch/csrc/api/include" -I "$PY_INC" \
      -D_GLIBCXX_USE_CXX11_ABI=1 -DTORCH_EXTENSION_NAME=_C \
      -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ \
      -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__ \
      --expt-relaxed-constexpr -Werror cross-execution-space-call \
      -Xcompiler -fPIC -Xcompiler -Wall; then
    echo "check_cuda_compile: OK   ${src#"$ROOT"/}"
  else
    echo "check_cuda_compile: FAIL ${src#"$ROOT"/}" >&2
    status=1
  fi
done
exit $status
