"""One colour or HDR run cut into segments that separate workers compute.

Every HDR frame is predicted from its key-frames only (DESIGN.md §1), and a colour frame
from its key-frames and the frames between them, which a key-frame does not need, so a run's
frame range splits into segments of consecutive frames, each computed on its own:

* :func:`split` cuts the plan (:meth:`tpn_cli.runs.Run.assignments`) where the
  key-frames feeding the frames change (a key-frame or shot boundary; for colour only at
  a key-frame), once a segment holds enough frames, and only where the local run starts a
  network batch, so each network call sees exactly the inputs it sees in the local run
  (results bit-identical);
* :func:`seek_frames` decodes a segment's frames by seeking to the nearest earlier
  key picture of the video instead of decoding from the start;
* :func:`run_segment` streams one segment through :func:`tpn_cli.engine.stream_from_keys` (the same
  frame loop and :class:`tpn_cli.propagator.KeyPropagator` as the local run) into a
  staging folder: frame outputs under their final names, a video output as one chunk;
* :func:`join_chunks` remuxes the chunks, packets copied without re-encoding, into the
  final video with the input's audio, subtitles, metadata, chapters and timecode, by the
  same writer as the local run (:class:`tpn_cli.media.VideoWriter`), atomically.

What differs from the local run: a video output's chunks are separate encodes, so each
chunk starts with its own key picture (IDR) and the encoder's rate control restarts there;
decoded frames equal the local run's only with a lossless codec (``--codec ffv1``, or
``--crf 0``); with the default lossy x264 they differ by encoding noise (measured in
``benchmarks/bench_ray.py``). Frame-folder outputs are bit-identical.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import av

from .. import engine, keyframes, outputs
from ..errors import BadInputError, UsageError
from ..media import VideoReader, VideoWriter, write_image
from ..media.video import BT709, ColourConverter, Frame
from ..propagator import KeyPropagator

__all__ = ["Segment", "chunk_name", "join_chunks", "packet_pts", "run_segment", "seek_frames",
           "split", "supports_segments"]

#: Test hook: when this environment variable names a path that does not exist, the
#: first worker to reach the middle of a segment creates it and dies (``os._exit``),
#: as a killed machine would; the tests check that the segment is retried.
KILL_HOOK_ENV = "TPN_TEST_KILL_SEGMENT_ONCE"


@dataclass(frozen=True)
class Segment:
    """Frames ``start <= index < end`` of a run, computed by one worker."""

    index: int
    start: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.start


def supports_segments(run: Any) -> str | None:
    """None when ``run`` can be cut into segments, else why not (a sentence)."""
    if run.task.name not in ("colour", "hdr"):
        return "segment runs go frame to frame (each mask from the previous one)"
    if run.task.name == "hdr" and run.kind == "video":
        return ("an HDR10 video's MaxCLL/MaxFALL are measured over the whole output before it "
                "is encoded")
    if run.opts.sdr_preview:
        return "the SDR preview is a second video written alongside"
    return None


def _batch_starts(assignments: list[keyframes.Assignment], batch: engine.Batching) -> set[int]:
    """The frames that start a batch of the local run (:class:`tpn_cli.engine.Batching`)."""
    return {a.frame for a in assignments if batch.starts(a)}


def split(run: Any, segment_frames: int) -> list[Segment]:
    """Cut ``run``'s frames into segments of about ``segment_frames`` frames.

    A segment ends, once it holds ``segment_frames`` frames, at the first frame where the
    key-frames feeding the frames change (a key-frame or shot boundary: fewer keys to
    prepare per segment), and at the latest at twice that; cuts fall only where the local
    run starts a network batch (see the module doc), and for a task whose frames continue
    the one before (``chains_frames``: colour) only at key-frames. ``segment_frames <= 0``:
    one segment.
    """
    plan = list(run.assignments())
    if segment_frames <= 0 or len(plan) <= segment_frames:
        return [Segment(0, run.opts.start, run.end)]
    starts = _batch_starts(plan, engine.Batching(run.task.batch_size(run.opts), run.task.ahead_frames(run)))
    if run.task.chains_frames:  # each frame continues the one before: cut only at key-frames
        starts &= {a.frame for a in plan if a.is_key}
    cuts, begin, keys_changed = [], plan[0].frame, False
    for prev, a in zip(plan, plan[1:]):
        length = a.frame - begin
        if length >= segment_frames and {k for k, _ in prev.sources} != {k for k, _ in a.sources}:
            keys_changed = True
        if a.frame in starts and (keys_changed or length >= 2 * segment_frames):
            cuts.append(a.frame)
            begin, keys_changed = a.frame, False
    bounds = [plan[0].frame, *cuts, plan[-1].frame + 1]
    return [Segment(i, a, b) for i, (a, b) in enumerate(zip(bounds, bounds[1:]))]


# ----------------------------------------------------------------------------------------
# decoding a segment by seeking
# ----------------------------------------------------------------------------------------
def packet_pts(path: Path) -> list[int] | None:
    """The video's frame timestamps in presentation order (frame index → pts), from the
    packets (nothing decoded); None when some packet has no pts (then no seeking)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        pts = [p.pts for p in c.demux(s) if p.size]
    if any(p is None for p in pts):
        return None
    return sorted(pts)


def seek_frames(reader: Any, start: int, end: int, pts_index: list[int] | None = None) -> Iterator[Frame]:
    """Frames ``start <= index < end`` as ``reader.frames(start, end)`` yields them, but a
    video is entered by seeking to the last key picture at or before ``start`` instead
    of being decoded from its first frame.

    ``pts_index`` is :func:`packet_pts` of the video (computed when not given). A video
    whose timestamps cannot be trusted for this (missing pts, a packet count that differs
    from the frame count, a seek that lands after ``start``) is decoded from the start.
    """
    if not isinstance(reader, VideoReader) or start == 0:
        yield from reader.frames(start, end)
        return
    pts = pts_index if pts_index is not None else packet_pts(reader.path)
    if pts is None or len(pts) != reader.frame_count or start >= len(pts):
        yield from reader.frames(start, end)
        return
    index_of = {p: i for i, p in enumerate(pts)}
    c = reader.color  # the same conversion as VideoReader.frames
    convert = ColourConverter(c, BT709) if c.needs_conversion and c.convertible else None
    with av.open(str(reader.path)) as container:
        s = container.streams.video[0]
        if reader.threads:
            s.thread_type = "AUTO"
        container.seek(pts[start], stream=s, backward=True, any_frame=False)
        expected = start
        for f in container.decode(s):
            i = index_of.get(f.pts)
            if i is None or i < start:
                continue  # leading pictures before the segment
            if i != expected:
                if expected == start:  # the seek landed after the segment's first frame
                    break
                raise BadInputError(f"frame {expected} missing after seeking (got frame {i})",
                                    path=reader.path, frame=expected,
                                    hint="re-encode the input, or use --engine local")
            if i >= end:
                return
            yield Frame(index=i, image=reader._to_rgb(f, convert), pts=f.pts,
                        time=float(f.pts * s.time_base), duration=f.duration or None)
            expected += 1
        else:
            if expected >= end or expected == len(pts):
                return
            raise BadInputError(f"the video ended at frame {expected} after seeking", path=reader.path,
                                frame=expected, hint="re-encode the input, or use --engine local")
    yield from reader.frames(start, end)  # the seek went too far: decode from the start


# ----------------------------------------------------------------------------------------
# one segment
# ----------------------------------------------------------------------------------------
def chunk_name(segment: Segment, output: Path) -> str:
    """File name of a segment's video chunk in the staging folder: the output's container,
    which holds the codec the output is written with."""
    return f"{segment.index:06d}{output.suffix}"


class _Timing:
    """Records each written frame's (pts, duration) in the input's time base: the join
    restores them exactly (containers shift a chunk's timestamps to start near 0)."""

    def __init__(self, run: Any) -> None:
        self.run = run
        self.frames: list[tuple[int, int | None]] = []

    def write(self, frame: Frame, result: Any) -> None:
        pts = frame.pts
        if pts is None:  # as VideoWriter numbers frames without pts: from the run's first
            r = self.run
            pts = int(round((frame.index - r.opts.start) / r.reader.fps / r.reader.time_base))
        self.frames.append((int(pts), frame.duration))


class _FolderPartSink:
    """Frames straight into the (staging) output folder under their final names:
    :class:`tpn_cli.media.FrameFolderWriter`'s naming, without its own temporary folder
    (the run's staging folder is renamed into place once every segment is done)."""

    def __init__(self, reader: Any, folder: Path, ext: str) -> None:
        self.reader, self.folder, self.ext = reader, folder, ext
        self.warnings: list[str] = []

    def write(self, frame: Frame, result: Any) -> None:
        n = outputs.frame_name_number(self.reader, frame.index)
        write_image(self.folder / f"{n:05d}{self.ext}", result, overwrite=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def _segment_sinks(run: Any, segment: Segment, staging: Path) -> list:
    o = run.opts
    if run.kind == "video":
        return [outputs.VideoSink(run.reader, staging / chunk_name(segment, run.output), overwrite=True,
                                  copy_streams=False, crf=o.crf, preset=o.preset, codec=o.codec,
                                  same_timeline=run.full_range)]
    return [_FolderPartSink(run.reader, staging, ".png" if run.task.name == "colour" else ".exr")]


class _KillOnce:
    """The sink behind :data:`KILL_HOOK_ENV` (tests only)."""

    def __init__(self, marker: str, at: int) -> None:
        self.marker, self.at = marker, at

    def write(self, frame: Frame, result: Any) -> None:
        if frame.index == self.at and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)


def run_segment(run: Any, segment: Segment, staging: Path, adapter: Any, model: Any,
                pts_index: list[int] | None = None,
                extra_sinks: list | None = None) -> tuple[engine.RunStats, list]:
    """Compute ``segment`` of a prepared colour/HDR ``run`` (:func:`tpn_cli.runs.check_and_plan`)
    into ``staging``: frames under their final names, or the segment's video chunk
    (:func:`chunk_name`). Safe to repeat: a retried segment rewrites the same files.
    Returns the frame loop's stats and each written frame's (pts, duration), which
    :func:`join_chunks` needs.

    ``adapter`` is the task's adapter for ``model`` (``run.task.adapter(run, model)``,
    made once per worker and run); ``pts_index`` is :func:`packet_pts` of the input;
    ``extra_sinks`` see every written frame too (progress reports).
    """
    o = run.opts
    plan = list(keyframes.iter_plan(run.frame_count, [k.index for k in run.keys], run.mode,
                                    segment.start, segment.end, run.cuts))
    feed = None
    if adapter.needs_key_video_frame:  # HDR: the video frame at each key's index
        first = min(k for a in plan for k, _ in a.sources)
        last = max(k for a in plan for k, _ in a.sources)
        feed = engine.KeyFrameFeed(lambda: seek_frames(run.reader, first, last + 1, pts_index))
    timing = _Timing(run)
    sinks = [*_segment_sinks(run, segment, staging), timing, *(extra_sinks or [])]
    hook = os.environ.get(KILL_HOOK_ENV)
    if hook and segment.frames > 1:
        sinks.append(_KillOnce(hook, segment.start + segment.frames // 2))
    with contextlib.ExitStack() as stack:
        for s in sinks:
            if hasattr(s, "__enter__"):
                stack.enter_context(s)
        stats = engine.stream_from_keys(frames=seek_frames(run.reader, segment.start, segment.end, pts_index),
                           assignments=plan, propagator=KeyPropagator(adapter, model),
                           load_key=run.load_key, sinks=sinks, batch_size=o.batch_size,
                           key_feed=feed, quiet=True, pipeline=o.pipeline)
    stats.warnings = [w for s in sinks for w in getattr(s, "warnings", [])]
    return stats, timing.frames


# ----------------------------------------------------------------------------------------
# joining video chunks
# ----------------------------------------------------------------------------------------
class _RemuxWriter(VideoWriter):
    """A :class:`VideoWriter` whose video stream is copied from already encoded chunks
    (packets, no encoder): everything else (audio/subtitle copies interleaved by time,
    metadata, chapters, timecode, rotation, HDR10 boxes, the atomic rename) is the
    writer's own. ``template`` is the first chunk: its stream parameters (codec, size,
    extradata, colour tags) become the output's."""

    def __init__(self, path, *, template: Path, **kw) -> None:
        self._template = av.open(str(template))
        try:
            super().__init__(path, **kw)
        except BaseException:
            self._template.close()
            raise

    def _setup_video(self, codec, crf, preset, options, rotation, codec_tag, sar) -> None:
        vs = self._out.add_stream_from_template(self._template.streams.video[0])
        if vs.codec_context.name == "hevc" and self._out.format.name in ("mp4", "mov"):
            vs.codec_tag = "hvc1"  # as VideoWriter tags HEVC in MP4/MOV, for Apple players
        if rotation:
            vs.set_display_rotation(rotation)
        self._vs = vs
        self._template.close()

    def write_packet(self, packet: av.Packet) -> None:
        """Mux one video packet (timestamps set by the caller); copied streams follow."""
        packet.stream = self._vs
        self._mux(packet)
        self._pump(float(packet.dts * packet.time_base))

    def _flush_encoder(self) -> None:
        """Nothing to flush: the packets arrive encoded (VideoWriter.close does the rest)."""


def _chunk_pts(chunk: Path) -> list[int]:
    """The chunk's packet pts in decode order (its own, shifted time line)."""
    with av.open(str(chunk)) as c:
        return [p.pts for p in c.demux(c.streams.video[0]) if p.size]


def join_chunks(run: Any, chunks: list[tuple[Path, list[tuple[int, int | None]]]]) -> list[str]:
    """Remux ``chunks`` (in order: each a chunk file and its frames' (pts, duration) from
    :func:`run_segment`) into ``run.output`` with the streams, metadata and settings the
    local run's :class:`tpn_cli.outputs.VideoSink` gives it; returns the writer's warnings.
    The output appears only when complete.

    Timestamps come from the frames, not from the chunk files (a container moves a
    chunk's time line, e.g. by the B-frame delay): a packet's pts is that of the frame at
    its rank among the chunk's pts; decode timestamps are the frames' pts in order, less
    the smallest constant delay that keeps every dts <= its pts (what x264 itself does),
    taken over all chunks so they increase across the joins.
    """
    if not chunks:
        raise UsageError("no video chunk to join", path=run.output)
    o = run.opts
    tb = run.reader.time_base
    plans = []  # per chunk: (file, [(pts, duration) per packet in decode order])
    for path, frames in chunks:
        order = _chunk_pts(path)
        if len(order) != len(frames) or None in order:
            raise UsageError(f"video chunk {path.name} holds {len(order)} packets for "
                             f"{len(frames)} frames", path=run.output,
                             hint="use a codec that writes one packet per frame, or --engine local")
        rank = {p: i for i, p in enumerate(sorted(order))}
        ordered = sorted(frames)
        plans.append((path, [ordered[rank[p]] for p in order]))
    shown = sorted(f[0] for _, packets in plans for f in packets)
    decoded = [f[0] for _, packets in plans for f in packets]
    delay = max(0, max(s - p for s, p in zip(shown, decoded)))
    copy = run.full_range and not o.no_audio
    writer = outputs._video_writer(run.reader, run.output, overwrite=o.overwrite, copy_streams=copy,
                                   crf=o.crf, preset=o.preset, codec=o.codec,
                                   same_timeline=run.full_range, writer=_RemuxWriter,
                                   template=chunks[0][0])
    dts = iter(s - delay for s in shown)
    with writer:
        for path, packets in plans:
            with av.open(str(path)) as c:
                stream = c.streams.video[0]
                for p, (pts, duration) in zip((p for p in c.demux(stream) if p.size), packets):
                    p.time_base = tb
                    p.pts, p.dts = pts, next(dts)
                    if duration:
                        p.duration = duration
                    writer.write_packet(p)
    return list(writer.warnings)
