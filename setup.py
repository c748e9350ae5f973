"""Build script: the package plus its compiled propagation kernels (tpn_cli._C).

Build without isolation so the extension compiles against the torch you installed
(`pip install --no-build-isolation .`); an isolated build would pull its own torch.
The CUDA kernels are built when torch has CUDA and nvcc is found (or TPN_BUILD_CUDA=1).
"""
import os
from pathlib import Path

from setuptools import setup

from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension
import torch

ROOT = Path(__file__).parent
KERNELS = "kernels"


def want_cuda() -> bool:
    flag = os.environ.get("TPN_BUILD_CUDA")
    if flag is not None:
        return flag == "1"
    return torch.version.cuda is not None and CUDA_HOME is not None


def extension():
    # -march=native: the package builds on the machine that runs it; TPN_PORTABLE=1 for a
    # binary to copy elsewhere.
    arch = [] if os.environ.get("TPN_PORTABLE") == "1" else ["-march=native"]
    # vect-partial-vector-usage=2: loop remainders run as one masked vector step (AVX-512)
    # instead of up to 15 scalar ones; image lines of 64 have 62 interior elements, and the
    # scalar tail was a large part of the line loops (training fwd+bwd 25.6 -> 20.5 ms, 1 thread).
    cxx = ["-O3", "-fopenmp", "-std=c++17", "--param=vect-partial-vector-usage=2", *arch]
    sources = [f"{KERNELS}/ops.cpp", f"{KERNELS}/scan_cpu.cpp"]
    if want_cuda():
        return CUDAExtension(
            "tpn_cli._C",
            sources + [f"{KERNELS}/scan_cuda.cu"],
            extra_compile_args={"cxx": cxx, "nvcc": ["-O3", "-std=c++17", "--use_fast_math"]},
            extra_link_args=["-fopenmp"],
        )
    return CppExtension("tpn_cli._C", sources, extra_compile_args=cxx, extra_link_args=["-fopenmp"])


setup(
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
