"""Sequential propagation for `tpn segment`: every frame from the one before it.

:mod:`tpn_cli.engine` computes each frame from a key-frame, independently (colour, HDR).
Masks cannot work that way: one step from a mask 50 frames back cannot reach (the flow
between them is garbage and the scans move labels a few pixels; docs/TRAINING.md). So
masks are carried frame to frame by :class:`tpn_cli.mask_tracker.MaskPropagator`
(flow-warped previous prediction, TPN refinement (default, ``USE_TPN``), the mask frame's mask warped
straight to the frame where that flow is consistent, the mask frame's colour model
pulling drifting predictions back). This loop is sequential by nature:

* frames are decoded one at a time, in order, and written as soon as they are done; the
  only state is the previous frame and its probabilities at the working size (and the
  colour histograms), so memory is flat in the clip's length;
* at every mask (``--mask`` and each file of ``--masks``) the chain restarts from that
  mask, colour model included. Objects the mask does not contain keep being tracked:
  their propagated prediction is merged in where the mask is background, so a later mask
  may hold only the object that appears (as YouTube-VOS / Cutie annotations do);
* a mask's own frame is output as given (plus the carried objects);
* frames before the first mask get the first mask unchanged; with ``--start`` after a
  mask the chain still runs from the latest mask at or before ``--start`` (those frames
  are computed, not written).
"""
from __future__ import annotations

import bisect
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from . import timing
from .adapters import SegmentAdapter
from .engine import RunStats, Sink, frame_loop, write
from .media.video import Frame
from .mask_tracker import MaskPropagator

__all__ = ["USE_TPN", "MaskChain", "describe", "first_frame", "stream_masks"]

#: Whether `tpn segment` refines each chained step with the segment TPN by default
#: (``--no-tpn`` runs without it). Yes: with the pixel classifier it wins on the held-out
#: DAVIS-2016 sequences and beyond them, at ~1.4× the time (docs/what-we-tried.md, "Numbers behind the defaults").
USE_TPN = True


def _restarts(keys: Sequence[int], objects: Mapping[int, set[int]] | None) -> list[int]:
    """Masks the chain can restart from: those holding every object of the masks before
    them (the others add objects to what is carried)."""
    out, seen = [], set()
    for k in sorted(keys):
        objs = objects.get(k, set()) if objects is not None else seen
        if seen <= objs:
            out.append(k)
        seen |= objs
    return out


def first_frame(keys: Sequence[int], start: int,
                objects: Mapping[int, set[int]] | None = None) -> int:
    """The frame a run decodes from: the latest mask at or before ``start`` that the chain
    can restart from (``objects``: mask index → object ids in it), else ``start``."""
    before = [k for k in _restarts(keys, objects) if k <= start]
    return max(before) if before else start


def describe(keys: Sequence[int], start: int, end: int,
             objects: Mapping[int, set[int]] | None = None) -> list[str]:
    """``--dry-run`` lines: which mask each span of frames is carried from."""
    keys = sorted(keys)
    keyset, restarts = set(keys), set(_restarts(keys, objects))
    spans: list[list[Any]] = []
    for t in range(first_frame(keys, start, objects), end):
        if t in keyset:
            text = f"mask {t}" + ("" if t in restarts else " + objects carried from earlier masks")
        elif t < keys[0]:
            text = f"mask {keys[0]} copied (before the first mask)"
        else:
            text = f"chained from mask {keys[bisect.bisect_right(keys, t) - 1]}"
        if t < start:
            text += " (computed, not written: before --start)"
        if spans and spans[-1][2] == text and t not in keyset:
            spans[-1][1] = t
        else:
            spans.append([t, t, text])
    return [f"{'frame ' + str(a) if a == b else f'frames {a}-{b}'} <- {text}" for a, b, text in spans]


class MaskChain:
    """Masks carried frame to frame, in the spirit of Cutie's ``InferenceCore.step``:
    ``step(frame, mask=None)`` → the frame's id map. It owns the object ids (``adapter``'s
    channel ↔ id table), which objects are tracked, and the restarts: a frame with a
    ``mask`` restarts the chain from it (colour model included), and the tracked objects
    the mask lacks are carried into its background (a later mask may hold only a new
    object). ``propagator``: a fresh :class:`MaskPropagator` (with or without a TPN)."""

    def __init__(self, adapter: SegmentAdapter, propagator: MaskPropagator) -> None:
        self.adapter, self.propagator = adapter, propagator
        self.objects = set(int(i) for i in adapter.ids[1:])
        self.tracked: set[int] = set()

    @property
    def started(self) -> bool:
        """Whether a mask has been given (before it, there is nothing to carry)."""
        return self.propagator.probs is not None

    def step(self, frame: Frame, mask: np.ndarray | None = None) -> np.ndarray:
        """The id map of ``frame`` (the next in order): carried from the previous frame,
        or, with ``mask`` (an id map at the video's size), that mask plus the carried
        objects it does not contain."""
        if mask is None:
            return self._carry(frame)
        with timing.section("keys"):
            present = self.objects.intersection(np.unique(mask).tolist())
            if self.tracked - present and self.started:
                carried = self._carry(frame)
                carried[np.isin(carried, list(present))] = 0
                mask = np.where(mask == 0, carried, mask)
            key = self.adapter.prepare_key(frame.index, mask, frame.image)
            self.propagator.start(key.v, key.u)
        self.tracked.update(present)
        return key.exact

    def _carry(self, frame: Frame) -> np.ndarray:
        with timing.section("colour"):
            v = self.adapter.guide(frame.image)
        u = self.propagator.step(v)  # flow, network (and scan) sections inside
        with timing.section("colour"):
            return self.adapter.finish(frame.image, u, None)


def stream_masks(*, frames: Iterable[Frame], keys: Sequence[int], load_key: Callable[[int], np.ndarray],
        mask_chain: MaskChain, sinks: Sequence[Sink], start: int = 0,
        total: int | None = None, quiet: bool = False) -> RunStats:
    """Carry masks through ``frames`` (in order, from :func:`first_frame`) and hand the id
    map of every frame from ``start`` on to ``sinks``.

    Args:
        frames: decoded frames in order (a reader's ``frames(first_frame(...), end)``).
        keys: frame indices that have a mask.
        load_key: mask index → id map at the video's size (checked in runs.check_and_plan).
        mask_chain: a fresh :class:`MaskChain`.
        sinks: objects with ``write(frame, ids)``; written in frame order.
        start: frames before it are computed (the chain needs them) but not written.
        total: frame count for the progress bar.

    Raises:
        OutOfMemoryError: host or GPU memory exhausted. KeyboardInterrupt passes through
            (callers abort their outputs).
    """
    keyset = set(keys)
    head: list[np.ndarray] = []  # the first mask, for frames before it

    def result(frame: Frame, stats: RunStats) -> np.ndarray:
        if frame.index in keyset:
            with timing.section("keys"):
                mask = load_key(frame.index)
            stats.keys_prepared += 1
            return mask_chain.step(frame, mask)
        if not mask_chain.started:  # before the first mask
            if not head:
                with timing.section("keys"):
                    head.append(load_key(min(keys)))
            return head[0]
        return mask_chain.step(frame)

    with frame_loop(total, quiet, gpu_hint="lower --work-size (e.g. 360), or use --device cpu",
                    host_hint="lower --work-size (e.g. 360)") as (stats, bar):
        for frame in timing.timed(frames, "decode"):
            ids = result(frame, stats)
            if frame.index >= start:
                write(sinks, frame, ids)
                stats.frames += 1
            bar.update(1)
    return stats
