"""Atomic outputs: write under a temporary name next to the target, rename when done.

A finished-looking output only ever appears through :func:`os.replace` of a complete
temporary file or folder in the same directory (same filesystem, so the rename is
atomic). On an exception, ``KeyboardInterrupt`` included, the temporary is deleted; a
``weakref.finalize`` hook also deletes it at garbage collection or interpreter exit if
the owner was never closed. Temporary names start with ``.`` and contain
``.tpn-partial-PID-`` so that a crash (SIGKILL, power loss) leaves only hidden, clearly
unfinished files, and the next run writing the same output deletes those whose process
no longer exists (:func:`remove_stale_partials`).
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
import weakref
from pathlib import Path

from ..errors import OutputNotWritableError, UsageError

__all__ = ["AtomicPath", "check_output_path", "remove_stale_partials", "temp_name"]

PARTIAL_TAG = ".tpn-partial-"


def temp_name(target: str | os.PathLike[str]) -> Path:
    """A unique hidden temporary path next to ``target`` that keeps its extension."""
    target = Path(target)
    tag = f"{PARTIAL_TAG}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return target.with_name(f".{target.stem}{tag}{target.suffix}")


def _process_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: someone else's process, so it exists
        return True
    return True


_PARTIAL_PID = re.compile(r"(\d+)-[0-9a-f]{8}")


def remove_stale_partials(target: str | os.PathLike[str]) -> list[Path]:
    """Delete the hidden temporaries of ``target`` (``.STEM.tpn-partial-PID-…``, files or
    folders, the HDR writer's intermediate included) left by a tpn process that no longer
    exists, e.g. one killed by SIGKILL. Temporaries of running processes are kept (the
    process id is checked on this machine: a tpn on another host writing to the same
    shared folder is not seen). Returns the paths removed."""
    target = Path(target)
    prefix = f".{target.stem}{PARTIAL_TAG}"
    removed = []
    try:
        names = os.listdir(target.parent if str(target.parent) else ".")
    except OSError:
        return removed
    for name in names:
        m = _PARTIAL_PID.match(name[len(prefix):]) if name.startswith(prefix) else None
        if m and not _process_exists(int(m.group(1))):
            _remove(str(target.parent / name))
            removed.append(target.parent / name)
    return removed


def check_output_path(target: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Fail early, before any work, if ``target`` cannot be written.

    Raises:
        UsageError: the target is ``-``: tpn writes files and folders, never a stream on
            stdout (a folder named ``-`` is what a user asking for stdout would get).
        OutputNotWritableError: the target exists and ``overwrite`` is false, the parent
            folder is missing or not writable.
    """
    if os.fspath(target) == "-":
        raise UsageError("'-' is not an output path: tpn writes files and folders, not a stream "
                         "on stdout", path="-", code="BAD_OUTPUT_PATH",
                         hint="give a file (out.mp4) or a folder (out_frames/)")
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
        remove_stale_partials(self.target)
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
