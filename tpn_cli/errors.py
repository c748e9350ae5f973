"""Exceptions that carry the process exit code.

Every error the user can act on is a :class:`TpnError` subclass. The CLI catches
``TpnError``, prints ``str(err)`` on stderr (or ``err.to_json()`` with ``--json``) and
exits with ``err.exit_code``. Messages name the file (and frame, when there is one)
and say how to fix the problem:

    raise BadInputError("EXR has 12 NaN pixels", path=p, hint="replace them in ...")

Exit codes (stable, documented in the README): 0 ok, 1 internal error, 2 usage,
3 bad input, 4 weights unavailable, 5 out of memory, 6 output not writable,
129 / 130 / 143 stopped by SIGHUP / SIGINT (Ctrl-C) / SIGTERM (128 + the signal's number,
as shells report a process killed by it; :class:`Interrupted`).

:func:`as_tpn_error` is the one place where *any* exception becomes one of these: the
CLI's error boundary (:meth:`tpn_cli.cli.TpnGroup.main`) calls it for everything that
reaches it, so even an error nobody foresaw gets a code, a message and a JSON object.
"""
from __future__ import annotations

import errno
import os
import signal
from typing import Any

__all__ = [
    "EXIT_INTERRUPTED",
    "BadInputError",
    "InternalError",
    "Interrupted",
    "InterruptedRun",
    "OutOfMemoryError",
    "OutputNotWritableError",
    "TpnError",
    "UsageError",
    "WeightsUnavailableError",
    "as_tpn_error",
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


class InternalError(TpnError):
    """A failure tpn did not foresee: a bug to report (exit 1)."""

    exit_code = 1
    default_code = "INTERNAL_ERROR"


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


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that
    every ``finally`` and writer ``abort()`` runs the same way and no partial output stays."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class InterruptedRun(TpnError):
    """The run was stopped by a signal (exit 128 + its number: 130 for Ctrl-C)."""

    default_code = "INTERRUPTED"

    def __init__(self, signum: int = signal.SIGINT) -> None:
        self.exit_code = 128 + int(signum)
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}" if signum != signal.SIGINT else "interrupted",
                         hint="nothing was written (partial outputs are removed); run the command again")


#: OSError numbers that mean the output's device is full or the file too big for it.
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def as_tpn_error(exc: BaseException) -> TpnError:
    """The named error for any exception that reached the CLI's boundary.

    ``TpnError`` stays itself; a signal becomes :class:`InterruptedRun`; running out of
    memory exit 5; a full disk exit 6 (naming the file when the OS does); click's option
    errors exit 2; anything else :class:`InternalError` with a hint to report it.
    """
    import click  # the CLI's parser: its usage errors carry no exit code of ours

    if isinstance(exc, TpnError):
        return exc
    if isinstance(exc, click.exceptions.Abort):  # click wraps KeyboardInterrupt in Abort
        exc = exc.__cause__ or exc.__context__ or KeyboardInterrupt()
    if isinstance(exc, KeyboardInterrupt):
        return InterruptedRun(getattr(exc, "signum", signal.SIGINT))
    if isinstance(exc, click.ClickException):
        ctx = getattr(exc, "ctx", None)
        return UsageError(exc.format_message(), code="USAGE",
                          hint=f"see `{ctx.command_path if ctx else 'tpn'} --help`")
    # torch.OutOfMemoryError (a RuntimeError) by name: errors.py does not import torch
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return OutOfMemoryError("out of memory", hint="lower --batch-size or --work-size, or "
                                                      "close other programs")
    if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
        return OutputNotWritableError(f"no space left for the output ({exc.strerror})",
                                      path=exc.filename, code="NO_SPACE",
                                      hint="free some disk space or write to another disk")
    return InternalError(f"internal error: {type(exc).__name__}: {exc}".splitlines()[0],
                         hint="this is a bug in tpn, not in your files: please report it with "
                              "the command line (TPN_DEBUG=1 prints the traceback)")
