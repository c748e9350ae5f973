"""A light timing hook: where a run spends its time, by named section.

Off by default (a section is then one attribute check). :func:`enable` (or the
environment variable ``TPN_TIMING=FILE``, which makes the CLI write :func:`report` as
JSON to FILE at the end of a run) turns it on. Sections nest and are counted
*exclusively*: time inside an inner section is not counted again in the outer one. Each
section records wall seconds and the thread's own CPU seconds (``time.thread_time``),
so the shares stay meaningful when the run's stages overlap in threads and the machine
is busy. Thread-safe.

Sections used by the run (tpn_cli.engine, tpn_cli.chain and the models): ``decode``,
``keys`` (key-frame / mask preparation), ``colour`` (pixel ↔ tensor conversions: Lab,
radiance, resizing to and from the working size), ``flow`` (alignment flow and warp; the
segment chain's frame-to-frame flow and warp), ``network`` (guidance U-Net and property
encoder/decoder; in the segment chain also its first-frame colour model), ``scan`` (the
propagation op), ``fusion`` (HDR: the frame's f⁻¹ and its keys fused,
:mod:`tpn_cli.hdr_fusion`), ``encode`` (writing outputs).
"""
from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

__all__ = ["enable", "enable_from_env", "timed", "disable", "enabled", "reset", "report", "section", "write_report"]

_on = bool(os.environ.get("TPN_TIMING"))
_lock = threading.Lock()
_totals: dict[str, list[float]] = {}  # name -> [wall, cpu, calls]
_local = threading.local()


def enable_from_env() -> bool:
    """Turn timing on (and start from zero) when ``TPN_TIMING`` is set; returns whether."""
    if os.environ.get("TPN_TIMING"):
        enable()
        reset()
        return True
    return False


def enable() -> None:
    global _on
    _on = True


def disable() -> None:
    global _on
    _on = False


def enabled() -> bool:
    return _on


def reset() -> None:
    with _lock:
        _totals.clear()


def _add(name: str, wall: float, cpu: float, calls: int) -> None:
    with _lock:
        t = _totals.setdefault(name, [0.0, 0.0, 0])
        t[0] += wall
        t[1] += cpu
        t[2] += calls


@contextmanager
def section(name: str) -> Iterator[None]:
    """Count the time spent inside (excluding nested sections) under ``name``."""
    if not _on:
        yield
        return
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    now_w, now_c = time.perf_counter(), time.thread_time()
    if stack:  # pause the enclosing section
        outer = stack[-1]
        _add(outer[0], now_w - outer[1], now_c - outer[2], 0)
    entry = [name, now_w, now_c]
    stack.append(entry)
    try:
        yield
    finally:
        w, c = time.perf_counter(), time.thread_time()
        stack.pop()
        _add(name, w - entry[1], c - entry[2], 1)
        if stack:  # resume it
            stack[-1][1], stack[-1][2] = w, c


_END = object()


def timed(items: Iterable[T], name: str) -> Iterator[T]:
    """The items of ``items``, each ``next`` counted under section ``name`` (a decoder's
    frames: the decoding happens inside ``next``)."""
    it = iter(items)
    while True:
        with section(name):
            item = next(it, _END)
        if item is _END:
            return
        yield item


def report() -> dict[str, dict[str, float]]:
    """{section: {'wall': s, 'cpu': s, 'calls': n}} so far."""
    with _lock:
        return {k: {"wall": v[0], "cpu": v[1], "calls": v[2]} for k, v in _totals.items()}


def write_report(path: str | os.PathLike | None = None) -> None:
    """Write :func:`report` as JSON to ``path`` (default: $TPN_TIMING), if timing is on."""
    path = path or os.environ.get("TPN_TIMING")
    if _on and path:
        with open(path, "w") as f:
            json.dump(report(), f, indent=1)
