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

Key-frames with partial colour (an adapter's key with ``extra["alpha"]``, see
:class:`tpn_cli.adapters.ColourAdapter`): the alpha moves into the frame with the same
alignment flow as the key (computed for it when the model does not align), several keys
are blended by (blend weight × propagated alpha) (:func:`tpn_cli.models.infer.paint_weights`),
and the adapter's ``finish`` gets the paint's ``coverage`` of the frame.
"""
from __future__ import annotations

import queue
import resource
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np
import torch

from . import timing
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
    """Peak resident memory of this process (MB), plus the CUDA allocator's peak.

    On Linux this is VmHWM of /proc/self/status: the peak of this program's own memory.
    (``ru_maxrss`` keeps the peak of the parent process the program was forked from, so
    a run started by a large Python process would report the parent's size.)
    """
    rss = 0.0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    rss = float(line.split()[1]) / 1024.0  # kB
                    break
    except OSError:
        pass
    if rss <= 0:
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


@dataclass
class _Pair:
    """One model item: a key-frame's property and guidance (aligned to the target when the
    model wants it), the target's guidance, the key's cached code (if any)."""

    u: torch.Tensor
    v_key: torch.Tensor
    v_tgt: torch.Tensor
    code: Any = None


@dataclass
class _Work:
    """One batch on its way through the pipeline."""

    frames: list  # (Frame, Assignment, ctx)
    slots: list   # per frame: None (a key-frame: output from the key) or
                  # [(pair index, key, distance weight, blend weight (scalar or per-pixel))]
    own_keys: list  # per frame: its own PreparedKey when it is a key-frame, else None
    coverage: list = field(default_factory=list)  # per frame: the keys' paint coverage,
                                                  # None when every key is fully painted
    pairs: list = field(default_factory=list)
    outs: list = field(default_factory=list)


_DONE = object()


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _stage_thread(name: str, source: Callable[[], Any], fn: Callable[[Any], Any] | None,
                  out: "queue.Queue", stop: threading.Event) -> threading.Thread:
    """A worker that takes items from ``source`` (a blocking get returning _DONE at the
    end), applies ``fn`` and puts the result on ``out``; an exception travels downstream
    as _Failed and ends the stage."""

    def put(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def body() -> None:
        with torch.inference_mode():
            try:
                while not stop.is_set():
                    item = source()
                    if item is _DONE or isinstance(item, _Failed):
                        put(item)
                        return
                    if not put(fn(item) if fn is not None else item):
                        return
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                put(_Failed(exc))

    t = threading.Thread(target=body, name=f"tpn-{name}", daemon=True)
    t.start()
    return t


def _pipeline(source: Iterator, stages: Sequence[tuple[str, Callable]], threaded: bool,
              depth: int = 1) -> Iterator:
    """``source`` items through ``stages`` in order; with ``threaded`` each stage (and the
    source) runs in its own thread, joined by queues of ``depth`` items: decoding, the
    model and encoding overlap, order is kept (one thread per stage), memory is bounded.
    Without it, the same functions run one after the other in the caller's thread."""
    if not threaded:
        for item in source:
            for _, fn in stages:
                item = fn(item)
            yield item
        return
    stop = threading.Event()
    it = iter(source)

    def first():
        return next(it, _DONE)

    def getter(q: queue.Queue) -> Callable[[], Any]:
        def get():
            while not stop.is_set():
                try:
                    return q.get(timeout=0.1)
                except queue.Empty:
                    continue
            return _DONE
        return get

    threads, get = [], first
    queues = []
    for name, fn in [("decode", None), *stages]:
        q: queue.Queue = queue.Queue(maxsize=depth)
        threads.append(_stage_thread(name, get, fn, q, stop))
        queues.append(q)
        get = getter(q)
    last = queues[-1]
    try:
        while True:
            try:
                item = last.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        for q in queues:  # unblock producers
            while True:
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
        for t in threads:
            t.join()


def run(*, frames: Iterable[Frame], assignments: Iterable[Assignment], adapter: Any,
        load_key: Callable[[int], np.ndarray], model: torch.nn.Module, sinks: Sequence[Sink],
        batch_size: int = 4, key_feed: KeyFrameFeed | None = None, total: int | None = None,
        quiet: bool = False, predict: Callable | None = None, pipeline: bool = True) -> RunStats:
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
        predict: ``predict(model, u_key, v_key, v_tgt)``; default: the model itself, fed
            key-frames flow-aligned (:mod:`tpn_cli.models.infer`) when it wants them.
        pipeline: overlap decoding, preparation (conversions, key-frames, flow), the model
            and output (conversion, encoding) in a small thread pipeline; False runs the
            same steps one after the other (identical results).

    Raises:
        BadInputError: plan and frames disagree. OutOfMemoryError: host or GPU memory
            exhausted (with the options that reduce it). KeyboardInterrupt passes through
            (callers abort their outputs).
    """
    from tqdm import tqdm

    from .models import infer

    custom = predict is not None
    align = not custom and model is not None and infer.wants_alignment(model)
    # the key-frame's encoded property is reused for every frame it feeds (not possible
    # when the key is warped to each frame first)
    key_codes = not custom and not align and hasattr(model, "encode_key")
    with_ctx = getattr(adapter, "uses_context", False)
    with_sources = getattr(adapter, "uses_sources", False)  # finish() wants the keys behind u
    batch_size = max(1, int(batch_size))
    stats = RunStats()
    cache: dict[int, Any] = {}

    def key(k: int):
        if k not in cache:
            with timing.section("keys"):
                video = key_feed.get(k) if adapter.needs_key_video_frame else None
                pk = adapter.prepare_key(k, load_key(k), video)
                if align or "alpha" in pk.extra:
                    pk.extra["gray"] = infer.guide_to_gray(pk.v)
                if key_codes:
                    with timing.section("network"):
                        h, dec = model.encode_key(pk.u[None])
                    pk.extra["code"] = (h, dec)
            cache[k] = pk
            stats.keys_prepared += 1
        return cache[k]

    def batches() -> Iterator[list]:
        pending: list = []
        plan_it = iter(assignments)
        for frame in timing.timed(frames, "decode"):
            a = next(plan_it, None)
            if a is None or a.frame != frame.index:
                raise BadInputError(f"frame {frame.index} has no plan entry "
                                    f"(got {a.frame if a else 'none'})", frame=frame.index,
                                    hint="the frame count changed while reading; re-encode the input")
            pending.append((frame, a, {}))
            # count pairs, not frames: a blended frame costs two model items
            if sum(len(x.sources) for _, x, _ in pending) >= batch_size:
                yield pending
                pending = []
        if pending:
            yield pending

    def move(pk, v: torch.Tensor, gray: np.ndarray):
        """Key ``pk``'s property, guidance and alpha (None: fully painted) as the model
        sees them for a frame of guidance ``v``: flow-aligned to it when the model wants
        it; the alpha always follows the alignment flow (in the same warp call)."""
        alpha = pk.extra.get("alpha")
        if not align and alpha is None:
            return pk.u, pk.v, None
        if not align:  # the model takes the key where it is; only its alpha moves
            with timing.section("flow"):
                moved, _ = infer.align_key(alpha, pk.v, v, key_gray=pk.extra["gray"], tgt_gray=gray)
            return pk.u, pk.v, moved
        c = pk.u.shape[0]
        u_in = pk.u if alpha is None else torch.cat([pk.u, alpha])
        with timing.section("flow"):
            u, vk = infer.align_key(u_in, pk.v, v, key_gray=pk.extra["gray"], tgt_gray=gray)
        return u[:c], vk, (u[c:] if alpha is not None else None)

    def prepare(batch: list) -> _Work:
        work = _Work(batch, [], [])
        for frame, a, ctx in batch:
            if a.sources[0][0] == frame.index and len(a.sources) == 1:
                work.slots.append(None)
                work.own_keys.append(key(frame.index))
                work.coverage.append(None)
                continue
            with timing.section("colour"):
                v = adapter.guide(frame.image, ctx=ctx) if with_ctx else adapter.guide(frame.image)
            gray = None  # the frame's gray image, for the flow that moves keys or their alpha
            if align or any("alpha" in key(k).extra for k, _ in a.sources):
                with timing.section("flow"):
                    gray = infer.guide_to_gray(v)
            mine, alphas = [], []
            for k, w in a.sources:
                pk = key(k)
                u, vk, alpha = move(pk, v, gray)
                mine.append((len(work.pairs), pk, w))
                alphas.append(alpha)
                work.pairs.append(_Pair(u, vk, v, pk.extra.get("code")))
            maps = [w for _, _, w in mine]
            if align and len(mine) > 1:  # blend: per-pixel weights from each key's aligned fit
                with timing.section("flow"):
                    maps = infer.blend_weights(maps, [work.pairs[i].v_key for i, _, _ in mine], v)
            partial = any(al is not None for al in alphas)
            if partial and len(mine) > 1:  # each key counts where its paint landed
                maps = infer.paint_weights(maps, alphas)
            mine = [(i, pk, w, m) for (i, pk, w), m in zip(mine, maps)]
            work.slots.append(mine)
            work.own_keys.append(None)
            work.coverage.append(infer.paint_coverage(alphas) if partial else None)
        # the plan is monotone: keys before the last frame's earliest key are done
        low = min(k for k, _ in batch[-1][1].sources)
        for k in [k for k in cache if k < low]:
            del cache[k]
        return work

    def infer_batch(work: _Work) -> _Work:
        pairs = work.pairs
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            u = torch.stack([p.u for p in chunk])
            vk = torch.stack([p.v_key for p in chunk])
            vt = torch.stack([p.v_tgt for p in chunk])
            with timing.section("network"):
                if custom:
                    out = predict(model, u, vk, vt)
                elif key_codes:
                    h = torch.cat([p.code[0] for p in chunk])
                    dec = None if chunk[0].code[1] is None else torch.cat([p.code[1] for p in chunk])
                    out = infer.hold_back(model, u, model(u, vk, vt, key_code=(h, dec)), vk, vt)
                else:
                    out = infer.hold_back(model, u, model(u, vk, vt), vk, vt)
            work.outs.extend(out.unbind(0))
        work.pairs = []  # the inputs are not needed any more
        return work

    def output(work: _Work) -> int:
        for (frame, a, ctx), mine, own, cover in zip(work.frames, work.slots, work.own_keys,
                                                     work.coverage):
            with timing.section("colour"):
                kw = {"ctx": ctx} if with_ctx else {}
                if cover is not None:
                    kw["coverage"] = cover
                if mine is None:
                    result = adapter.finish(frame.image, None, own, **kw)
                else:
                    u = infer.blend([(work.outs[i], m) for i, _, _, m in mine])
                    if with_sources:
                        kw["sources"] = [(pk, w) for _, pk, w, _ in mine]
                    result = adapter.finish(frame.image, u, None, **kw)
            with timing.section("encode"):
                for s in sinks:
                    s.write(frame, result)
        return len(work.frames)

    t0 = time.perf_counter()
    bar = tqdm(total=total, unit="frame", file=sys.stderr, disable=quiet or None,
               dynamic_ncols=True, smoothing=0.1)
    try:
        stages = [("prepare", prepare), ("model", infer_batch), ("output", output)]
        with torch.inference_mode():
            for done in _pipeline(batches(), stages, threaded=pipeline):
                stats.frames += done
                bar.update(done)
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
