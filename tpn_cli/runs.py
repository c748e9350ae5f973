"""One `tpn colorize | hdr | segment` run: check everything, plan, then stream.

:func:`prepare` does every check that can fail *before* the model runs (input readable,
key-frames found, indices in range, sizes and content, outputs writable, weights
present) and returns a :class:`Run`; :meth:`Run.describe` is the ``--dry-run`` report;
:meth:`Run.execute` streams through :func:`tpn_cli.engine.run` (colour, HDR: every frame
from its key-frame) or :func:`tpn_cli.chain.run` (masks: frame to frame) with the output
sinks.
"""
from __future__ import annotations

import bisect
import contextlib
import math
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import torch

from . import __version__, camera_response, chain, engine, keyframes, shots, timing, weights
from .adapters import ColourAdapter, HdrAdapter, SegmentAdapter
from .errors import BadInputError, UsageError
from .media import VideoReader, check_output_path, open_input, output_kind, read_image
from .media.frames import frame_number, resize_image
from .media.hdr import HDR_EXTENSIONS, read_hdr_image
from .media.masks import Mask, read_mask
from .models import infer
from .propagator import KeyPropagator
from . import outputs

Task = Literal["colour", "hdr", "segment"]
SUFFIX = {"colour": "_color", "hdr": "_hdr", "segment": "_masks"}
COMMAND = {"colour": "colorize", "hdr": "hdr", "segment": "segment"}


@dataclass
class Options:
    """Everything the user chose (the CLI fills it; defaults are the CLI's)."""

    task: Task
    input: Path
    keys: Path                      # key-frame folder/file, HDR key folder, or first mask
    output: Path | None = None
    masks: Path | None = None       # segment: more masks (objects appearing later)
    mode: str = "nearest"
    device: str = "auto"
    batch_size: int = 4
    work_size: int | None = None    # network's short side (None: the task's adapter default)
    weights: str | None = None
    start: int | str = 0            # a frame index, or a time ("5s", "1:02.5") until prepare()
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
                                    # given, else chain.USE_TPN, on: the measured better)
    threads: int = 0                # torch threads per operation (0 = auto, see execute)
    precision: str = "fp32"         # guidance network: fp32, bf16 (measured in BENCHMARKS.md)
    pipeline: bool = True           # overlap decode / model / encode in threads
    shot_detect: bool = True        # colour, HDR: keep key-frames within their shot
    cut_threshold: float = shots.DEFAULT_THRESHOLD


def default_output(task: Task, input_path: Path) -> Path:
    """``movie.mp4`` → ``movie_color.mp4``; a folder → ``clip_color/``; HDR → an EXR
    folder ``movie_hdr/``; segment → a mask folder ``clip_masks/``."""
    stem = input_path.stem if input_path.is_file() else input_path.name
    suffix = SUFFIX[task]
    if task == "colour" and input_path.is_file():
        return input_path.with_name(stem + suffix + input_path.suffix)
    return input_path.with_name(stem + suffix)


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


ADAPTERS = {"colour": ColourAdapter, "hdr": HdrAdapter, "segment": SegmentAdapter}


def _work_short_side(opts: Options) -> int:
    """--work-size, or the task's measured default (the adapters' ``default_work_size``)."""
    return opts.work_size if opts.work_size is not None else ADAPTERS[opts.task].default_work_size


def _resize_ids(ids: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize of an id map (ids must never be interpolated)."""
    ys = (np.arange(height) * ids.shape[0] / height).astype(np.int64)
    xs = (np.arange(width) * ids.shape[1] / width).astype(np.int64)
    return ids[ys][:, xs]


@dataclass
class Run:
    """A checked, planned run (see module doc)."""

    opts: Options
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
    masks: dict[int, Mask] = field(default_factory=dict)
    end: int = 0
    uses_model: bool = True         # False: a segment chain without the TPN
    cuts: list[int] = field(default_factory=list)      # frames that start a new shot
    partial_keys: set[int] = field(default_factory=set)  # colour keys painted only in parts (RGBA)
    warnings: list[str] = field(default_factory=list)  # shown before the run and in --json

    # -- plan -----------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return "chain" if self.opts.task == "segment" else self.opts.mode

    @property
    def propagation(self) -> str:
        if self.opts.task != "segment":
            return "TPN from the key-frame"
        return ("frame to frame: optical flow, " + ("segment TPN, " if self.uses_model else "")
                + "colour model of the mask frame, its mask by direct flow where consistent")

    def _mask_objects(self) -> dict[int, set[int]]:
        return {i: set(m.object_ids) for i, m in self.masks.items()}

    def _plan_lines(self) -> list[str]:
        if self.opts.task == "segment":
            return chain.describe([k.index for k in self.keys], self.opts.start, self.end,
                                  self._mask_objects())
        return keyframes.describe_plan(self.assignments(), self.mode, self.cuts)

    def assignments(self):
        return keyframes.iter_plan(self.frame_count, [k.index for k in self.keys], self.mode,
                                   self.opts.start, self.end, self.cuts)

    def keyless_shots(self) -> list[shots.Shot]:
        """The shots of the processed frames that have no key-frame of their own."""
        processed = [s for s in shots.shots_of(self.cuts, 0, self.frame_count)
                     if s.end > self.opts.start and s.start < self.end]
        return shots.keyless_shots(processed, [k.index for k in self.keys])

    def _shots_json(self) -> dict[str, Any]:
        return {"shot_detect": self.opts.shot_detect and self.opts.task != "segment",
                "cuts": [c for c in self.cuts if self.opts.start < c < self.end],
                "shots_without_key": [[s.start, s.last] for s in self.keyless_shots()]}

    def _config(self) -> tuple[int, int]:
        """(property channels, guidance channels) of the task, for the memory estimate."""
        if self.opts.task == "colour":
            return 2, 1
        if self.opts.task == "hdr":
            return 3, 3
        objects = len({i for m in self.masks.values() for i in m.object_ids})
        return objects + 1, 3

    def describe(self) -> dict[str, Any]:
        """The plan as a JSON-ready dict (``--dry-run``)."""
        r = self.reader
        prop, guide = self._config()
        batch = 1 if self.opts.task == "segment" else self.opts.batch_size  # the chain: one frame
        est = engine.estimate_memory_mb(r.width, r.height, self.work, batch, prop, guide)
        return {
            "command": COMMAND[self.opts.task],
            "input": str(self.opts.input), "frames": self.end - self.opts.start,
            "frame_range": [self.opts.start, self.end - 1], "video_frames": self.frame_count,
            "size": [r.width, r.height], "video_fps": float(r.fps),
            "keyframes": [{"index": k.index, "file": str(k.path)} for k in self.keys],
            "mode": self.mode, "plan": self._plan_lines(), "propagation": self.propagation,
            "work_size": [self.work[1], self.work[0]], "device": str(self.device),
            "batch_size": batch, "estimated_memory_mb": round(est),
            "output": str(self.output), "output_kind": self.kind,
            "weights": str(self.weights_path) if self.weights_path else None,
            "weights_error": self.weights_error, "uses_model": self.uses_model, "notes": self.notes,
            "warnings": self.warnings, **self._shots_json(),
        }

    # -- keys -----------------------------------------------------------------------------
    def load_key(self, index: int) -> np.ndarray:
        """The property image of key ``index`` at the video's size (checked in prepare)."""
        k = next(k for k in self.keys if k.index == index)
        w, h = self.reader.width, self.reader.height
        if self.opts.task == "segment":
            ids = self.masks[index].ids
            return ids if ids.shape == (h, w) else _resize_ids(ids, w, h)
        if self.opts.task == "hdr":
            img = read_hdr_image(k.path)
        else:  # RGBA when partly painted (alpha = where colour is given)
            img = read_image(k.path, depth=8, keep_alpha=True)
        return resize_image(img, w, h)

    def fit_camera_response(self) -> camera_response.CameraResponse:
        """HDR: the video's inverse camera response, from every key-frame and the video
        frame at its index (read once more, before the run; only per-level sums are kept)."""
        idx = sorted(k.index for k in self.keys)
        feed = engine.KeyFrameFeed(lambda: self.reader.frames(0, idx[-1] + 1))
        with timing.section("keys"):
            response = camera_response.fit((feed.get(i), self.load_key(i)) for i in idx)
        self.notes.append(
            f"camera response fitted to {len(idx)} key-frame(s): log-RMSE on their unclipped "
            f"values {response.key_rmse:.3f} (generic curve {response.generic_key_rmse:.3f})")
        return response

    # -- run ------------------------------------------------------------------------------
    def _adapter(self):
        if self.opts.task == "colour":
            return ColourAdapter(self.work, self.device, self.opts.chroma_upsample,
                                 partial_keys=bool(self.partial_keys))
        if self.opts.task == "hdr":
            return HdrAdapter(self.work, self.device)
        ids = sorted({i for m in self.masks.values() for i in m.object_ids})
        return SegmentAdapter(self.work, "cpu", ids)  # the chain's state and flow are on the CPU

    def _sinks(self, stack: contextlib.ExitStack) -> list:
        o, r = self.opts, self.reader
        full = o.start == 0 and self.end == self.frame_count
        copy = full and not o.no_audio
        if not full and getattr(r, "has_audio", False) and not o.no_audio:
            self.notes.append("a frame range was given: audio/subtitles are not copied "
                              "(they would not line up)")
        sinks = []
        if o.task == "colour":
            if self.kind == "video":
                sinks.append(outputs.VideoSink(r, self.output, overwrite=o.overwrite, copy_streams=copy,
                                               crf=o.crf, preset=o.preset, codec=o.codec))
            else:
                sinks.append(outputs.FramesSink(r, self.output, ext=".png", overwrite=o.overwrite))
        elif o.task == "hdr":
            if self.kind == "video":
                sinks.append(outputs.HdrVideoSink(r, self.output, transfer=o.transfer,
                                                  paper_white=o.paper_white, overwrite=o.overwrite,
                                                  copy_streams=copy))
            else:
                sinks.append(outputs.FramesSink(r, self.output, ext=".exr", overwrite=o.overwrite))
            if o.sdr_preview:
                sinks.append(outputs.SdrPreviewSink(r, o.sdr_preview, overwrite=o.overwrite,
                                                    copy_streams=copy))
        else:
            palette = self.masks[self.keys[0].index].palette
            sinks.append(outputs.MaskFolderSink(r, self.output, palette=palette, fmt=o.mask_format,
                                                overwrite=o.overwrite))
            if o.overlay:
                sinks.append(outputs.OverlaySink(r, o.overlay, palette=palette, overwrite=o.overwrite))
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
            pipelined = o.pipeline and o.task != "segment"
            torch.set_num_threads(o.threads or (1 if pipelined else torch.get_num_threads()))
        adapter = self._adapter()
        if o.task == "colour" and model is not None and infer.wants_alignment(model):
            adapter.flow_mix = ColourAdapter.FLOW_MIX
        t0 = time.perf_counter()  # wall time includes closing: HDR10's second pass, renames
        if o.task == "hdr":
            adapter.response = self.fit_camera_response()
        with contextlib.ExitStack() as stack:
            sinks = self._sinks(stack)
            if o.task == "segment":
                from .models.segment import MaskPropagator

                keys = [k.index for k in self.keys]
                first = chain.first_frame(keys, o.start, self._mask_objects())
                stats = chain.run(frames=self.reader.frames(first, self.end), keys=keys,
                                  load_key=self.load_key, adapter=adapter,
                                  propagator=MaskPropagator(model), sinks=sinks, start=o.start,
                                  total=self.end - first, quiet=o.quiet)
            else:
                feed = None
                if adapter.needs_key_video_frame:
                    feed = engine.KeyFrameFeed(
                        lambda: self.reader.frames(0, max(k.index for k in self.keys) + 1))
                stats = engine.run(frames=self.reader.frames(o.start, self.end),
                                   assignments=self.assignments(),
                                   propagator=KeyPropagator(adapter, model),
                                   load_key=self.load_key, sinks=sinks,
                                   batch_size=o.batch_size, key_feed=feed,
                                   total=self.end - o.start, quiet=o.quiet,
                                   pipeline=o.pipeline)
            with timing.section("encode"):  # closing: flushing the encoders, HDR10's second pass
                stack.close()
        timing.write_report()
        warnings = self.warnings + [w for s in sinks for w in s.warnings]
        seconds = time.perf_counter() - t0
        from .ops import backend
        return {
            "tpn": __version__, "command": COMMAND[o.task], "input": str(o.input),
            "output": str(self.output), "extra_outputs": [str(p) for p in (o.sdr_preview, o.overlay) if p],
            "frames": stats.frames, "seconds": round(seconds, 3),
            "fps": round(stats.frames / seconds, 2) if seconds > 0 else 0.0,
            "video_fps": float(self.reader.fps), "size": [self.reader.width, self.reader.height],
            "work_size": [self.work[1], self.work[0]], "device": str(self.device),
            "backend": backend(), "batch_size": 1 if o.task == "segment" else o.batch_size, "mode": self.mode,
            "keyframes": len(self.keys), "propagation": self.propagation,
            "weights": str(self.weights_path) if self.uses_model else None,
            "peak_memory_mb": round(stats.peak_memory_mb, 1), "notes": self.notes,
            "warnings": warnings, **self._shots_json(),
        }


# ----------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------
def _check_outputs(opts: Options, output: Path, kind: str) -> None:
    if opts.task == "colour" and kind == "image":
        raise UsageError("the output must be a video file or a folder, not one image",
                         path=output, hint="e.g. -o out.mp4 or -o out_frames/")
    if opts.task == "hdr" and kind == "video" and output.suffix.lower() not in (".mp4", ".mkv", ".mov"):
        raise UsageError(f"HDR video output must be .mp4, .mkv or .mov, not {output.suffix}",
                         path=output, hint="or give a folder for an EXR sequence")
    if opts.task == "hdr" and kind == "image":
        raise UsageError("the HDR output must be a folder (EXR sequence) or a .mp4/.mkv video",
                         path=output, hint="e.g. -o out_exr/ or -o out_hdr10.mp4")
    if opts.task == "segment" and kind != "frames":
        raise UsageError("the mask output is a folder of PNGs", path=output,
                         hint="give a folder (e.g. -o clip_masks/); use --overlay OUT.mp4 for a "
                              "preview video")
    extras = [p for p in (opts.sdr_preview, opts.overlay) if p]
    for p in [output, *extras]:
        if Path(p).resolve() == opts.input.resolve():
            raise UsageError("the output would replace the input", path=p,
                             hint="choose another output path (inputs are never modified)")
        check_output_path(p, overwrite=opts.overwrite)
    for p in extras:
        if output_kind(p) != "video":
            raise UsageError("preview outputs are videos", path=p, hint="e.g. preview.mp4")


def _check_colour_keys(run: Run) -> None:
    from .keyframes import check_colour_keyframe, check_size

    for k in run.keys:
        img = read_image(k.path, depth=8, keep_alpha=True)
        check_colour_keyframe(img, k.path)
        if img.shape[2] == 4:
            run.partial_keys.add(k.index)
        sc = check_size((img.shape[1], img.shape[0]), run.reader.size, path=k.path)
        if sc.note:
            run.notes.append(sc.note)
    if run.partial_keys:
        note = (f"{len(run.partial_keys)} key-frame(s) painted only in parts (alpha): where no "
                "key's paint reaches, frames keep their own colour")
        if run.opts.mode != "blend" and len(run.keys) > 1:  # one key per frame: no combining
            note += "; --mode blend combines keys painted in different regions"
        run.notes.append(note)
    if run.opts.snap_check:
        _snap_checks(run)


def _snap_checks(run: Run, radius: int = 2) -> None:
    """Off-by-one check: compare each colour key's lightness with frames index±radius, in
    one forward decoding pass holding 2·radius+1 frames."""
    want = {k.index: k for k in run.keys}
    last = max(want)
    window: deque = deque(maxlen=2 * radius + 1)

    def check(k: keyframes.KeyFrame) -> None:
        cands = {f.index: (f.image if f.image.dtype == np.uint8 else (f.image // 257).astype(np.uint8))
                 for f in window if abs(f.index - k.index) <= radius}
        key = resize_image(read_image(k.path, depth=8, keep_alpha=True), run.reader.width, run.reader.height)
        # a partly painted key is compared as the run uses it: over the frame it names
        key = keyframes.over_frame(key, cands[k.index])
        res = keyframes.snap_check(key, cands, k.index, path=k.path)
        if not res.ok:
            raise BadInputError(res.note, path=k.path, frame=k.index,
                                hint=f"rename it to index {res.best}, or pass --no-snap-check "
                                     "if it really belongs to frame " + str(k.index),
                                code="KEYFRAME_MISMATCH")

    pending = sorted(want)
    for f in run.reader.frames(0, min(run.frame_count, last + radius + 1)):
        window.append(f)
        while pending and f.index >= min(pending[0] + radius, run.frame_count - 1):
            check(want[pending.pop(0)])
    for i in pending:
        check(want[i])


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
    noun = "colour" if o.task == "colour" else "radiance"
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


def _check_hdr_keys(run: Run) -> None:
    from .keyframes import check_size

    for k in run.keys:
        if k.path.suffix.lower() not in HDR_EXTENSIONS:
            raise BadInputError(f"{k.path.suffix} is not a radiance image", path=k.path,
                                hint="HDR key-frames are .exr or .hdr files (linear, 1.0 = LDR white)")
        img = read_hdr_image(k.path)  # refuses NaN/Inf with the pixel position
        sc = check_size((img.shape[1], img.shape[0]), run.reader.size, path=k.path)
        if sc.note:
            run.notes.append(sc.note)


def _load_masks(run: Run) -> None:
    from .keyframes import check_size

    for k in run.keys:
        m = read_mask(k.path, void=run.opts.void)
        sc = check_size(m.size, run.reader.size, path=k.path)
        if sc.note:
            run.notes.append(sc.note + " (nearest neighbour)")
        run.masks[k.index] = m
    if not any(m.object_ids for m in run.masks.values()):
        first = run.keys[0].path
        raise BadInputError("the mask has no objects (every pixel is background, id 0)",
                            path=first, hint="paint at least one object with a non-zero id")


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


def _find_keys(opts: Options, frame_count: int, reader: Any = None) -> list[keyframes.KeyFrame]:
    if opts.task == "hdr":
        keys = keyframes.find_keyframes(opts.keys, index_base=opts.index_base,
                                        extensions=HDR_EXTENSIONS, what="HDR key-frame")
    elif opts.task == "segment":
        if not opts.keys.is_file():
            raise BadInputError("mask file not found", path=opts.keys,
                                hint="pass the first frame's mask PNG (use --masks DIR for a folder)",
                                code="INPUT_MISSING")
        keys = keyframes.find_keyframes(opts.keys, index_base=opts.index_base)
        if opts.masks is not None:
            more = keyframes.find_keyframes(opts.masks, index_base=opts.index_base, what="mask")
            seen = {k.index for k in keys}
            keys = sorted(keys + [k for k in more if k.index not in seen], key=lambda k: k.index)
    else:
        keys = keyframes.find_keyframes(opts.keys, index_base=opts.index_base)
    if getattr(reader, "numbers", None) is not None:
        keys = _match_folder_numbers(keys, reader)
    keyframes.check_indices(keys, frame_count, source=opts.input, index_base=opts.index_base)
    return keys


def prepare(opts: Options) -> Run:
    """Check inputs, outputs and weights; build the plan (no model is run).

    Raises:
        TpnError subclasses with the documented exit codes (see :mod:`tpn_cli.errors`).
    """
    if opts.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if opts.mode not in keyframes.MODES:
        raise UsageError(f"unknown --mode {opts.mode!r}", hint="use online, nearest or blend")
    # display orientation: key-frames and masks are painted on frames as players show them
    reader = open_input(opts.input, autorotate=True)
    if opts.task == "hdr" and getattr(reader, "is_hdr", False):
        raise BadInputError("the input is already radiance (EXR/HDR frames)", path=opts.input,
                            hint="tpn hdr takes an LDR video or a folder of PNG/JPEG frames")
    frame_count = reader.frame_count
    for name in ("start", "end"):  # times become frame indices, from the real timestamps
        pos = parse_position(getattr(opts, name))
        setattr(opts, name, frame_at_time(reader, pos) if isinstance(pos, float) else pos)
    end = frame_count if opts.end is None else min(opts.end, frame_count)
    if opts.start < 0 or opts.start >= end:
        raise UsageError(f"empty frame range --start {opts.start} --end {opts.end}",
                         path=opts.input, hint=f"the input has {frame_count} frames (0-based)")
    keys = _find_keys(opts, frame_count, reader)
    output = opts.output or default_output(opts.task, opts.input)
    kind = output_kind(output)
    _check_outputs(opts, output, kind)
    device = pick_device(opts.device)
    uses_model = opts.task != "segment" or (
        opts.tpn if opts.tpn is not None else (opts.weights is not None or chain.USE_TPN))
    wpath, werr = None, None
    try:
        if uses_model:
            wpath = weights.resolve(opts.weights, opts.task)
    except weights.WeightsUnavailableError as exc:
        werr = str(exc)
    run = Run(opts=opts, reader=reader, frame_count=frame_count, keys=keys, output=output,
              kind=kind, device=device, work=engine.work_size(reader.width, reader.height, _work_short_side(opts)),
              weights_path=wpath, weights_error=werr, end=end, uses_model=uses_model)
    hint = keyframes.index_base_hint(keys, frame_count, opts.index_base)
    if hint:
        run.notes.append(hint)
    if opts.task != "segment" and opts.shot_detect:  # the mask chain goes frame to frame
        _find_cuts(run)
    if opts.task == "colour":
        _check_colour_keys(run)
    elif opts.task == "hdr":
        _check_hdr_keys(run)
    else:
        _load_masks(run)
        first = min(k.index for k in keys)
        if opts.start < first:
            run.notes.append(f"frames {opts.start}-{min(first, end) - 1} come before the first mask "
                             f"({first}) and get it unchanged")
    return run
