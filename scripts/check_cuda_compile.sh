#!/usr/bin/env bash
# Compile check of the extension's sources against the headers of the oldest and
# the newest torch that setup.cfg accepts, with exactly the flags setup.py uses
# (kernels/build_flags.py, which setup.py loads too; the C++ standard follows the
# torch release), then the CUDA resource check. No GPU needed; nothing is linked.
#
#   C++  (kernels/*.cpp): g++ -c, for every torch in $TPN_CHECK_TORCH;
#   CUDA (kernels/*.cu):  nvcc -c, for every torch in $TPN_CHECK_TORCH: for the newest
#        for every architecture in $TPN_CUDA_ARCHS with ptxas -v, whose register and
#        shared-memory figures go to scripts/check_cuda_resources.cpp (fails when a
#        kernel's planned launch exceeds its architecture's limits); for the others
#        for sm_80 only. Skipped, with a message, when nvcc is absent.
#
# Headers: only torch/include is extracted from each torch wheel (pip download, the
# CUDA build that PyPI serves; the wheel is deleted) into $TPN_HEADER_CACHE
# (default .cache/torch-headers in the repository, git-ignored), once per version.
# Environment: TPN_CHECK_TORCH (default "2.4.0 2.14.1"), TPN_CUDA_ARCHS (default
# "75 80 86 89 90 100 120", the list scripts/build_cuda_extension.sh builds),
# NVCC, CXX, PYTHON.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
CXX="${CXX:-g++}"
NVCC="${NVCC:-$(command -v nvcc || true)}"
if [[ -z "$NVCC" && -x /usr/local/cuda/bin/nvcc ]]; then NVCC=/usr/local/cuda/bin/nvcc; fi
CACHE="${TPN_HEADER_CACHE:-$ROOT/.cache/torch-headers}"
read -r -a TORCHES <<< "${TPN_CHECK_TORCH:-2.4.0 2.14.1}"
read -r -a ARCHS <<< "${TPN_CUDA_ARCHS:-75 80 86 89 90 100 120}"
NEWEST="${TORCHES[${#TORCHES[@]}-1]}"

has_headers() { [[ -f "$1/ATen/ATen.h" && -f "$1/c10/cuda/impl/cuda_cmake_macros.h" ]]; }

headers_of() {  # torch version -> its torch/include, extracted once
  local inc="$CACHE/$1/torch/include"
  if ! has_headers "$inc"; then
    echo "check_cuda_compile: fetching the headers of torch==$1 into $CACHE/$1" >&2
    local tmp
    tmp="$(mktemp -d)"
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "torch==$1" >&2
    rm -rf "${CACHE:?}/$1"
    mkdir -p "$CACHE/$1"
    "$PY" - "$tmp" "$CACHE/$1" <<'EOF'
import glob, sys, zipfile
wheel, = glob.glob(sys.argv[1] + "/torch-*.whl")
with zipfile.ZipFile(wheel) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("torch/include/")])
EOF
    rm -rf "$tmp"
  fi
  has_headers "$inc" || { echo "check_cuda_compile: no torch headers in $inc" >&2; exit 1; }
  echo "$inc"
}

flags() { "$PY" "$ROOT/kernels/build_flags.py" "$1" "$2"; }  # torch version, cxx|nvcc

PY_INC="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
status=0
shopt -s nullglob
if [[ -n "$NVCC" ]]; then
  echo "check_cuda_compile: $("$NVCC" --version | tail -n 2 | head -n 1)"
else
  echo "check_cuda_compile: nvcc not found; compiling the C++ sources only"
fi

for version in "${TORCHES[@]}"; do
  inc="$(headers_of "$version")"
  mapfile -t cxx_flags < <(flags "$version" cxx)
  mapfile -t nvcc_flags < <(flags "$version" nvcc)
  # Besides setup.py's flags, the includes and defines that torch.utils.cpp_extension
  # adds to every extension (the ABI define is left out: it changes no declaration).
  common=(-I "$ROOT/kernels" -I "$inc" -I "$inc/torch/csrc/api/include" -I "$PY_INC"
          -DTORCH_API_INCLUDE_EXTENSION_H -DTORCH_EXTENSION_NAME=_C)
  echo "check_cuda_compile: torch $version headers; cxx: ${cxx_flags[*]}; nvcc: ${nvcc_flags[*]}"
  for src in "$ROOT"/kernels/*.cpp; do
    name="${src#"$ROOT"/}"
    if "$CXX" -c "$src" -o "$OUT/$(basename "$src").o" -fPIC "${common[@]}" "${cxx_flags[@]}"; then
      echo "check_cuda_compile: OK   torch $version  $name"
    else
      echo "check_cuda_compile: FAIL torch $version  $name" >&2
      status=1
    fi
  done
  [[ -n "$NVCC" ]] || continue
  archs=(80)
  if [[ "$version" == "$NEWEST" ]]; then archs=("${ARCHS[@]}"); fi
  gencode=()
  for a in "${archs[@]}"; do gencode+=(-gencode "arch=compute_${a},code=sm_${a}"); done
  for src in "$ROOT"/kernels/*.cu; do
    name="${src#"$ROOT"/}"
    log="$OUT/ptxas-$version-$(basename "$src").log"
    if "$NVCC" -c "$src" -o "$OUT/$(basename "$src").o" "${common[@]}" "${nvcc_flags[@]}" "${gencode[@]}" \
        -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ \
        -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__ \
        --expt-relaxed-constexpr -Werror cross-execution-space-call \
        -Xcompiler -fPIC -Xptxas -v 2> "$log"; then
      echo "check_cuda_compile: OK   torch $version  $name (sm_${archs[*]})"
    else
      grep -v "^ptxas info\|^    [0-9]* bytes stack" "$log" >&2 || true
      echo "check_cuda_compile: FAIL torch $version  $name" >&2
      status=1
    fi
  done
done

if [[ -n "$NVCC" && $status == 0 ]]; then
  # Kernel resources of the newest torch's build -> one line per kernel and arch.
  "$PY" - "$OUT/ptxas-$NEWEST-scan_cuda.cu.log" > "$OUT/resources.txt" <<'EOF'
import re, sys
kinds = {"scan_forward_kernel": "forward"}
current = None
for line in open(sys.argv[1]):
    m = re.search(r"Compiling entry function '(\S+)' for '(sm_\d+a?)'", line)
    if m:
        name, arch = m.groups()
        k = re.search(r"(scan_forward_kernel|scan_reverse_kernel)I([fd])[fd](Lb([01])E)?", name)
        if not k:
            sys.exit(f"check_cuda_resources: unknown kernel {name}")
        kind = "forward" if k.group(1) == "scan_forward_kernel" else ("backward" if k.group(4) == "1" else "transpose")
        current = (arch, kind, "float32" if k.group(2) == "f" else "float64")
        continue
    m = re.search(r"Used (\d+) registers", line)
    if m and current:
        smem = re.search(r"(\d+) bytes smem", line)
        print(*current, m.group(1), smem.group(1) if smem else 0)
        current = None
EOF
  "$CXX" -std=c++17 -O2 -o "$OUT/check_cuda_resources" "$ROOT/scripts/check_cuda_resources.cpp"
  "$OUT/check_cuda_resources" < "$OUT/resources.txt" || status=1
fi
exit $status
