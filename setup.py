"""Build script: the package plus its compiled propagation kernels (tpn_cli._C).

Build without isolation so the extension compiles against the torch you installed
(`pip install --no-build-isolation .`); an isolated build would pull its own torch.
The CUDA kernels are built when torch has CUDA and nvcc is found (or TPN_BUILD_CUDA=1).
The shipped weights (weights/*.tpn and weights/manifest.json, the source of truth) are
copied into the package as tpn_cli/_weights by the build step, so a wheel carries them.
"""
import hashlib
import json
import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

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


class build_py_with_weights(build_py):
    """build_py that also copies weights/ into the built package as tpn_cli/_weights.

    Only the manifest and the files it lists are copied, each checked against its sha256,
    so a wheel never ships a stray or damaged model. An editable install skips the copy:
    it runs from the checkout, where tpn_cli.weights finds weights/ itself.
    """

    WEIGHTS = ROOT / "weights"
    TARGET = ("tpn_cli", "_weights")

    def run(self):
        super().run()
        if self.editable_mode:
            return
        manifest = self.WEIGHTS / "manifest.json"
        entries = json.loads(manifest.read_text())["weights"]
        target = Path(self.build_lib, *self.TARGET)
        self.mkpath(str(target))
        self.copy_file(str(manifest), str(target / manifest.name))
        for e in entries:
            src = self.WEIGHTS / e["file"]
            digest = hashlib.sha256(src.read_bytes()).hexdigest()
            if digest != e["sha256"]:
                raise SystemExit(f"{src}: sha256 {digest} differs from weights/manifest.json's "
                                 f"{e['sha256']}; fix: restore it (git checkout weights/, "
                                 "git lfs pull) or re-ship it with scripts/ship_weights.py")
            self.copy_file(str(src), str(target / src.name))

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if self.editable_mode:
            return outputs
        target = Path(self.build_lib, *self.TARGET)
        names = ["manifest.json"] + [e["file"] for e in
                                     json.loads((self.WEIGHTS / "manifest.json").read_text())["weights"]]
        return outputs + [str(target / n) for n in names]


setup(
    ext_modules=[extension()],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True),
              "build_py": build_py_with_weights},
)
