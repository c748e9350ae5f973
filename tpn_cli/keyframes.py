"""Key-frames: find them, check them against the video, and plan which feeds which frame.

Everything here is pure (no decoding, no model): the CLI reads sizes and frame counts
through :mod:`tpn_cli.media` and passes them in, so the rules are easy to test.

Naming: the **last run of digits** in a file name (without extension) is the frame
number (``frame_000120.png``, ``00120.exr``, ``ref_120.jpg`` → 120). With
``index_base=1`` (folders extracted by tools that count from 1, e.g. ffmpeg's default)
the frame index is number − 1. Frame indices are 0-based presentation order.

Schedules (`--mode`; the README's "Commands"):

* ``online``: each frame takes the nearest key-frame at or before it (the paper's
  default; causal).
* ``nearest``: the nearest key-frame on either side (the paper's offline mode); on a
  tie the earlier key wins.
* ``blend``: the two key-frames around the frame, weighted by distance
  (``w_prev = (next - t) / (next - prev)``); a frame outside the key range uses the one
  key it has.

In every schedule frames before the first key-frame take the first one.

Shots: given the cuts of the video (:mod:`tpn_cli.shots`), each frame only takes
key-frames of its own shot, and the rules above apply within the shot. A shot without a
key-frame takes the nearest key across its cuts (:func:`fallback_key`), and the run warns.
"""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Literal, Mapping, Sequence

import numpy as np

from .errors import BadInputError, UsageError
from .media.frames import IMAGE_EXTENSIONS, frame_number, list_frame_files

__all__ = [
    "Assignment",
    "KeyFrame",
    "Mode",
    "SizeCheck",
    "SnapResult",
    "check_colour_keyframe",
    "check_indices",
    "check_size",
    "describe_plan",
    "fallback_key",
    "find_keyframes",
    "index_base_hint",
    "iter_plan",
    "plan",
    "is_grayscale",
    "over_frame",
    "segments",
    "snap_check",
]

Mode = Literal["online", "nearest", "blend"]
MODES: tuple[str, ...] = ("online", "nearest", "blend")


@dataclass(frozen=True)
class KeyFrame:
    """A key-frame file: ``index`` (0-based frame index), ``number`` (from the name)."""

    index: int
    path: Path
    number: int


def find_keyframes(folder: str | os.PathLike[str], *, index_base: int = 0,
                   extensions: frozenset[str] | set[str] = IMAGE_EXTENSIONS,
                   what: str = "key-frame") -> list[KeyFrame]:
    """List the key-frames of a folder (or a single file), sorted by index.

    Raises:
        UsageError: ``index_base`` not 0 or 1.
        BadInputError: folder missing or empty, a name without digits, two files with
            the same index, an index below 0 after applying ``index_base``.
    """
    if index_base not in (0, 1):
        raise UsageError(f"--index-base must be 0 or 1, not {index_base}")
    folder = Path(folder)
    if folder.is_file():
        n = frame_number(folder.name)
        entries = [(n if n is not None else index_base, folder)]
    else:
        entries = list_frame_files(folder, extensions, what=what)
    keys = []
    for number, path in entries:
        index = number - index_base
        if index < 0:
            raise BadInputError(f"{path.name} gives frame number {number}, below --index-base {index_base}",
                                path=path, hint="use --index-base 0 for folders that count from 0",
                                code="KEYFRAME_INDEX")
        keys.append(KeyFrame(index=index, path=path, number=number))
    return keys


def index_base_hint(keys: Sequence[KeyFrame], frame_count: int | None = None,
                    index_base: int = 0) -> str | None:
    """A one-line note when the names look 1-based but ``index_base`` is 0 (no key at
    0 and the highest number equals the frame count), else None."""
    if index_base != 0 or not keys or any(k.number == 0 for k in keys):
        return None
    if frame_count is not None and max(k.number for k in keys) == frame_count:
        return ("key-frame numbers look 1-based (none is 0 and the last equals the frame "
                "count); if they were extracted with ffmpeg's default numbering, pass --index-base 1")
    return None


def check_indices(keys: Sequence[KeyFrame], frame_count: int, *,
                  source: str | os.PathLike[str] | None = None, index_base: int = 0) -> None:
    """Refuse key-frames whose index is past the end of the video.

    Raises:
        BadInputError: names the key-frame file, its index and the frame count; suggests
            ``--index-base 1`` when that explains it.
    """
    if not keys:
        raise BadInputError("no key-frames given", path=source,
                            hint="pass a folder with at least one key-frame", code="EMPTY_FOLDER")
    for k in keys:
        if k.index >= frame_count:
            hint = (f"the video{f' {source}' if source else ''} has {frame_count} frames, "
                    f"indices 0..{frame_count - 1}")
            if index_base == 0 and k.number == frame_count:
                hint += "; if your frames were numbered from 1, pass --index-base 1"
            else:
                hint += "; rename the file to the right frame index"
            raise BadInputError(f"key-frame index {k.index} is past the end of the video",
                                path=k.path, frame=k.index, hint=hint,
                                code="KEYFRAME_OUT_OF_RANGE")


@dataclass(frozen=True)
class SizeCheck:
    """Result of :func:`check_size`: ``resize`` True when the key-frame must be resized
    to (``width``, ``height``); ``note`` is the message to show the user (or None)."""

    resize: bool
    width: int
    height: int
    note: str | None = None


def check_size(key_size: tuple[int, int], video_size: tuple[int, int], *,
               path: str | os.PathLike[str] | None = None, tolerance: float = 0.01) -> SizeCheck:
    """Compare a key-frame's (width, height) with the video's.

    Equal: nothing to do. Same aspect ratio (within ``tolerance``, relative): resize,
    with a note. Otherwise refuse.

    Raises:
        BadInputError: different aspect ratio (names the file, both sizes and the fix).
    """
    kw, kh = key_size
    vw, vh = video_size
    if (kw, kh) == (vw, vh):
        return SizeCheck(False, vw, vh)
    if kw <= 0 or kh <= 0:
        raise BadInputError(f"key-frame has an empty size {kw}x{kh}", path=path,
                            hint="re-export the key-frame")
    ka, va = kw / kh, vw / vh
    if abs(ka - va) <= tolerance * va:
        return SizeCheck(True, vw, vh, note=f"{Path(path).name if path else 'key-frame'}: "
                         f"{kw}x{kh} resized to the video's {vw}x{vh} (same aspect ratio)")
    kr, vr = Fraction(kw, kh), Fraction(vw, vh)
    raise BadInputError(
        f"key-frame is {kw}x{kh} (aspect {kr.numerator}:{kr.denominator}) but the video is "
        f"{vw}x{vh} (aspect {vr.numerator}:{vr.denominator})", path=path,
        hint="export the key-frame from the video itself (tpn extract) or crop/pad it to "
             "the video's aspect ratio", code="KEYFRAME_SIZE")


@dataclass(frozen=True)
class Assignment:
    """Which key-frames feed frame ``frame``: ``sources`` is ``((key_index, weight), ...)``
    with weights summing to 1 (one entry for online/nearest, one or two for blend)."""

    frame: int
    sources: tuple[tuple[int, float], ...]

    @property
    def key(self) -> int:
        """The main key-frame (largest weight; the earlier on a tie)."""
        return max(self.sources, key=lambda s: (s[1], -s[0]))[0]

    @property
    def is_key(self) -> bool:
        """Whether the frame is itself a key-frame (its only source)."""
        return [k for k, _ in self.sources] == [self.frame]


def _sorted_unique(key_indices: Iterable[int]) -> list[int]:
    keys = sorted(set(int(k) for k in key_indices))
    if not keys:
        raise UsageError("at least one key-frame is needed to plan a run")
    if keys[0] < 0:
        raise UsageError(f"negative key-frame index {keys[0]}")
    return keys


def _within(t: int, keys: Sequence[int], lo: int, hi: int, mode: str) -> Assignment:
    """Frame ``t``'s assignment from ``keys[lo:hi]`` (sorted, not empty) under ``mode``."""
    i = bisect.bisect_right(keys, t, lo, hi)  # keys[lo:i] <= t
    prev = keys[i - 1] if i > lo else None
    nxt = keys[i] if i < hi else None
    if prev is None:  # before the first key-frame
        return Assignment(t, ((keys[lo], 1.0),))
    if mode == "online" or prev == t or nxt is None:
        return Assignment(t, ((prev, 1.0),))
    if mode == "nearest":
        return Assignment(t, (((prev if t - prev <= nxt - t else nxt), 1.0),))
    w_prev = (nxt - t) / (nxt - prev)  # blend
    return Assignment(t, ((prev, w_prev), (nxt, 1.0 - w_prev)))


def fallback_key(keys: Sequence[int], shot_start: int, shot_end: int, mode: str) -> int:
    """The one key-frame that a shot ``[shot_start, shot_end)`` without a key-frame of its
    own takes, from across its cuts: ``online`` the last key before the shot (the first
    after it when there is none); otherwise the key nearest to the shot's edges (the
    earlier on a tie). The whole shot takes the same key, so it stays consistent."""
    i = bisect.bisect_left(keys, shot_start)
    prev = keys[i - 1] if i > 0 else None
    nxt = keys[i] if i < len(keys) else None
    if prev is None or (nxt is not None and mode != "online" and nxt - (shot_end - 1) < shot_start - prev):
        return nxt  # type: ignore[return-value]
    return prev


def iter_plan(frame_count: int, key_indices: Iterable[int], mode: Mode = "online",
              start: int = 0, end: int | None = None, cuts: Iterable[int] = ()) -> Iterator[Assignment]:
    """Yield one :class:`Assignment` per frame in ``[start, end)`` (streaming, O(1) memory
    per frame). See the module doc for the schedules.

    ``cuts`` (frame indices that start a new shot, :mod:`tpn_cli.shots`) confine every
    frame to the key-frames of its own shot: the schedule runs within the shot, as if the
    video were cut there. A shot without any key-frame takes :func:`fallback_key` (the
    caller warns; see :func:`tpn_cli.shots.keyless_shots`).
    """
    if mode not in MODES:
        raise UsageError(f"unknown schedule {mode!r}", hint="use online, nearest or blend")
    keys = _sorted_unique(key_indices)
    end = frame_count if end is None else min(end, frame_count)
    if start < 0 or start > end:
        raise UsageError(f"bad frame range {start}..{end}", hint="use 0 <= start <= end")
    bounds = sorted(set(int(c) for c in cuts if 0 < int(c) < frame_count))
    for t in range(start, end):
        j = bisect.bisect_right(bounds, t)
        shot_start = bounds[j - 1] if j > 0 else 0
        shot_end = bounds[j] if j < len(bounds) else frame_count
        lo, hi = bisect.bisect_left(keys, shot_start), bisect.bisect_left(keys, shot_end)
        if lo < hi:
            yield _within(t, keys, lo, hi, mode)
        else:
            yield Assignment(t, ((fallback_key(keys, shot_start, shot_end, mode), 1.0),))


def plan(frame_count: int, key_indices: Iterable[int], mode: Mode = "online",
         start: int = 0, end: int | None = None, cuts: Iterable[int] = ()) -> list[Assignment]:
    """:func:`iter_plan` as a list."""
    return list(iter_plan(frame_count, key_indices, mode, start, end, cuts))


def segments(assignments: Iterable[Assignment],
             cuts: Iterable[int] = ()) -> list[tuple[tuple[int, ...], int, int]]:
    """Group consecutive frames fed by the same key-frame set:
    ``[(key_indices, first_frame, last_frame), ...]`` (inclusive), a new group at every
    cut. Useful for the engine (keep one or two key properties in memory per segment)
    and for printing."""
    cut_set = set(cuts)
    out: list[tuple[tuple[int, ...], int, int]] = []
    for a in assignments:
        ks = tuple(k for k, _ in a.sources)
        if out and out[-1][0] == ks and out[-1][2] == a.frame - 1 and a.frame not in cut_set:
            out[-1] = (ks, out[-1][1], a.frame)
        else:
            out.append((ks, a.frame, a.frame))
    return out


def _span(a: int, b: int) -> str:
    return f"frame {a}" if a == b else f"frames {a}-{b}"


def describe_plan(assignments: Iterable[Assignment], mode: Mode = "online",
                  cuts: Sequence[int] = ()) -> list[str]:
    """Human-readable lines for ``--dry-run``: one per segment, e.g.
    ``frames 0-9 <- key 0`` or ``frames 11-19 <- keys 10+20 (blend)``. With ``cuts``
    inside the frames, a ``shot N: frames a-b`` line heads each shot's segments, and a
    shot without a key-frame says which key it takes across the cut."""
    segs = segments(assignments, cuts)
    if not segs:
        return []
    first, last = segs[0][1], segs[-1][2]
    bounds = [first, *sorted(c for c in set(cuts) if first < c <= last), last + 1]
    lines = []
    for ks, a, b in segs:
        if len(bounds) > 2 and a in bounds:
            n = bounds.index(a)
            lo, hi = bounds[n], bounds[n + 1]
            keyless = all(not lo <= k < hi for k in ks)
            lines.append(f"shot {n + 1}: {_span(lo, hi - 1)}" + (
                f" (NO KEY-FRAME: takes key {ks[0]} across the cut; add a key-frame in "
                f"{_span(lo, hi - 1)})" if keyless else ""))
        indent = "  " if len(bounds) > 2 else ""
        if len(ks) == 1:
            lines.append(f"{indent}{_span(a, b)} <- key {ks[0]}")
        else:
            lines.append(f"{indent}{_span(a, b)} <- keys {'+'.join(map(str, ks))} "
                         f"({mode}: weighted by distance and per-pixel fit)")
    return lines


# ----------------------------------------------------------------------------------------
# content checks (need decoded pixels; still pure functions of arrays)
# ----------------------------------------------------------------------------------------
def _luma(image: np.ndarray, max_side: int = 160) -> np.ndarray:
    img = np.asarray(image)
    step = max(1, int(np.ceil(max(img.shape[:2]) / max_side)))
    img = img[::step, ::step].astype(np.float32)
    y = img @ np.array([0.2126, 0.7152, 0.0722], np.float32) if img.ndim == 3 else img
    return (y - y.mean()) / (y.std() + 1e-6)


def is_grayscale(image: np.ndarray, tolerance: float = 2.0) -> bool:
    """True when R, G and B agree everywhere to within ``tolerance`` (in 8-bit steps)."""
    img = np.asarray(image)
    if img.ndim == 2 or img.shape[2] == 1:
        return True
    scale = 257.0 if img.dtype == np.uint16 else (1 / 255.0 if img.dtype.kind == "f" else 1.0)
    d = np.abs(img[..., 0].astype(np.float32) - img[..., 1]) + np.abs(
        img[..., 1].astype(np.float32) - img[..., 2])
    return bool(np.percentile(d, 99.5) <= 2 * tolerance * scale)


def check_colour_keyframe(image: np.ndarray, path: str | os.PathLike[str] | None = None) -> None:
    """Refuse a grayscale image where a colour key-frame is needed. A partly painted key
    (RGBA, alpha = where colour is given) is judged on its painted pixels.

    Raises:
        BadInputError: names the file and the fix (also for a key with no paint at all).
    """
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        painted = image[..., 3] > 0
        if not painted.any():
            raise BadInputError("key-frame is transparent everywhere (alpha 0: no colour given)",
                                path=path, hint="paint some regions (alpha > 0) or remove the file",
                                code="KEYFRAME_EMPTY")
        image = image[..., :3][painted][None]  # the painted pixels as a 1-row image
    if is_grayscale(image):
        raise BadInputError("key-frame has no colour (R, G and B are equal)", path=path,
                            hint="paint or grade the key-frame in colour and export it as RGB",
                            code="KEYFRAME_GRAYSCALE")


def over_frame(key: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """A partly painted key (RGBA) laid over ``frame`` (RGB, same size and type): the key's
    colour where painted, the frame elsewhere, mixed by alpha. RGB keys are returned as
    they are."""
    if key.shape[-1] != 4:
        return key
    peak = float(np.iinfo(key.dtype).max) if key.dtype.kind == "u" else 1.0
    alpha = key[..., 3:].astype(np.float32) / peak
    mixed = alpha * key[..., :3] + (1.0 - alpha) * frame.astype(np.float32)
    return np.rint(mixed).astype(frame.dtype) if frame.dtype.kind == "u" else mixed.astype(frame.dtype)


@dataclass(frozen=True)
class SnapResult:
    """Outcome of :func:`snap_check`: ``best`` is the frame whose lightness matches the
    key-frame best, ``errors`` the mismatch per candidate (lower is better), ``ok``
    False when another frame matches clearly better than the named one (``note`` says
    which)."""

    index: int
    best: int
    errors: dict[int, float]
    ok: bool
    note: str | None = None


def snap_check(key_image: np.ndarray, candidates: Mapping[int, np.ndarray], index: int, *,
               path: str | os.PathLike[str] | None = None, ratio: float = 0.6) -> SnapResult:
    """Compare a key-frame's lightness with the video frames around its index.

    Lightness is compared after normalising each image to zero mean and unit contrast
    (robust to grading), on a downsampled luma. ``candidates`` maps frame indices (the
    named index and its neighbours, e.g. ±2) to RGB frames of the key-frame's size.
    ``ok`` is False when a neighbour's error is below ``ratio`` × the named frame's:
    a likely off-by-one or naming mistake.
    """
    if index not in candidates:
        raise UsageError(f"frame {index} must be among the candidates")
    k = _luma(key_image)
    errors = {}
    for i, img in candidates.items():
        f = _luma(img)
        if f.shape != k.shape:
            raise UsageError("key-frame and candidate frames must have the same size",
                             path=path, frame=i)
        errors[int(i)] = float(np.mean(np.abs(k - f)))
    best = min(errors, key=lambda i: (errors[i], abs(i - index)))
    ok = best == index or errors[best] >= ratio * errors[index]
    note = None
    if not ok:
        name = Path(path).name if path else f"key-frame {index}"
        note = (f"{name} is named frame {index} but matches frame {best} better "
                f"(lightness error {errors[best]:.3f} vs {errors[index]:.3f}); rename it to "
                f"index {best} if that is the frame it was painted on")
    return SnapResult(index=index, best=best, errors=errors, ok=ok, note=note)
