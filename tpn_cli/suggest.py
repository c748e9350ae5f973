"""Which frames to paint: key-frame suggestions for a budget of N key-frames.

One pass over the video's luminance thumbnails (:meth:`tpn_cli.media.VideoReader.thumbnails`)
finds the cuts (:mod:`tpn_cli.shots`) and measures how much each frame changes from the
one before (:func:`tpn_cli.shots.dissimilarity`: lightness with mean and contrast
removed, small shifts allowed). It keeps that one number per frame. Then:

1. Every shot gets its first frame: without a key-frame of its own a shot would take
   colour from another scene. With fewer key-frames than shots, the longest shots get
   them (the others are reported).
2. The rest of the budget goes, one key-frame at a time, where it lowers the total
   **distance to key** the most: each frame is fed by its nearest key-frame of its shot
   (``tpn colorize --mode nearest``; ``blend``, the default, uses both keys around it), and its distance to that key is the
   change accumulated between them: the sum of the frame-to-frame changes, plus a base
   amount per frame (the video's median change) so that time counts too. Key-frames
   thus gather where the picture moves and changes and thin out where it holds still.
   Adding a key-frame only changes the frames between its two neighbouring keys, so each
   step re-examines just the interval it splits.

A first version measured the distance as the direct difference of look between a frame
and its key; it lowered that distance but put key-frames side by side at sudden changes,
and scored below evenly spaced key-frames once the colour was carried by optical flow.
This version is on par with even spacing on single shots and below it on multi-shot clips
(docs/what-we-tried.md, "Key-frame suggestions"; ``python scripts/eval_suggest.py``).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterable

import numpy as np

from . import shots
from .errors import UsageError

__all__ = ["Analysis", "Suggestion", "analyse", "suggest", "distance_to_keys"]

#: Smallest base amount of change per frame (a still image: keys spread evenly in time).
MIN_TIME_WEIGHT = 0.01
#: At most this many candidate frames are tried per interval (evenly spread).
MAX_CANDIDATES = 256
#: At most this many frames of an interval are scored per candidate (evenly spread).
MAX_TARGETS = 4096


@dataclass
class Analysis:
    """What one pass over a video found: ``change[i]``, how much frame i differs from
    frame i − 1 (0 for the first frame and next to dark frames), and the cuts."""

    change: np.ndarray
    cuts: list[int]

    @property
    def frame_count(self) -> int:
        return len(self.change)

    @property
    def shots(self) -> list[shots.Shot]:
        return shots.shots_of(self.cuts, 0, self.frame_count)

    @cached_property
    def position(self) -> np.ndarray:
        """Accumulated change up to each frame (the base amount per frame included): the
        distance to key of frame t from key k is ``|position[t] − position[k]|``."""
        base = max(float(np.median(self.change)), MIN_TIME_WEIGHT)
        return np.cumsum(self.change + base)


@dataclass(frozen=True)
class Suggestion:
    """A frame to paint: its index, its shot (1-based), why it was chosen (``"shot
    start"`` or ``"change"``) and how much it lowered its shot's total distance to key
    (0 for a shot start)."""

    frame: int
    shot: int
    reason: str
    gain: float = 0.0


def analyse(thumbs: Iterable[tuple[int, np.ndarray]], detect_cuts: bool = True,
            threshold: float = shots.DEFAULT_THRESHOLD) -> Analysis:
    """Find the cuts in ``(index, gray thumbnail)`` at :data:`tpn_cli.shots.THUMB_SIZE`
    (indices from 0, in order) and measure each frame's change from the previous one."""
    change: list[float] = []
    prev: list[np.ndarray | None] = [None]  # the previous frame's signature (None: dark)

    def tap() -> Iterable[tuple[int, np.ndarray]]:
        for i, g in thumbs:
            sig = None if shots.is_dark(g) else shots.signature(g)
            # a dark frame's picture is mostly noise: no change is counted next to it
            both = sig is not None and prev[0] is not None
            change.append(shots.dissimilarity(prev[0], sig) if both else 0.0)
            prev[0] = sig
            yield i, g

    if detect_cuts:
        cuts = shots.find_cuts(tap(), threshold)
    else:
        cuts = []
        for _ in tap():
            pass
    if not change:
        raise UsageError("the input has no frames")
    return Analysis(np.asarray(change, np.float64), cuts)


def _spread(frames: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` of ``frames``, evenly spread (first and last kept)."""
    if len(frames) <= most:
        return frames
    return frames[np.linspace(0, len(frames) - 1, most).round().astype(int)]


@dataclass(order=True)
class _Split:
    """The best new key-frame inside one interval between key-frames (ordered by gain,
    largest first in the heap)."""

    neg_gain: float
    frame: int = field(compare=False)
    shot: int = field(compare=False)          # 1-based shot number
    left: int = field(compare=False)          # the key-frame before the interval
    right: int | None = field(compare=False)  # the key-frame after it (None: shot end)
    end: int = field(compare=False)           # the shot's end (exclusive)


def _best_split(a: Analysis, shot: int, left: int, right: int | None, end: int) -> _Split | None:
    """The frame strictly between ``left`` and ``right`` (or the shot's end) whose
    addition lowers the interval's distance to key the most, or None when it is empty."""
    stop = right if right is not None else end
    if stop - left <= 1:
        return None
    ts = np.arange(left + 1, stop)
    ts = _spread(ts, MAX_TARGETS)
    cands = _spread(ts, MAX_CANDIDATES)
    # each frame's present key: the nearer of left and right (the earlier on a tie)
    now = np.full(len(ts), left)
    if right is not None:
        now = np.where(ts - left <= right - ts, left, right)
    pos = a.position
    cur = np.abs(pos[ts] - pos[now])
    new = np.abs(pos[ts][:, None] - pos[cands][None, :])
    tt, cc = ts[:, None], cands[None, :]
    # frames that would switch to the candidate c: nearer to c than to their present key
    before = (tt < cc) & (cc - tt < tt - left)
    after = (tt >= cc) & ((tt - cc <= right - tt) if right is not None else True)
    gains = np.sum(np.where(before | after, cur[:, None] - new, 0.0), axis=0)
    best = int(np.argmax(gains))
    return _Split(-float(gains[best]), int(cands[best]), shot, left, right, end)


def suggest(a: Analysis, budget: int) -> tuple[list[Suggestion], list[shots.Shot]]:
    """Choose up to ``budget`` key-frames (see the module doc). Returns the suggestions
    sorted by frame and the shots left without a key-frame (budget below the shot count).
    """
    if budget < 1:
        raise UsageError(f"--budget must be at least 1, not {budget}")
    all_shots = a.shots
    number = {s.start: n + 1 for n, s in enumerate(all_shots)}
    by_length = sorted(all_shots, key=lambda s: (-(s.end - s.start), s.start))
    started = sorted(by_length[:budget], key=lambda s: s.start)
    chosen = [Suggestion(s.start, number[s.start], "shot start") for s in started]
    heap: list[_Split] = []
    for s in started:
        sp = _best_split(a, number[s.start], s.start, None, s.end)
        if sp is not None:
            heapq.heappush(heap, sp)
    while len(chosen) < budget and heap:
        sp = heapq.heappop(heap)
        chosen.append(Suggestion(sp.frame, sp.shot, "change", -sp.neg_gain))
        for part in (_best_split(a, sp.shot, sp.left, sp.frame, sp.end),
                     _best_split(a, sp.shot, sp.frame, sp.right, sp.end)):
            if part is not None:
                heapq.heappush(heap, part)
    left_out = sorted(by_length[budget:], key=lambda s: s.start)
    return sorted(chosen, key=lambda s: s.frame), left_out


def distance_to_keys(a: Analysis, keys: Iterable[int], mode: str = "nearest") -> float:
    """Mean distance to key (as :func:`suggest` counts it) over the frames that are not
    key-frames, each fed as ``tpn colorize --mode MODE`` feeds it given the analysis's
    cuts (for blend: the key with the larger weight)."""
    from .keyframes import iter_plan

    keyset = set(keys)
    feeds = iter_plan(a.frame_count, keyset, mode, cuts=a.cuts)  # type: ignore[arg-type]
    pairs = np.array([(f.frame, f.key) for f in feeds if f.frame not in keyset],
                     dtype=np.int64).reshape(-1, 2)
    if not len(pairs):
        return 0.0
    pos = a.position
    return float(np.mean(np.abs(pos[pairs[:, 0]] - pos[pairs[:, 1]])))
