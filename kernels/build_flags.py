"""Compiler flags of the tpn extension (tpn_cli._C), in one place.

setup.py builds with these flags, and the CI compile checks
(scripts/check_torch_headers.sh, scripts/check_cuda_resources.sh) take them from here
too, so CI compiles the sources exactly as an install does. Plain Python without
imports from torch: the checks call it for torch releases that are not installed.

Usage from a shell: python kernels/build_flags.py TORCH_VERSION {cxx|nvcc} [--portable]
prints the flags, one per line.
"""
from __future__ import annotations

import re
import sys

# The oldest torch that setup.cfg accepts (install_requires torch>=2.4).
OLDEST_TORCH = "2.4"


def torch_release(version: str) -> tuple[int, int]:
    """(major, minor) of a torch version string such as '2.13.0+cpu'."""
    m = re.match(r"(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"not a torch version: {version!r}")
    return int(m.group(1)), int(m.group(2))


def cxx_standard(torch_version: str) -> str:
    """The C++ standard to compile against this torch's headers.

    torch 2.14's headers refuse anything below C++20 (#error in ATen/ATen.h); the
    releases before accept C++17, which is what the package was always built and
    tested with on them (torch 2.4's own cpp_extension passes -std=c++17).
    """
    return "c++20" if torch_release(torch_version) >= (2, 14) else "c++17"


def compile_args(torch_version: str, portable: bool = False) -> dict[str, list[str]]:
    """extra_compile_args of the extension: {'cxx': [...], 'nvcc': [...]}."""
    std = f"-std={cxx_standard(torch_version)}"
    # -march=native: the package builds on the machine that runs it; portable=True
    # (TPN_PORTABLE=1) for a binary to copy elsewhere.
    arch = [] if portable else ["-march=native"]
    # vect-partial-vector-usage=2: loop remainders run as one masked vector step (AVX-512)
    # instead of up to 15 scalar ones; image lines of 64 have 62 interior elements, and the
    # scalar tail was a large part of the line loops (training fwd+bwd 25.6 -> 20.5 ms, 1 thread).
    cxx = ["-O3", "-fopenmp", std, "--param=vect-partial-vector-usage=2", *arch]
    nvcc = ["-O3", std, "--use_fast_math"]
    return {"cxx": cxx, "nvcc": nvcc}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--portable"]
    if len(args) != 2 or args[1] not in ("cxx", "nvcc"):
        sys.exit(__doc__.strip().splitlines()[-2])
    print("\n".join(compile_args(args[0], portable="--portable" in sys.argv)[args[1]]))
