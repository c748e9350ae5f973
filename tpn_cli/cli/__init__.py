"""The `tpn` command line: parse, validate, call the engine; nothing else.

Each command's docstring is its ``--help``. Errors are :class:`~tpn_cli.errors.TpnError`
subclasses; :class:`TpnGroup` turns them into a message on stderr (and a JSON error
object on stdout with ``--json``) and the documented exit code.

One module a command group: propagate.py (colorize, hdr, segment, batch), tools.py (doctor,
extract, suggest-keyframes), train.py, weights.py; options.py holds the shared options,
_group.py the group, its error boundary and :func:`main`.
"""
from __future__ import annotations

from . import propagate, tools, train, weights  # noqa: F401  (each registers its commands)
from ._group import TpnGroup, cli, main

__all__ = ["TpnGroup", "cli", "main"]
