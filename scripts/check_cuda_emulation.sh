#!/usr/bin/env bash
# Runs the CUDA kernels' device code on the CPU (emulated threads and barriers)
# against a naive scan: checks indexing, tiling, channel groups and barrier
# placement of kernels/scan_cuda_kernels.cuh without a GPU. Needs g++ (C++20).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CXX="${CXX:-g++}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
"$CXX" -std=c++20 -O1 -pthread -Wall -o "$OUT/emulate" "$ROOT/scripts/emulate_cuda_kernels.cpp"
"$OUT/emulate"
