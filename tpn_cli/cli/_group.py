"""The `tpn` group and its error boundary (:meth:`TpnGroup.main`: any exception → one message,
one JSON error object under --json, the exit code; signals; stdout kept for tpn), and the
entry point :func:`main`."""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import traceback

import click

from .. import __version__
from ..errors import Interrupted, as_tpn_error


def _wants_json(args: list[str]) -> bool:
    """``--json`` among the options (before a ``--``), known before click parses anything,
    so that even a usage error answers with a JSON object."""
    return "--json" in (args[:args.index("--")] if "--" in args else args)


@contextlib.contextmanager
def _stdout_for_tpn_only():
    """Point file descriptor 1 at stderr for the whole command, and give Python's
    ``sys.stdout`` (click.echo: the plan, the JSON object) a private copy of the real
    stdout: C and C++ code that prints on fd 1 (encoders, OpenMP, libraries' warnings)
    then lands on stderr, and stdout carries only what tpn prints. (A Python-level print by
    a library would still reach sys.stdout: the one that does, OpenEXR's binding, is
    redirected where it is called, in media/hdr.py.) Skipped when ``sys.stdout`` is no
    file (click's CliRunner, which captures in memory)."""
    try:
        py_fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stdout.flush()
    real = os.dup(1)
    old_stdout = sys.stdout
    if py_fd == 1:  # Python writes through fd 1: move it onto the private copy
        sys.stdout = os.fdopen(os.dup(real), "w", encoding=old_stdout.encoding or "utf-8")
    os.dup2(2, 1)
    try:
        yield
    finally:
        try:
            ctypes.CDLL(None).fflush(None)  # C stdio buffers: out now, onto stderr
        except (OSError, AttributeError):
            pass
        sys.stdout.flush()
        os.dup2(real, 1)
        os.close(real)
        if sys.stdout is not old_stdout:
            sys.stdout.close()
            sys.stdout = old_stdout


@contextlib.contextmanager
def _signals_raise():
    """SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread, as Ctrl-C raises
    KeyboardInterrupt, so writers abort and remove their temporaries the same way. A
    signal already ignored (``nohup`` ignores SIGHUP) stays ignored; once one arrived,
    further ones are ignored so the cleanup is not cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.getsignal(s) for s in watched}

    def stop(signum, _frame):
        for s in watched:
            if old[s] not in (signal.SIG_IGN, None):
                signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    for s in watched:
        # SIGINT: only where Python's own KeyboardInterrupt handler is installed
        if old[s] == (signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL):
            signal.signal(s, stop)
    try:
        yield
    finally:
        for s, h in old.items():
            if h is not None:
                signal.signal(s, h)


class TpnGroup(click.Group):
    """The error boundary: every command (under CliRunner too) runs inside :meth:`main`,
    and whatever escapes (a TpnError, a click usage error, a signal, a bug) becomes one
    message on stderr, one ``{"error": ...}`` object on stdout under ``--json``, and the
    exit code of :func:`tpn_cli.errors.as_tpn_error`."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = list(sys.argv[1:] if args is None else args)
        as_json = _wants_json(args)
        with _stdout_for_tpn_only(), _signals_raise():
            try:
                rc = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except SystemExit:
                raise
            except BaseException as exc:  # noqa: BLE001 - the boundary: every failure is named
                err = as_tpn_error(exc)
                if err.exit_code == 1 and os.environ.get("TPN_DEBUG"):
                    traceback.print_exception(exc, file=sys.stderr)
                if as_json:
                    click.echo(json.dumps(err.to_json()))
                click.echo(f"tpn: {err}", err=True)
                rc = err.exit_code
        sys.exit(rc if isinstance(rc, int) else 0)


@click.group(cls=TpnGroup, context_settings={"help_option_names": ["-h", "--help"],
                                             "max_content_width": 100})
@click.version_option(__version__, prog_name="tpn")
def cli() -> None:
    """Carry colour, HDR radiance or object masks from a few key-frames through a whole video.

    \b
      tpn colorize film.mp4 --keyframes painted/       # colour into a black-and-white film
      tpn hdr clip.mp4 --hdr-keys exr/ -o clip.mp4      # HDR10 video from an LDR clip
      tpn segment clip.mp4 --mask 00000.png             # object masks for every frame
      tpn extract film.mp4 -o painted/ --every 20       # frames to paint as key-frames
      tpn suggest-keyframes film.mp4 --budget 12 --extract painted/   # or the best 12

    Exit codes: 0 ok, 1 internal error, 2 usage, 3 bad input, 4 weights unavailable,
    5 out of memory, 6 output not writable, 129/130/143 stopped by SIGHUP/Ctrl-C/SIGTERM.
    """


def main() -> None:
    """Entry point (``tpn``): the group's :meth:`TpnGroup.main` is the error boundary."""
    cli.main(prog_name="tpn")
