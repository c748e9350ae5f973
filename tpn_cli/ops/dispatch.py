"""Choose between the compiled kernels and the pure-PyTorch reference."""
from __future__ import annotations

import os
import sys
from types import ModuleType

from . import reference


_UNSET = object()
_loaded: object = _UNSET  # a plain global, not lru_cache: torch.compile traces through it


def _compiled() -> ModuleType | None:
    """The compiled op module, or None (with a one-line warning) if the extension is missing."""
    global _loaded
    if _loaded is _UNSET:
        _loaded = _load()
    return _loaded


def _load() -> ModuleType | None:
    if os.environ.get("TPN_FORCE_REFERENCE") == "1":
        return None
    try:
        from . import compiled
    except ImportError as err:  # extension not built: fall back, say so once
        # One line on stderr, not warnings.warn: that prints the calling source line
        # under the message, and a command-line user needs only the notice and the fix.
        reason = " ".join(str(err).split())
        print(f"tpn: notice: compiled propagation kernels unavailable ({reason}); using the "
              "PyTorch reference (same results, slower); fix: reinstall with a C++ compiler, "
              "`pip install --no-build-isolation .`", file=sys.stderr)
        return None
    return compiled


def compiled_available() -> bool:
    """True when the compiled kernels are loaded."""
    return _compiled() is not None


def backend() -> str:
    """Name of the active implementation: 'compiled' or 'reference'."""
    return "compiled" if compiled_available() else "reference"


def get_impl() -> ModuleType:
    """Module providing scan(x, w) and scan_transpose(u, w)."""
    return _compiled() or reference
