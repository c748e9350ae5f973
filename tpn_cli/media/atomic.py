"""Atomic outputs: write under a temporary name next to the target, rename when done.

A finished-looking output only ever appears through :func:`os.replace` of a complete
temporary file or folder in the same directory (same filesystem, so the rename is
atomic). On an exception, ``KeyboardInterrupt`` included, the temporary is deleted; a
``weakref.finalize`` hook also deletes it at garbage collection or interpreter exit if
the owner was never closed. Temporary names start with ``.`` and contain
``.tpn-partial-`` so that a crash (SIGKILL) leaves only hidden, clearly unfinished files.
"""
from __future__ import annotations

import os
import shutil
import uuid
import weakref
from pathlib import Path

from ..errors import OutputNotWritableError

__all__ = ["AtomicPath", "check_output_path", "temp_name"]

PARTIAL_TAG = ".tpn-partial-"


def temp_name(target: str | os.PathLike[str]) -> Path:
    """A unique hidden temporary path next to ``target`` that keeps its extension."""
    target = Path(target)
    tag = f"{PARTIAL_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return target.with_name(f".{target.stem}{tag}{target.suffix}")


def check_output_path(target: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Fail early, before any work, if ``target`` cannot be written.

    Raises:
        OutputNotWritableError: the target exists and ``overwrite`` is false, the parent
            folder is missing or not writable.
    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise OutputNotWritableError(
            "output already exists",
            path=target,
            hint="pass --overwrite to replace it, or choose another output path",
            code="OUTPUT_EXISTS",
        )
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputNotWritableError(
            f"output folder {parent} does not exist",
            path=target,
            hint=f"create it first (mkdir -p {parent}) or choose another output path",
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputNotWritableError(
            f"output folder {parent} is not writable",
            path=target,
            hint="check its permissions or choose another output path",
        )
    return target


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)
    except OSError:
        pass


class Transactional:
    """Writers used as context managers: ``close()`` (commit) on success, ``abort()`` on error."""

    def close(self):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def abort(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class AtomicPath(Transactional):
    """A temporary file or folder that becomes ``target`` on :meth:`commit`.

    Usage::

        with AtomicPath("out.mp4", overwrite=False) as tmp:
            write_everything_to(tmp.path)
        # committed on clean exit, removed on exception

    Args:
        target: the final path.
        overwrite: replace an existing target (a folder target is replaced whole).
        is_dir: create the temporary as an (empty) folder.
    """

    def __init__(self, target: str | os.PathLike[str], *, overwrite: bool = False,
                 is_dir: bool = False) -> None:
        self.target = check_output_path(target, overwrite=overwrite)
        self.overwrite = overwrite
        self.is_dir = is_dir
        self.path = temp_name(self.target)
        try:
            if is_dir:
                self.path.mkdir()
        except OSError as exc:
            raise OutputNotWritableError(
                f"cannot create a temporary folder: {exc.strerror}", path=self.target,
                hint="check the output folder's permissions and free space") from exc
        self._done = False
        self._finalizer = weakref.finalize(self, _remove, str(self.path))

    def commit(self) -> Path:
        """Move the temporary into place; returns the final path."""
        if self._done:
            return self.target
        if not self.overwrite and self.target.exists():
            self.abort()
            raise OutputNotWritableError(
                "output appeared while tpn was writing it", path=self.target,
                hint="pass --overwrite, or make sure no other program writes the same path",
                code="OUTPUT_EXISTS")
        try:
            if self.is_dir and self.target.is_dir():
                # os.replace cannot replace a non-empty folder: swap through a trash name.
                trash = temp_name(self.target)
                os.replace(self.target, trash)
                os.replace(self.path, self.target)
                _remove(str(trash))
            else:
                os.replace(self.path, self.target)
        except OSError as exc:
            self.abort()
            raise OutputNotWritableError(
                f"cannot move the finished output into place: {exc.strerror}",
                path=self.target, hint="check permissions of the output folder") from exc
        self._done = True
        self._finalizer.detach()
        return self.target

    def abort(self) -> None:
        """Delete the temporary (idempotent)."""
        if not self._done:
            self._done = True
            self._finalizer()

    close = commit  # the Transactional protocol: commit on success, abort on error
