"""`tpn doctor`: what this installation can do (torch, device, kernels, codecs, EXR)."""
from __future__ import annotations

import importlib.metadata
import platform

import torch

from . import __version__, weights
from .ops import dispatch

# Codecs tpn writes with; each missing one disables an output format.
CODECS = {
    "libx264": "H.264 video output (default)",
    "libx265": "HDR10 / HLG HEVC output",
    "ffv1": "lossless intermediate for two-pass HDR10",
    "aac": "not required: audio is copied, never re-encoded",
}


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _has_kernel(op: str, key: str) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(op, key)


def report() -> dict:
    """Facts about this installation, as a JSON-ready dict."""
    import av

    compiled = dispatch.compiled_available()
    cuda = torch.cuda.is_available()
    codecs = {}
    for name in CODECS:
        try:
            av.codec.Codec(name, "w")
            codecs[name] = True
        except Exception:  # PyAV raises different errors for unknown codecs across versions
            codecs[name] = False
    return {
        "tpn": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": cuda,
        "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
        "default_device": "cuda" if cuda else "cpu",
        "backend": dispatch.backend(),
        "kernels_cpu": compiled and _has_kernel("tpn::scan", "CPU"),
        "kernels_cuda": compiled and _has_kernel("tpn::scan", "CUDA"),
        "pyav": av.__version__,
        "ffmpeg": av.library_versions.get("libavcodec"),
        "codecs": codecs,
        "openexr": _version("OpenEXR"),
        **_weights_facts(),
    }


def _weights_facts() -> dict:
    """Where the shipped weights were found, how many of the manifest's files are there,
    and the download cache."""
    folder, source = weights.bundled_location()
    try:
        entries = weights.load_manifest(folder)
    except weights.WeightsUnavailableError:  # an invalid manifest: doctor still reports
        entries = []
    present = [e.name for e in entries if (folder / e.file).is_file()]
    return {
        "weights_dir": str(folder),
        "weights_source": source,
        "weights_models": len(entries),
        "weights_present": len(present),
        "weights_cache": str(weights.cache_dir()),
    }


def format_report(facts: dict) -> str:
    """Human-readable lines, with a fix for anything missing."""
    yes = lambda ok: "yes" if ok else "NO"  # noqa: E731
    lines = [
        f"tpn {facts['tpn']} (python {facts['python']})",
        f"torch {facts['torch']}, {facts['torch_threads']} CPU threads",
        f"device: {facts['default_device']}" + (f" ({facts['cuda_device']})" if facts["cuda_device"] else ""),
        f"propagation backend: {facts['backend']} "
        f"(CPU kernels: {yes(facts['kernels_cpu'])}, CUDA kernels: {yes(facts['kernels_cuda'])})",
    ]
    if facts["backend"] != "compiled":
        lines.append("  fix: reinstall with `pip install --no-build-isolation .` (needs a C++ compiler)")
    if facts["cuda_available"] and not facts["kernels_cuda"]:
        lines.append("  fix: CUDA is available but the CUDA kernels are not built; reinstall with nvcc on PATH")
    lines.append(f"PyAV {facts['pyav']} (libavcodec {facts['ffmpeg']})")
    for name, purpose in CODECS.items():
        lines.append(f"  {name:8s} {yes(facts['codecs'][name]):3s}  {purpose}")
    lines.append(f"OpenEXR {facts['openexr']}")
    source = {"package": "installed with the package", "source checkout": "source checkout",
              "$TPN_WEIGHTS_DIR": "from $TPN_WEIGHTS_DIR"}.get(facts["weights_source"])
    if source is None:
        lines.append(f"weights: NONE FOUND (looked for {facts['weights_dir']})")
        lines.append("  fix: reinstall tpn from its wheel or repository, or pass --weights PATH")
    else:
        lines.append(f"weights: {facts['weights_dir']} ({source}): "
                     f"{facts['weights_present']} of {facts['weights_models']} models present")
    lines.append(f"weights cache: {facts['weights_cache']} (tpn weights download)")
    return "\n".join(lines)
