"""Shot changes: find the cuts of a video from small luminance thumbnails.

A key-frame's colour (or radiance) belongs to its shot: carried across a cut it paints
the next shot with the wrong scene's colours. :func:`find_cuts` finds the cuts so that
the plan (:func:`tpn_cli.keyframes.iter_plan`) keeps each frame's key-frames in its shot.

The detector works on luminance alone (the input of ``tpn colorize`` is grayscale) and on
64×36 thumbnails that :meth:`tpn_cli.media.VideoReader.thumbnails` makes cheaply; it
holds a few thumbnails at a time, so memory does not grow with the video. For each pair of
consecutive frames it measures a **dissimilarity**: 1 − the best cosine similarity of the
two thumbnails after removing each one's mean and contrast (so flicker, exposure changes
and fades, which scale and shift the brightness, do not count), over shifts of up to 2
thumbnail pixels (so a camera pan does not count). A frame starts a new shot when

* its dissimilarity to the previous frame is at least ``threshold``,
* it is a spike: at least ``SPIKE_RATIO`` × the largest dissimilarity of the
  ``WINDOW`` frames on either side (fast motion raises all of them together; a cut is one
  frame), and
* the scene does not come back: the previous frame is not similar again to one of the
  next ``WINDOW`` frames (a photographer's flash, a light flicker or one corrupt frame
  is an excursion, not a cut).

Frames with almost no contrast (black, the bottom of a fade; :func:`is_dark`) show
nothing to compare: across a run of them, the last frame before and the first frame
after are compared, and a dissimilarity of at least ``DARK_RATIO`` × ``threshold`` (they
are several frames apart) puts a cut at the first frame after the run (a cut to black, a
fade out and in to another scene). Only that frame is held during the run.

Measured on real footage (docs/what-we-tried.md, "Shot changes";
``python scripts/eval_shots.py``).
"""
from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import numpy as np

__all__ = ["THUMB_SIZE", "DEFAULT_THRESHOLD", "Shot", "signature", "dissimilarity", "is_dark",
           "find_cuts", "shots_of", "keyless_shots"]

#: (width, height) of the thumbnails the detector compares.
THUMB_SIZE: tuple[int, int] = (64, 36)
#: Default dissimilarity a cut must reach (1 − cosine similarity; 0 same picture, 1 unrelated).
DEFAULT_THRESHOLD = 0.4
#: A cut's dissimilarity is at least this multiple of its neighbours'.
SPIKE_RATIO = 2.0
#: Neighbours on each side looked at for the spike and return tests.
WINDOW = 3
#: Largest shift (thumbnail pixels) tried when comparing two frames: absorbs pans.
MAX_SHIFT = 2
#: Contrast floor (8-bit grey levels): a nearly flat frame (black, fog) is not inflated
#: into noise by the contrast normalisation of :func:`signature`.
CONTRAST_FLOOR = 4.0
#: Below this contrast (standard deviation of the thumbnail, 8-bit grey levels) a frame
#: counts as dark: at the bottom of a fade its picture is mostly quantisation noise.
DARK_CONTRAST = 8.0
#: Across a dark run a cut needs this multiple of ``threshold``: the frames compared are
#: several frames apart, so motion alone makes them differ more.
DARK_RATIO = 1.5


@dataclass(frozen=True)
class Shot:
    """Frames ``start <= index < end`` between two cuts."""

    start: int
    end: int

    @property
    def last(self) -> int:
        """The shot's last frame index (inclusive)."""
        return self.end - 1

    def __str__(self) -> str:
        return f"frames {self.start}-{self.last}" if self.last > self.start else f"frame {self.start}"


def signature(gray: np.ndarray) -> np.ndarray:
    """A thumbnail without its mean and contrast: ``(x − mean) / sqrt(var + floor²)``
    as float32, so brightness gain and offset (flicker, fades) leave it unchanged."""
    x = np.asarray(gray, dtype=np.float32)
    x = x - x.mean()
    return x / np.float32(np.sqrt(float(np.mean(x * x)) + CONTRAST_FLOOR**2))


def dissimilarity(a: np.ndarray, b: np.ndarray, max_shift: int = MAX_SHIFT) -> float:
    """1 − the best cosine similarity of signatures ``a`` and ``b`` (same shape) over
    shifts of ``b`` by up to ``max_shift`` pixels (the centre of ``a`` against shifted
    windows of ``b``). 0 for the same picture, about 1 for unrelated ones."""
    s = max_shift
    h, w = a.shape[0] - 2 * s, a.shape[1] - 2 * s
    centre = a[s:s + h, s:s + w]
    windows = np.lib.stride_tricks.sliding_window_view(b, (h, w))  # (2s+1, 2s+1, h, w)
    dots = np.einsum("ij,abij->ab", centre, windows)
    norms = np.sqrt(np.einsum("abij,abij->ab", windows, windows) * float(np.sum(centre * centre)))
    cos = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return 1.0 - float(cos.max())


def _is_cut(scores: Sequence[float], sigs: Sequence[np.ndarray], i: int, threshold: float) -> bool:
    """The three tests of the module doc for the frame at position ``i`` of the window;
    ``scores[j]`` is frame j's dissimilarity to frame j − 1, ``sigs[j]`` its signature."""
    s = scores[i]
    if s < threshold:
        return False
    around = [scores[j] for j in range(max(1, i - WINDOW), min(len(scores), i + WINDOW + 1)) if j != i]
    if around and s < SPIKE_RATIO * max(around):
        return False
    before = sigs[i - 1]
    return all(dissimilarity(before, sigs[j]) >= threshold
               for j in range(i + 1, min(len(sigs), i + WINDOW + 1)))


def find_cuts(thumbs: Iterable[tuple[int, np.ndarray]], threshold: float = DEFAULT_THRESHOLD) -> list[int]:
    """Frame indices that start a new shot, from ``(index, gray thumbnail)`` in order
    (e.g. :meth:`tpn_cli.media.VideoReader.thumbnails` at :data:`THUMB_SIZE`).

    The first frame given never counts as a cut. Holds ``2 × WINDOW + 2`` thumbnails.
    """
    return sorted(set(_iter_cuts(thumbs, threshold)))


def is_dark(gray: np.ndarray) -> bool:
    """True for a frame with almost no contrast (black, the bottom of a fade): it shows
    nothing to compare, so its dissimilarities are not used."""
    return float(np.asarray(gray, dtype=np.float32).std()) < DARK_CONTRAST


def _iter_cuts(thumbs: Iterable[tuple[int, np.ndarray]], threshold: float) -> Iterator[int]:
    size = 2 * WINDOW + 2  # the frame tested, WINDOW on each side, and the one before
    idx: deque[int] = deque(maxlen=size)
    sigs: deque[np.ndarray] = deque(maxlen=size)
    scores: deque[float] = deque(maxlen=size)
    tested = None  # the last index tested
    prev_dark = False
    before_dark: np.ndarray | None = None  # the last frame with contrast before a dark run

    def test_up_to(last_possible: bool) -> Iterator[int]:
        nonlocal tested
        for i in range(1, len(idx)):
            if tested is not None and idx[i] <= tested:
                continue
            if not last_possible and i + WINDOW >= len(idx):
                return  # needs WINDOW frames after it: wait for them
            tested = idx[i]
            if _is_cut(list(scores), list(sigs), i, threshold):
                yield idx[i]

    for index, gray in thumbs:
        sig, dark = signature(gray), is_dark(gray)
        if dark and not prev_dark and sigs:
            before_dark = sigs[-1]
        if not dark and prev_dark and before_dark is not None \
                and dissimilarity(before_dark, sig) >= DARK_RATIO * threshold:
            yield index  # a different scene after black or a fade through black
        # a dark frame is neither the end nor the start of a spike (see the dark-run rule)
        scores.append(dissimilarity(sigs[-1], sig) if sigs and not dark and not prev_dark else 0.0)
        sigs.append(sig)
        idx.append(index)
        prev_dark = dark
        yield from test_up_to(False)
    yield from test_up_to(True)


def shots_of(cuts: Sequence[int], start: int, end: int) -> list[Shot]:
    """The shots of frames ``start <= index < end`` given the cut indices."""
    bounds = [start, *sorted(c for c in set(cuts) if start < c < end), end]
    return [Shot(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def keyless_shots(shots: Sequence[Shot], key_indices: Iterable[int]) -> list[Shot]:
    """The shots that contain none of the key-frames."""
    keys = sorted(set(key_indices))
    return [s for s in shots if bisect.bisect_left(keys, s.start) == bisect.bisect_left(keys, s.end)]
