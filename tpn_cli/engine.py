"""Streaming propagation: read → batch → model → write, in one pass over the frames.

Memory stays flat in the clip's length because nothing is kept per frame:

* frames are decoded one at a time, in order, and written as soon as they are done;
* at most ``batch_size`` (frame, key-frame) pairs wait for the model;
* each key-frame is prepared once (file read, resized, converted; see
  :mod:`tpn_cli.adapters`) and kept in a small cache while the plan still needs it. The
  plan is monotone (a later frame never needs an earlier key than a previous frame), so
  a key is dropped as soon as the current frame's earliest key is past it;
* tasks whose key guidance is the video frame at the key's index (HDR, segment) get it
  from a second, forward-only decoder (:class:`KeyFrameFeed`), because with the
  ``nearest`` and ``blend`` schedules a key is needed before the main pass reaches it.

A frame that is itself a key-frame is output from the key (exact, full resolution).
"""
from __future__ import annotations

import resource
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np
import torch

from .errors import BadInputError, OutOfMemoryError
from .keyframes import Assignment
from .media.video import Frame

__all__ = ["KeyFrameFeed", "RunStats", "Sink", "peak_memory_mb", "run", "work_size"]


def work_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Working (height, width): the short side scaled to ``short_side`` (never up-scaled;
    0 = full size), aspect ratio kept."""
    short = min(width, height)
    if short_side <= 0 or short_side >= short:
        return height, width
    s = short_side / short
    return max(1, round(height * s)), max(1, round(width * s))


def peak_memory_mb() -> float:
    """Peak resident memory of this process (MB), plus the CUDA allocator's peak."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        rss += torch.cuda.max_memory_allocated() / 2**20
    return rss


class Sink(Protocol):
    """Where results go (video, frame folder, masks, previews); see :mod:`tpn_cli.outputs`."""

    def write(self, frame: Frame, result: Any) -> None: ...


class KeyFrameFeed:
    """The video frames at key indices, from a second decoder that only moves forward.

    ``get(k)`` decodes up to frame ``k`` (requests must not go backwards, which the
    monotone plan guarantees) and holds only the last decoded frame.
    """

    def __init__(self, frames: Callable[[], Iterator[Frame]]) -> None:
        self._open = frames
        self._it: Iterator[Frame] | None = None
        self._last: Frame | None = None

    def get(self, index: int) -> np.ndarray:
        if self._last is not None and self._last.index == index:
            return self._last.image
        if self._last is not None and self._last.index > index:
            self._it = None  # a step back (not expected): restart from the beginning
        if self._it is None:
            self._it = self._open()
        for f in self._it:
            self._last = f
            if f.index == index:
                return f.image
        raise BadInputError(f"frame {index} could not be read for its key-frame",
                            frame=index, hint="check the key-frame indices against the video length")


@dataclass
class RunStats:
    """What :func:`run` did: frames written, seconds, frames/s, peak memory."""

    frames: int = 0
    seconds: float = 0.0
    keys_prepared: int = 0
    peak_memory_mb: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def _model_outputs(model: torch.nn.Module, predict: Callable, pairs: list, batch_size: int) -> list:
    """Run the model on ``(key, v_tgt)`` pairs, ``batch_size`` at a time."""
    outs: list[torch.Tensor] = []
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        u = torch.stack([k.u for k, _ in chunk])
        vk = torch.stack([k.v for k, _ in chunk])
        vt = torch.stack([v for _, v in chunk])
        outs.extend(predict(model, u, vk, vt).unbind(0))
    return outs


def run(*, frames: Iterable[Frame], assignments: Iterable[Assignment], adapter: Any,
        load_key: Callable[[int], np.ndarray], model: torch.nn.Module, sinks: Sequence[Sink],
        batch_size: int = 4, key_feed: KeyFrameFeed | None = None, total: int | None = None,
        quiet: bool = False, predict: Callable | None = None) -> RunStats:
    """Propagate key-frame properties through ``frames`` and hand each result to ``sinks``.

    Args:
        frames: decoded frames in order (a reader's ``frames(start, end)``).
        assignments: the plan for the same frames (:func:`tpn_cli.keyframes.iter_plan`).
        adapter: a :mod:`tpn_cli.adapters` object for the task.
        load_key: key index → key property image (colour image, radiance or id map),
            already checked and at the video's size.
        model: the TPN (eval mode, on the adapter's device).
        sinks: objects with ``write(frame, result)``; written in frame order.
        batch_size: (frame, key) pairs per model call.
        key_feed: video frames at key indices (tasks whose key guidance is the video).
        total: frame count for the progress bar.
        quiet: no progress bar.
        predict: ``predict(model, u_key, v_key, v_tgt)``; default :func:`tpn_cli.models.predict`.

    Raises:
        BadInputError: plan and frames disagree. OutOfMemoryError: host or GPU memory
            exhausted (with the options that reduce it). KeyboardInterrupt passes through
            (callers abort their outputs).
    """
    from tqdm import tqdm

    if predict is None:
        from .models import predict
    batch_size = max(1, int(batch_size))
    stats = RunStats()
    cache: dict[int, Any] = {}

    def key(k: int):
        if k not in cache:
            video = key_feed.get(k) if adapter.needs_key_video_frame else None
            cache[k] = adapter.prepare_key(k, load_key(k), video)
            stats.keys_prepared += 1
        return cache[k]

    def flush(pending: list[tuple[Frame, Assignment]]) -> None:
        # one model call per batch of (key, frame) pairs; key-frames themselves need none
        pairs, slots = [], []
        for frame, a in pending:
            if a.sources[0][0] == frame.index and len(a.sources) == 1:
                slots.append(None)
                continue
            v = adapter.guide(frame.image)
            mine = []
            for k, w in a.sources:
                mine.append((len(pairs), key(k), w))
                pairs.append((key(k), v))
            slots.append(mine)
        outs = _model_outputs(model, predict, pairs, batch_size) if pairs else []
        for (frame, a), mine in zip(pending, slots):
            if mine is None:
                result = adapter.finish(frame.image, None, key(frame.index))
            else:
                u = adapter.blend([(outs[i], w) for i, _, w in mine])
                result = adapter.finish(frame.image, u, None, [(k, w) for _, k, w in mine])
            for s in sinks:
                s.write(frame, result)
            stats.frames += 1
            bar.update(1)
        # the plan is monotone: keys before the last frame's earliest key are done
        low = min(k for k, _ in pending[-1][1].sources)
        for k in [k for k in cache if k < low]:
            del cache[k]
        pending.clear()

    t0 = time.perf_counter()
    bar = tqdm(total=total, unit="frame", file=sys.stderr, disable=quiet or None,
               dynamic_ncols=True, smoothing=0.1)
    try:
        pending: list[tuple[Frame, Assignment]] = []
        plan_it = iter(assignments)
        with torch.inference_mode():
            for frame in frames:
                a = next(plan_it, None)
                if a is None or a.frame != frame.index:
                    raise BadInputError(f"frame {frame.index} has no plan entry "
                                        f"(got {a.frame if a else 'none'})", frame=frame.index,
                                        hint="the frame count changed while reading; re-encode the input")
                pending.append((frame, a))
                # count pairs, not frames: a blended frame costs two model items
                if sum(len(x.sources) for _, x in pending) >= batch_size:
                    flush(pending)
            if pending:
                flush(pending)
    except torch.OutOfMemoryError as exc:
        raise OutOfMemoryError(f"out of GPU memory ({exc})".splitlines()[0],
                               hint="lower --batch-size (e.g. 1) or --work-size (e.g. 360), "
                                    "or use --device cpu") from exc
    except MemoryError as exc:
        raise OutOfMemoryError("out of host memory",
                               hint="lower --batch-size or --work-size") from exc
    finally:
        bar.close()
    stats.seconds = time.perf_counter() - t0
    stats.peak_memory_mb = peak_memory_mb()
    return stats


def estimate_memory_mb(width: int, height: int, work: tuple[int, int], batch_size: int,
                       prop_channels: int, guide_channels: int, unet_base: int = 8) -> float:
    """Rough peak memory of a run (MB) for ``--dry-run``: torch itself, a few full-size
    frame buffers per batch item, the network's activations at the working size, and two
    cached key-frames. Independent of the clip's length by construction."""
    full = width * height * 4.0
    small = work[0] * work[1] * 4.0
    activations = small * (2 * guide_channels + 4 * prop_channels + 6 * unet_base + 16)
    frames = full * 3 * 4  # decoded, float, Lab/radiance, output
    keys = 2 * full * (3 + prop_channels)
    return 350.0 + (batch_size * (activations + frames) + keys) / 2**20
