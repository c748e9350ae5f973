"""Build script: the package plus its compiled propagation kernels (tpn_cli._C).

Build without isolation so the extension compiles against the torch you installed
(`pip install --no-build-isolation .`); an isolated build would pull its own torch.
The CUDA kernels are built when torch has CUDA and nvcc is found (or TPN_BUILD_CUDA=1).
The shipped weights (weights/*.tpn and weights/manifest.json, the source of truth) are
copied into the package as tpn_cli/_weights by the build step, so a wheel carries them.
"""
import hashlib
import importlib.util
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


def build_flags():
    """kernels/build_flags.py, loaded by path (pip runs this file with another sys.path[0])."""
    spec = importlib.util.spec_from_file_location("tpn_build_flags", ROOT / KERNELS / "build_flags.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def extension():
    # The flags, C++ standard included, depend on the torch we build against; they
    # live in kernels/build_flags.py so that CI compiles with the very same ones.
    flags = build_flags().compile_args(torch.__version__, portable=os.environ.get("TPN_PORTABLE") == "1")
    sources = [f"{KERNELS}/ops.cpp", f"{KERNELS}/scan_cpu.cpp"]
    if want_cuda():
        return CUDAExtension(
            "tpn_cli._C",
            sources + [f"{KERNELS}/scan_cuda.cu"],
            extra_compile_args=flags,
            extra_link_args=["-fopenmp"],
        )
    return CppExtension("tpn_cli._C", sources, extra_compile_args=flags["cxx"], extra_link_args=["-fopenmp"])


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
