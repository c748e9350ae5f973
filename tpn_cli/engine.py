"""Streaming propagation: read → batch → model → write, in one pass over the frames.

Memory stays flat in the clip's length because nothing is kept per frame:

* frames are decoded one at a time, in order, and written as soon as they are done;
* at most ``batch_size`` (frame, key-frame) pairs wait for the model, or, for colour, the
  frames between two key-frames (at most ``ColourAdapter.AHEAD_FRAMES``), which its
  backward pass needs (:class:`Batching`);
* each key-frame is prepared once (file read, resized, converted; see
  :mod:`tpn_cli.adapters`) and kept in a small cache while the plan still needs it. The
  plan is monotone (a later frame never needs an earlier key than a previous frame), so
  a key is dropped as soon as the current frame's earliest key is past it;
* tasks whose key guidance is the video frame at the key's index (HDR, segment) get it
  from a second, forward-only decoder (:class:`KeyFrameFeed`), because with the
  ``nearest`` and ``blend`` schedules a key is needed before the main pass reaches it.

The prediction itself (alignment, network, blending, output) is
:class:`tpn_cli.propagator.KeyPropagator`'s; this module only feeds it frames and
key-frames in the plan's order and hands its results to the sinks.
"""
from __future__ import annotations

import contextlib
import queue
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np
import torch

from . import timing
from .errors import BadInputError, OutOfMemoryError
from .keyframes import Assignment
from .media.video import Frame

__all__ = ["Batching", "KeyFrameFeed", "RunStats", "Sink", "peak_memory_mb", "stream_from_keys", "work_shape"]


def work_shape(width: int, height: int, short_side: int) -> tuple[int, int]:
    """The working shape (height, width), as an array's shape, of a ``width`` × ``height``
    frame: the short side scaled to ``short_side`` (never up-scaled; 0 = full size), aspect
    ratio kept."""
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


@contextlib.contextmanager
def frame_loop(total: int | None, quiet: bool, gpu_hint: str,
               host_hint: str) -> Iterator[tuple[RunStats, Any]]:
    """The frame loop's frame, shared by the key-frame stream (:func:`run`) and the mask
    chain (:func:`tpn_cli.chain.stream_masks`): yields (stats, progress bar) under inference mode;
    the caller counts frames into both. Maps running out of GPU or host memory to
    :class:`OutOfMemoryError` with the hints that reduce it; times the loop and records
    the peak memory in the stats on the way out."""
    from tqdm import tqdm

    stats = RunStats()
    t0 = time.perf_counter()
    bar = tqdm(total=total, unit="frame", file=sys.stderr, disable=quiet or None,
               dynamic_ncols=True, smoothing=0.1)
    try:
        with torch.inference_mode():
            yield stats, bar
    except torch.OutOfMemoryError as exc:
        raise OutOfMemoryError(f"out of GPU memory ({exc})".splitlines()[0], hint=gpu_hint) from exc
    except MemoryError as exc:
        raise OutOfMemoryError("out of host memory", hint=host_hint) from exc
    finally:
        bar.close()
    stats.seconds = time.perf_counter() - t0
    stats.peak_memory_mb = peak_memory_mb()


def write(sinks: Sequence[Sink], frame: Frame, result: Any) -> None:
    """Hand one frame's result to every sink (timed as 'encode')."""
    with timing.section("encode"):
        for s in sinks:
            s.write(frame, result)


@dataclass
class _Work:
    """One batch on its way through the pipeline: per frame, its prepared prediction."""

    frames: list  # Frame
    preds: list   # tpn_cli.propagator.FramePrediction


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
              depth: int = 1, stop: threading.Event | None = None) -> Iterator:
    """``source`` items through ``stages`` in order; with ``threaded`` each stage (and the
    source) runs in its own thread, joined by queues of ``depth`` items: decoding, the
    model and encoding overlap, order is kept (one thread per stage), memory is bounded.
    Without it, the same functions run one after the other in the caller's thread.
    ``stop`` is set when the pipeline ends early (a stage that waits polls it)."""
    if not threaded:
        for item in source:
            for _, fn in stages:
                item = fn(item)
            yield item
        return
    stop = stop or threading.Event()
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


class Batching:
    """Where the frame loop closes a batch of frames: once it holds ``batch_size`` (frame,
    key-frame) pairs (a blended frame costs two model items); or, for an adapter with a
    backward pass (``ahead`` > 0, :meth:`tpn_cli.propagator.KeyPropagator.chain`),
    before each key-frame and after ``ahead`` frames, so that a batch holds the frames
    between two key-frames. Feed it the plan in order; :meth:`starts` says whether an
    assignment opens a new batch."""

    def __init__(self, batch_size: int, ahead: int = 0) -> None:
        self.batch_size, self.ahead = max(1, int(batch_size)), ahead
        self._count = 0  # pairs (or, looking ahead, frames) in the open batch

    def starts(self, a: Assignment) -> bool:
        if self.ahead:
            new = self._count == 0 or self._count >= self.ahead or a.is_key
            self._count = 1 if new else self._count + 1
            return new
        new = self._count == 0
        self._count += len(a.sources)
        if self._count >= self.batch_size:
            self._count = 0
        return new


def stream_from_keys(*, frames: Iterable[Frame], assignments: Iterable[Assignment], propagator: Any,
        load_key: Callable[[int], np.ndarray], sinks: Sequence[Sink], batch_size: int = 4,
        key_feed: KeyFrameFeed | None = None, total: int | None = None, quiet: bool = False,
        pipeline: bool = True) -> RunStats:
    """Propagate key-frame properties through ``frames`` and hand each result to ``sinks``.

    Args:
        frames: decoded frames in order (a reader's ``frames(start, end)``).
        assignments: the plan for the same frames (:func:`tpn_cli.keyframes.iter_plan`).
        propagator: a :class:`tpn_cli.propagator.KeyPropagator` (the task's adapter and
            model); its keys are set here, as the plan needs them.
        load_key: key index → key property image (colour image, radiance or id map),
            already checked and at the video's size.
        sinks: objects with ``write(frame, result)``; written in frame order.
        batch_size: (frame, key) pairs per model call.
        key_feed: video frames at key indices (tasks whose key guidance is the video).
        total: frame count for the progress bar.
        quiet: no progress bar.
        pipeline: overlap decoding, preparation (conversions, key-frames, flow), the model,
            output (:meth:`tpn_cli.propagator.KeyPropagator.chain`, then two frames at a time)
            and encoding in a small thread pipeline; False runs the same steps one after the
            other (identical results).

    Raises:
        BadInputError: plan and frames disagree. OutOfMemoryError: host or GPU memory
            exhausted (with the options that reduce it). KeyboardInterrupt passes through
            (callers abort their outputs).
    """
    prop = propagator
    batch_size = max(1, int(batch_size))
    stats = RunStats()  # replaced by the frame loop's; set_key counts into it

    def set_key(k: int) -> None:
        if k not in prop.keys:
            with timing.section("keys"):
                video = key_feed.get(k) if prop.adapter.needs_key_video_frame else None
                prop.set_key(k, load_key(k), video)
            stats.keys_prepared += 1

    def batches() -> Iterator[list]:
        pending: list = []
        plan_it = iter(assignments)
        batching: Batching | None = None
        for frame in timing.timed(frames, "decode"):
            a = next(plan_it, None)
            if a is None or a.frame != frame.index:
                raise BadInputError(f"frame {frame.index} has no plan entry "
                                    f"(got {a.frame if a else 'none'})", frame=frame.index,
                                    hint="the frame count changed while reading; re-encode the input")
            if batching is None:
                batching = Batching(batch_size, prop.ahead_frames(*frame.image.shape[:2]))
            if batching.starts(a) and pending:
                yield pending
                pending = []
            pending.append((frame, a))
        if pending:
            yield pending

    # with a backward pass a batch holds the frames between two keys with their flows and
    # blends, made in the background from the prepare stage: at most two such batches at a
    # time (the one being output and the next), or a third would be made only to wait
    looks_ahead = prop.ahead_frames(1, 1) > 0  # whatever the frame size
    slots = threading.Semaphore(2) if looks_ahead and prop.model is None else None
    stop = threading.Event()

    def prepare_batch(batch: list) -> _Work | None:
        while slots is not None and not slots.acquire(timeout=0.1):
            if stop.is_set():
                return None
        work = _Work([], [])
        for frame, a in batch:
            for k, _ in a.sources:
                set_key(k)
            work.frames.append(frame)
            work.preds.append(prop.prepare_frame(frame.index, frame.image, a.sources))
        # the plan is monotone: keys before the last frame's earliest key are done
        prop.forget_keys_before(min(k for k, _ in batch[-1][1].sources))
        return work if prop.model is not None else infer_batch(work)  # no network: views as they are

    def infer_batch(work: _Work) -> _Work:
        views = [view for pred in work.preds for view in pred.views]
        for i in range(0, len(views), batch_size):
            prop.correct(views[i:i + batch_size])
        return work

    def output_one(pred: Any) -> Any:
        with timing.section("colour"):
            return prop.output(pred)

    def output(work: _Work) -> list:
        # what one frame passes to the next (KeyPropagator.chain) first; then the frames
        # are output independently: two at a time when pipelined
        with timing.section("colour"):
            prop.chain(work.preds)
        results = list(pool.map(output_one, work.preds)) if pool else [output_one(p) for p in work.preds]
        if slots is not None:
            slots.release()
        return list(zip(work.frames, results))

    def encode(results: list) -> int:
        for frame, result in results:
            write(sinks, frame, result)
        return len(results)

    # few stages: each holds a batch, and a colour batch (the frames between two keys, with
    # their flows) is large; without a network there is no model stage; encoding is a
    # stage of its own (it overlaps the output of the next batch)
    stages = [("prepare", prepare_batch), *([("model", infer_batch)] if prop.model is not None else []),
              ("output", output), ("encode", encode)]
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="tpn-output") if pipeline else None
    try:
        with frame_loop(total, quiet, host_hint="lower --batch-size or --work-size",
                        gpu_hint="lower --batch-size (e.g. 1) or --work-size (e.g. 360), "
                                 "or use --device cpu") as (stats, bar):
            for done in _pipeline(batches(), stages, threaded=pipeline, stop=stop):
                stats.frames += done
                bar.update(done)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return stats


def estimate_memory_mb(width: int, height: int, work: tuple[int, int], batch_size: int,
                       prop_channels: int, guide_channels: int, unet_base: int = 8,
                       ahead_frames: int = 0) -> float:
    """Rough peak memory of a run (MB) for ``--dry-run``: torch itself, a few full-size
    frame buffers per batch item, the network's activations at the working size, two
    cached key-frames, and with a backward pass (``ahead_frames``, :class:`Batching`) the
    frames it holds (image, L, flows and blends: ~40 bytes a pixel prepared, ~50 once
    chained, two batches at a time: being prepared, being output; with the allocator's
    slack ~100 bytes a pixel in all). Independent of the clip's length by construction."""
    full = width * height * 4.0
    small = work[0] * work[1] * 4.0
    activations = small * (2 * guide_channels + 4 * prop_channels + 6 * unet_base + 16)
    frames = full * 3 * 4  # decoded, float, Lab/radiance, output
    keys = 2 * full * (3 + prop_channels)
    ahead = ahead_frames * full * 25
    return 350.0 + (batch_size * (activations + frames) + keys + ahead) / 2**20
