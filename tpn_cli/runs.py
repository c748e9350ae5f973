"""One `tpn colorize | hdr | segment` run: check everything, plan, then stream.

:func:`check_and_plan` does every check that can fail *before* the model runs (input readable,
key-frames found, indices in range, sizes and content, outputs writable, weights
present) and returns a :class:`Run`; :meth:`Run.describe` is the ``--dry-run`` report;
:meth:`Run.execute` streams with the output sinks. What differs between tasks is the
task object's (:mod:`tpn_cli.tasks`): its key-frames and checks, adapter, sinks and
stream (colour, HDR: every frame from its key-frames, :func:`tpn_cli.engine.stream_from_keys`; masks:
frame to frame, :func:`tpn_cli.chain.stream_masks`).
"""
from __future__ import annotations

import bisect
import contextlib
import math
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from . import __version__, engine, keyframes, outputs, shots, timing, weights
from .errors import BadInputError, UsageError
from .media import VideoReader, open_input, output_kind
from .media.frames import frame_number
from .tasks import TASKS, Task

TaskName = str  # a key of tpn_cli.tasks.TASKS (a new task is a new entry there, not a new type)


@dataclass
class Options:
    """Everything the user chose (the CLI fills it; defaults are the CLI's)."""

    task: TaskName
    input: Path
    keys: Path                      # key-frame folder/file, HDR key folder, or first mask
    output: Path | None = None
    masks: Path | None = None       # segment: more masks (objects appearing later)
    mode: str = "nearest"
    device: str = "auto"
    batch_size: int = 4
    work_size: int | None = None    # network's short side (None: the task's adapter default)
    weights: str | None = None
    start: int | str = 0            # a frame index, or a time ("5s", "1:02.5") until check_and_plan()
    end: int | str | None = None
    index_base: int = 0
    overwrite: bool = False
    quiet: bool = False
    snap_check: bool = True
    chroma_upsample: str = "guided"  # colour: how working-size ab reaches full size
    crf: int | None = None
    preset: str | None = None
    codec: str | None = None
    no_audio: bool = False
    transfer: str = "pq"
    paper_white: float = 203.0
    sdr_preview: Path | None = None
    mask_format: str = "palette"
    void: int | None = None         # segment: a "don't care" id (DAVIS: 255)
    overlay: Path | None = None
    tpn: bool | None = None         # segment: refine the chain with the TPN (None: --weights
                                    # given, else chain.USE_TPN: the measured better);
                                    # hdr: each aligned key through the TPN (None: --weights given)
    fps: Fraction | None = None     # frame rate of a frame-folder input (default 25)
    threads: int = 0                # torch threads per operation (0 = auto, see execute)
    precision: str = "fp32"         # guidance network: fp32, bf16 (measured in BENCHMARKS.md)
    pipeline: bool = True           # overlap decode / model / encode in threads
    shot_detect: bool = True        # colour, HDR: keep key-frames within their shot
    cut_threshold: float = shots.DEFAULT_THRESHOLD
    allow_short_input: bool = False  # a video that decodes fewer frames than it declares:
                                     # process those (warning) instead of refusing it


def default_output(task: TaskName, input_path: Path) -> Path:
    """``movie.mp4`` → ``movie_color.mp4``; a folder → ``clip_color/``; HDR → an EXR
    folder ``movie_hdr/``; segment → a mask folder ``clip_masks/``."""
    return TASKS[task]().default_output(input_path)


def parse_position(text: str | int | None) -> int | float | None:
    """``--start/--end`` values: ``120`` is a frame index (int); ``5s``, ``2.5s``,
    ``1:05``, ``00:01:05.250`` are times in seconds from the first frame (float)."""
    if text is None or isinstance(text, int):
        return text
    t = str(text).strip()
    try:
        if t.isdigit():
            return int(t)
        if t.endswith("s") and ":" not in t:
            return float(t[:-1])
        if ":" in t:
            seconds = 0.0
            for part in t.split(":"):
                seconds = seconds * 60 + float(part)
            return seconds
    except ValueError:
        pass
    raise UsageError(f"cannot read {text!r} as a frame or a time",
                     hint="use a frame index (120) or a time (5s, 2.5s, 1:05, 00:01:05.250)")


def frame_at_time(reader: Any, seconds: float) -> int:
    """Index of the first frame shown at or after ``seconds`` from the first frame, from
    the real timestamps (VFR-safe); reads packets only, decodes nothing."""
    if not isinstance(reader, VideoReader):
        return int(math.ceil(seconds * float(reader.fps) - 1e-9))
    with av.open(str(reader.path)) as c:
        s = c.streams.video[0]
        times = sorted(float(p.pts * s.time_base) for p in c.demux(s) if p.pts is not None and p.size)
    if not times:
        return 0
    rel = [t - times[0] for t in times]
    return bisect.bisect_left(rel, seconds - 1e-6)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda asked for, but torch sees no CUDA device",
                         hint="use --device cpu (or auto); `tpn doctor` shows what torch sees")
    return torch.device(name)


def _work_short_side(opts: Options) -> int:
    """--work-size, or the task's measured default (``Task.default_work_size``)."""
    return opts.work_size if opts.work_size is not None else TASKS[opts.task].default_work_size


@dataclass
class Run:
    """A checked, planned run (see module doc)."""

    opts: Options
    task: Task                      # this run's task object (holds the task's state)
    reader: Any
    frame_count: int
    keys: list[keyframes.KeyFrame]
    output: Path
    kind: str
    device: torch.device
    work: tuple[int, int]
    weights_path: Path | None
    weights_error: str | None
    notes: list[str] = field(default_factory=list)
    end: int = 0
    uses_model: bool = True         # False: no TPN (a segment chain without it; `tpn hdr` by default)
    cuts: list[int] = field(default_factory=list)      # frames that start a new shot
    warnings: list[str] = field(default_factory=list)  # shown before the run and in --json
    short_input: dict[str, int] | None = None  # {"declared", "decoded"} (--allow-short-input)

    # -- plan -----------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self.task.mode(self.opts)

    def assignments(self):
        return keyframes.iter_plan(self.frame_count, [k.index for k in self.keys], self.mode,
                                   self.opts.start, self.end, self.cuts)

    def keyless_shots(self) -> list[shots.Shot]:
        """The shots of the processed frames that have no key-frame of their own."""
        processed = [s for s in shots.shots_of(self.cuts, 0, self.frame_count)
                     if s.end > self.opts.start and s.start < self.end]
        return shots.keyless_shots(processed, [k.index for k in self.keys])

    def _shots_json(self) -> dict[str, Any]:
        return {"shot_detect": self.opts.shot_detect and self.task.uses_shots,
                "cuts": [c for c in self.cuts if self.opts.start < c < self.end],
                "shots_without_key": [[s.start, s.last] for s in self.keyless_shots()]}

    def describe(self) -> dict[str, Any]:
        """The plan as a JSON-ready dict (``--dry-run``)."""
        r = self.reader
        prop, guide = self.task.channels(self)
        batch = self.task.batch_size(self.opts)
        est = engine.estimate_memory_mb(r.width, r.height, self.work, batch, prop, guide,
                                        ahead_frames=self.task.ahead_frames(self))
        return {
            "command": self.task.command,
            "input": str(self.opts.input), "frames": self.end - self.opts.start,
            "frame_range": [self.opts.start, self.end - 1], "video_frames": self.frame_count,
            "size": [r.width, r.height], "video_fps": float(r.fps),
            "keyframes": [{"index": k.index, "file": str(k.path)} for k in self.keys],
            "mode": self.mode, "plan": self.task.plan_lines(self), "propagation": self.task.propagation(self),
            "work_size": [self.work[1], self.work[0]], "device": str(self.device),
            "batch_size": batch, "estimated_memory_mb": round(est),
            "output": str(self.output), "output_kind": self.kind,
            "weights": str(self.weights_path) if self.weights_path else None,
            "weights_error": self.weights_error, "uses_model": self.uses_model, "notes": self.notes,
            "warnings": self.warnings, "short_input": self.short_input, **self._shots_json(),
        }

    # -- run ------------------------------------------------------------------------------
    def load_key(self, index: int) -> np.ndarray:
        """The property image of key ``index`` at the video's size (checked in check_and_plan)."""
        return self.task.load_key(self, index)

    @property
    def full_range(self) -> bool:
        """Every frame of the input is processed: outputs share its timeline, so audio,
        subtitles, chapters and the timecode still line up."""
        return self.opts.start == 0 and self.end == self.frame_count

    def _sinks(self, stack: contextlib.ExitStack) -> list:
        o, r = self.opts, self.reader
        full = self.full_range
        dropped = [what for what, has in (
            ("audio/subtitles", (getattr(r, "has_audio", False) or getattr(r, "has_subtitles", False))
             and not o.no_audio),
            ("chapters", bool(getattr(r, "chapters", None))),
            ("the timecode", "timecode" in {k.lower() for k in getattr(r, "stream_metadata", {})}))
            if has]
        if not full and dropped:
            self.notes.append(f"a frame range was given: {', '.join(dropped)} not carried "
                              "(they would not line up)")
        sinks = self.task.sinks(self, copy_streams=full and not o.no_audio)
        for s in sinks:
            stack.enter_context(s)
        return sinks

    def execute(self) -> dict[str, Any]:
        """Stream the run; returns the ``--json`` summary. Outputs appear only when complete."""
        o = self.opts
        timing.enable_from_env()
        model = None
        if self.uses_model:
            if self.weights_path is None:
                weights.resolve(o.weights, o.task)  # raises the helpful exit-4 error
            model, _ = weights.load(o.weights, o.task, device=str(self.device))
            model.for_inference(channels_last=True, precision=o.precision)
        if self.device.type == "cpu":
            # the pipeline's stages already run side by side; one thread per operation
            # avoids OpenMP barriers that stall on a busy machine (docs/BENCHMARKS.md)
            # (the segment chain goes frame to frame, one step after another: torch's default)
            pipelined = self.task.pipelined(o)
            torch.set_num_threads(o.threads or (1 if pipelined else torch.get_num_threads()))
        t0 = time.perf_counter()  # wall time includes closing: HDR10's second pass, renames
        adapter = self.task.adapter(self, model)  # HDR: fits the camera response first
        with contextlib.ExitStack() as stack:
            sinks = self._sinks(stack)
            stats = self.task.stream(self, adapter, model, sinks)
            with timing.section("encode"):  # closing: flushing the encoders, HDR10's second pass
                stack.close()
        timing.write_report()
        warnings = self.warnings + [w for s in sinks for w in s.warnings]
        seconds = time.perf_counter() - t0
        from .ops import backend
        return {
            "tpn": __version__, "command": self.task.command, "input": str(o.input),
            "output": str(self.output), "extra_outputs": [str(p) for p in (o.sdr_preview, o.overlay) if p],
            "frames": stats.frames, "seconds": round(seconds, 3),
            "fps": round(stats.frames / seconds, 2) if seconds > 0 else 0.0,
            "video_fps": float(self.reader.fps), "size": [self.reader.width, self.reader.height],
            "work_size": [self.work[1], self.work[0]], "device": str(self.device),
            "backend": backend(), "batch_size": self.task.batch_size(o), "mode": self.mode,
            "keyframes": len(self.keys), "propagation": self.task.propagation(self),
            "weights": str(self.weights_path) if self.uses_model else None,
            "peak_memory_mb": round(stats.peak_memory_mb, 1), "notes": self.notes,
            "warnings": warnings, "short_input": self.short_input, **self._shots_json(),
        }


# ----------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------
def _check_outputs(task: Task, opts: Options, output: Path, kind: str, reader: Any, frames: int) -> None:
    """Every output decided and checked before any work: its kind fits the task, then
    :func:`tpn_cli.outputs.check_before_run` (paths, collisions, encoders, free space)."""
    task.check_output_kind(opts, output, kind)
    weights_file = Path(opts.weights) if opts.weights and Path(opts.weights).exists() else None
    outputs.check_before_run(
        task, output, kind, {"--sdr-preview": opts.sdr_preview, "--overlay": opts.overlay},
        {"input": opts.input, "key-frames": opts.keys, "--masks": opts.masks, "--weights": weights_file},
        overwrite=opts.overwrite, codec=opts.codec, size=reader.size, frames=frames)


#: Shots without a key-frame warned about one by one; the rest in one line.
MAX_SHOT_WARNINGS = 5


def _find_cuts(run: Run) -> None:
    """The shot-detection pre-pass: luminance thumbnails of the frames from the first
    processed frame or key-frame to the last, then a warning per shot without a key."""
    from tqdm import tqdm

    o = run.opts
    first = min(o.start, min(k.index for k in run.keys))
    last = max(run.end, max(k.index for k in run.keys) + 1)
    thumbs = run.reader.thumbnails(*shots.THUMB_SIZE, start=first, end=last)
    bar = tqdm(thumbs, total=last - first, desc="finding cuts", unit="frame", file=sys.stderr,
               disable=o.quiet or None, leave=False, dynamic_ncols=True)
    run.cuts = shots.find_cuts(bar, o.cut_threshold)
    keys = [k.index for k in run.keys]
    noun = run.task.noun
    keyless = run.keyless_shots()
    for shot in keyless[:MAX_SHOT_WARNINGS]:
        key = keyframes.fallback_key(keys, shot.start, shot.end, run.mode)
        cut = shot.start if shot.start in run.cuts else shot.end
        # a frame folder's key-frames are named by the frames' own numbers: say those
        first_n, last_n = (outputs.frame_name_number(run.reader, i) for i in (shot.start, shot.last))
        names = (f" (files numbered {first_n}-{last_n})"
                 if (first_n, last_n) != (shot.start, shot.last) else "")
        run.warnings.append(
            f"shot {shot}{names} has no key-frame: it takes key {key} from across the cut at "
            f"frame {cut}, so its {noun} likely belongs to another scene; add a key-frame in "
            f"{shot} (`tpn suggest-keyframes` proposes frames), or pass --no-shot-detect if "
            f"frame {cut} is not a cut")
    if len(keyless) > MAX_SHOT_WARNINGS:  # a montage or a whole reel: say it once
        more = keyless[MAX_SHOT_WARNINGS:]
        run.warnings.append(
            f"{len(more)} more {'shot has' if len(more) == 1 else 'shots have'} no key-frame ({', '.join(str(s) for s in more[:5])}"
            f"{' ...' if len(more) > 5 else ''}); --dry-run --json lists them all under "
            "shots_without_key")


def _match_folder_numbers(keys: list[keyframes.KeyFrame], reader: Any) -> list[keyframes.KeyFrame]:
    """For a frame-folder input, a key-frame named N belongs to the frame *named* N (its
    position in the folder may differ, e.g. folders numbered from 1), so outputs fed back
    as key-frames or masks land on the same frames."""
    position = {n: i for i, n in enumerate(reader.numbers)}
    out = []
    for k in keys:
        if frame_number(k.path.name) is None:  # a lone mask without a number: the first frame
            out.append(keyframes.KeyFrame(index=0, path=k.path, number=reader.numbers[0]))
            continue
        if k.number not in position:
            raise BadInputError(f"no frame numbered {k.number} in the input folder {reader.path}",
                                path=k.path, hint=f"its frames are numbered {reader.numbers[0]}.."
                                                  f"{reader.numbers[-1]}; rename the key-frame",
                                code="KEYFRAME_OUT_OF_RANGE")
        out.append(keyframes.KeyFrame(index=position[k.number], path=k.path, number=k.number))
    return out


def _find_keys(task: Task, opts: Options, frame_count: int, reader: Any = None) -> list[keyframes.KeyFrame]:
    keys = task.find_keys(opts)
    if getattr(reader, "numbers", None) is not None:
        keys = _match_folder_numbers(keys, reader)
    keyframes.check_indices(keys, frame_count, source=opts.input, index_base=opts.index_base)
    return keys


def check_and_plan(opts: Options) -> Run:
    """Check inputs, outputs and weights; build the plan (no model is run).

    Raises:
        TpnError subclasses with the documented exit codes (see :mod:`tpn_cli.errors`).
    """
    if opts.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if opts.mode not in keyframes.MODES:
        raise UsageError(f"unknown --mode {opts.mode!r}", hint="use online, nearest or blend")
    # display orientation: key-frames and masks are painted on frames as players show them
    task = TASKS[opts.task]()
    reader = open_input(opts.input, autorotate=True, fps=opts.fps,
                        allow_short=opts.allow_short_input)
    short = None
    if opts.allow_short_input and isinstance(reader, VideoReader) and reader.frames_metadata:
        declared, decoded = reader.frames_metadata, reader.count_frames()  # decodes it once
        if decoded < declared:
            short = {"declared": declared, "decoded": decoded}
    task.check_input(reader, opts)
    frame_count = reader.frame_count
    for name in ("start", "end"):  # times become frame indices, from the real timestamps
        pos = parse_position(getattr(opts, name))
        setattr(opts, name, frame_at_time(reader, pos) if isinstance(pos, float) else pos)
    end = frame_count if opts.end is None else min(opts.end, frame_count)
    if opts.start < 0 or opts.start >= end:
        raise UsageError(f"empty frame range --start {opts.start} --end {opts.end}",
                         path=opts.input, hint=f"the input has {frame_count} frames (0-based)")
    keys = _find_keys(task, opts, frame_count, reader)
    output = opts.output or default_output(opts.task, opts.input)
    kind = output_kind(output)
    _check_outputs(task, opts, output, kind, reader, end - opts.start)
    device = pick_device(opts.device)
    uses_model = task.uses_model(opts)
    wpath, werr = None, None
    try:
        if uses_model:
            wpath = weights.resolve(opts.weights, opts.task)
    except weights.WeightsUnavailableError as exc:
        werr = str(exc)
    run = Run(opts=opts, task=task, reader=reader, frame_count=frame_count, keys=keys, output=output,
              kind=kind, device=device, work=engine.work_shape(reader.width, reader.height, _work_short_side(opts)),
              weights_path=wpath, weights_error=werr, end=end, uses_model=uses_model)
    hint = keyframes.index_base_hint(keys, frame_count, opts.index_base)
    if hint:
        run.notes.append(hint)
    if getattr(reader, "colour_note", None):
        run.notes.append(reader.colour_note)
    if getattr(reader, "colour_warning", None):
        run.warnings.append(reader.colour_warning)
    if short:
        run.short_input = short
        run.warnings.append(f"{opts.input} declares {short['declared']} frames but only "
                            f"{short['decoded']} decode (--allow-short-input): processing those")
    if task.uses_shots and opts.shot_detect:
        _find_cuts(run)
    task.check_keys(run)
    return run
