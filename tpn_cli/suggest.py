"""Which frames to paint: key-frame suggestions for a budget of N key-frames.

One pass over the video's luminance thumbnails (:meth:`tpn_cli.media.VideoReader.thumbnails`)
finds the cuts (:mod:`tpn_cli.shots`) and keeps a 32×18 thumbnail per frame (576 bytes:
a 100 000-frame film holds 58 MB). Then:

1. Every shot gets its first frame: without a key-frame of its own a shot would take
   colour from another scene. With fewer key-frames than shots, the longest shots get
   them (the others are reported).
2. The rest of the budget goes, one key-frame at a time, where it lowers the total
   **distance to key** the most: each frame is fed by its nearest key-frame of its shot
   (``tpn colorize --mode nearest``, the default), and its distance to that key is how
   different the two frames look (1 − cosine similarity of their thumbnails after
   removing mean and contrast, :func:`tpn_cli.shots.signature`) plus a small term per
   frame of time between them (so that in an unchanging shot keys spread out evenly).
   Adding a key-frame only changes the frames between its two neighbouring keys, so
   each step re-examines just the interval it splits.

Measured against evenly spaced key-frames in docs/what-we-tried.md ("Key-frame
suggestions"; ``python scripts/eval_suggest.py``).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from . import shots
from .errors import UsageError

__all__ = ["SIG_SIZE", "Analysis", "Suggestion", "analyse", "suggest", "distance_to_keys"]

#: (width, height) of the thumbnail kept per frame for the distances.
SIG_SIZE: tuple[int, int] = (32, 18)
#: Distance added per frame of time between a frame and its key (a tie-breaker: 100
#: frames weigh as much as a 0.01 change of look).
TIME_WEIGHT = 1e-4
#: At most this many candidate frames are tried per interval (evenly spread).
MAX_CANDIDATES = 256
#: At most this many frames of an interval are scored per candidate (evenly spread).
MAX_TARGETS = 4096


@dataclass
class Analysis:
    """What one pass over a video found: ``thumbs`` (frames, 18, 32) uint8 and the cuts."""

    thumbs: np.ndarray
    cuts: list[int]

    @property
    def frame_count(self) -> int:
        return len(self.thumbs)

    @property
    def shots(self) -> list[shots.Shot]:
        return shots.shots_of(self.cuts, 0, self.frame_count)

    def vectors(self, frames: np.ndarray) -> np.ndarray:
        """Unit-scale signatures of ``frames`` (indices) as rows: the dot product of two
        rows is the similarity of the two frames (1 for the same picture)."""
        sigs = np.stack([shots.signature(self.thumbs[i]).ravel() for i in frames])
        return sigs / np.float32(np.sqrt(sigs.shape[1]))


@dataclass(frozen=True)
class Suggestion:
    """A frame to paint: its index, its shot (1-based), why it was chosen and how much it
    lowered its shot's total distance to key (0 for a shot start)."""

    frame: int
    shot: int
    reason: str
    gain: float = 0.0


def analyse(thumbs: Iterable[tuple[int, np.ndarray]], detect_cuts: bool = True,
            threshold: float = shots.DEFAULT_THRESHOLD) -> Analysis:
    """Find the cuts in ``(index, gray thumbnail)`` at :data:`tpn_cli.shots.THUMB_SIZE`
    (indices from 0, in order) and keep a small thumbnail of every frame."""
    import cv2

    kept: list[np.ndarray] = []

    def tap() -> Iterator[tuple[int, np.ndarray]]:
        for i, g in thumbs:
            kept.append(cv2.resize(g, SIG_SIZE, interpolation=cv2.INTER_AREA))
            yield i, g

    if detect_cuts:
        cuts = shots.find_cuts(tap(), threshold)
    else:
        cuts = []
        for _ in tap():
            pass
    if not kept:
        raise UsageError("the input has no frames")
    return Analysis(np.stack(kept), cuts)


def _cost(vec_t: np.ndarray, t: np.ndarray, vec_k: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Distance to key of frames ``t`` from keys ``k`` (all pairs: len(t) × len(k))."""
    return 1.0 - vec_t @ vec_k.T + TIME_WEIGHT * np.abs(t[:, None] - k[None, :])


def _spread(frames: np.ndarray, most: int) -> np.ndarray:
    """At most ``most`` of ``frames``, evenly spread (first and last kept)."""
    if len(frames) <= most:
        return frames
    return frames[np.linspace(0, len(frames) - 1, most).round().astype(int)]


def _pair_cost(a: Analysis, t: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Distance to key of each frame ``t[i]`` from its key ``k[i]``."""
    return (1.0 - np.sum(a.vectors(t) * a.vectors(k), axis=1)) + TIME_WEIGHT * np.abs(t - k)


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
    vec_t = a.vectors(ts)
    cur = _pair_cost(a, ts, now)
    new = _cost(vec_t, ts, vec_t[np.searchsorted(ts, cands)], cands)
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
        chosen.append(Suggestion(sp.frame, sp.shot, "appearance change", -sp.neg_gain))
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
    costs = [_pair_cost(a, c[:, 0], c[:, 1]) for c in np.array_split(pairs, max(1, len(pairs) // 4096))]
    return float(np.concatenate(costs).mean())
