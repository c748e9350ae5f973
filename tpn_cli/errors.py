"""Exceptions that carry the process exit code.

Every error the user can act on is a :class:`TpnError` subclass. The CLI catches
``TpnError``, prints ``str(err)`` on stderr (or ``err.to_json()`` with ``--json``) and
exits with ``err.exit_code``. Messages name the file (and frame, when there is one)
and say how to fix the problem:

    raise BadInputError("EXR has 12 NaN pixels", path=p, hint="replace them in ...")

Exit codes (stable, documented in the README): 0 ok, 1 internal error, 2 usage,
3 bad input, 4 weights unavailable, 5 out of memory, 6 output not writable,
130 interrupted (:data:`EXIT_INTERRUPTED`, raised as ``KeyboardInterrupt``, not here).
"""
from __future__ import annotations

import os
from typing import Any

__all__ = [
    "EXIT_INTERRUPTED",
    "BadInputError",
    "OutOfMemoryError",
    "OutputNotWritableError",
    "TpnError",
    "UsageError",
    "WeightsUnavailableError",
]

#: Exit status for SIGINT / Ctrl-C (128 + 2), as shells report it.
EXIT_INTERRUPTED = 130


class TpnError(Exception):
    """Base class: an error with an exit code, the file concerned and a fix.

    Args:
        message: what went wrong, one sentence.
        path: the file or folder concerned (shown first in the message).
        frame: the 0-based frame index concerned, if any.
        hint: how to fix it (shown on its own line after "fix:").
        code: a stable machine-readable name, e.g. ``"KEYFRAME_OUT_OF_RANGE"``.
    """

    exit_code: int = 1
    default_code: str = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        frame: int | None = None,
        hint: str | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.frame = frame
        self.hint = hint
        self.code = code or self.default_code
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}: "
        if self.frame is not None:
            where += f"frame {self.frame}: "
        text = where + self.message
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text

    def to_json(self) -> dict[str, Any]:
        """The ``{"error": {...}}`` object for ``--json`` output."""
        return {
            "error": {
                "code": self.code,
                "exit_code": self.exit_code,
                "message": self.message,
                "path": self.path,
                "frame": self.frame,
                "hint": self.hint,
            }
        }


class UsageError(TpnError):
    """Wrong or contradictory options (exit 2)."""

    exit_code = 2
    default_code = "USAGE"


class BadInputError(TpnError):
    """An input file or folder that cannot be used as given (exit 3)."""

    exit_code = 3
    default_code = "BAD_INPUT"


class WeightsUnavailableError(TpnError):
    """Model weights missing, corrupt or not downloadable (exit 4)."""

    exit_code = 4
    default_code = "WEIGHTS_UNAVAILABLE"


class OutOfMemoryError(TpnError):
    """Host or GPU memory exhausted (exit 5)."""

    exit_code = 5
    default_code = "OUT_OF_MEMORY"


class OutputNotWritableError(TpnError):
    """The output exists (without overwrite) or cannot be written (exit 6)."""

    exit_code = 6
    default_code = "OUTPUT_NOT_WRITABLE"
