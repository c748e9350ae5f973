"""Output sinks for the engine: each takes ``write(frame, result)`` in frame order and is
a context manager that commits on success and deletes its temporary on failure or
Ctrl-C (the writers of :mod:`tpn_cli.media` are atomic; these are thin adapters).

Frame files are named by the frame's number: its index for a video input, the number in
the file name for a frame-folder input (so outputs line up with inputs and masks can be
fed back with ``--masks``).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np

from .errors import OutputNotWritableError, UsageError

from .media import FrameFolderWriter, VideoReader, VideoWriter
from .media.atomic import AtomicPath, Transactional, check_output_path
from .media.hdr import HdrVideoWriter, sdr_preview
from .media.masks import overlay, write_mask
from .media.video import Frame

__all__ = ["FramesSink", "HdrVideoSink", "MaskFolderSink", "OverlaySink", "SdrPreviewSink",
           "VideoSink", "check_before_run", "check_distinct", "check_free_space", "check_video_encoder",
           "estimate_bytes", "export_frames", "frame_name_number"]


def frame_name_number(reader: Any, index: int) -> int:
    """The number a frame's output file is named by (see module doc)."""
    numbers = getattr(reader, "numbers", None)
    return numbers[index] if numbers is not None else index


def export_frames(reader: Any, folder: Path, wanted: Any, fmt: str = "png",
                  overwrite: bool = False) -> list[int]:
    """Write the frames whose index is in ``wanted`` (a container, or a predicate on the
    index) into a new ``folder``, as 8-bit JPEG or PNG (16-bit sources stay 16-bit in PNG)
    named by :func:`frame_name_number`, so that a painted copy dropped into a
    ``--keyframes`` folder lands on the same frame. Decodes up to the last wanted frame
    when ``wanted`` is a container. Returns the indices written."""
    keep = wanted if callable(wanted) else wanted.__contains__
    last = None if callable(wanted) else max(wanted) + 1
    written = []
    with FrameFolderWriter(folder, ext="." + fmt, overwrite=overwrite) as w:
        for f in reader.frames(0, last):
            if keep(f.index):
                img = f.image if fmt == "png" or f.image.dtype == np.uint8 else (f.image // 257).astype(np.uint8)
                w.write(frame_name_number(reader, f.index), img)
                written.append(f.index)
    return written


# ----------------------------------------------------------------------------------------
# checks made before any work (runs.check_and_plan): each output's path, encoder and room
# ----------------------------------------------------------------------------------------
def _real(p: Path) -> Path:
    return Path(os.path.realpath(os.path.abspath(p)))


def check_distinct(outputs: dict[str, Path], inputs: dict[str, Path | None]) -> None:
    """Refuse two outputs of one run on the same path (the later would replace the
    earlier), an output on an input, and an output folder that contains an input (a
    folder output is replaced whole). Names are compared after resolving links.

    Args:
        outputs: ``{role: path}``, e.g. ``{"output": ..., "--sdr-preview": ...}``.
        inputs: ``{role: path}`` of every file or folder the run reads (None: not given).

    Raises:
        UsageError: ``OUTPUT_COLLISION`` naming both roles.
    """
    seen: dict[str, Path] = {}
    for role, p in outputs.items():
        r = _real(p)
        for other, q in seen.items():
            if r == q:
                raise UsageError(f"{role} and {other} are the same path: one would replace the other",
                                 path=p, code="OUTPUT_COLLISION", hint="give each output its own path")
        for what, i in inputs.items():
            if i is None:
                continue
            ri = _real(i)
            if r == ri:
                raise UsageError(f"the {role} would replace the input ({what})", path=p,
                                 code="OUTPUT_COLLISION",
                                 hint="choose another output path (inputs are never modified)")
            if r in ri.parents:
                raise UsageError(f"the {role} folder contains the input {i} ({what}) and would "
                                 "replace it", path=p, code="OUTPUT_COLLISION",
                                 hint="choose an output outside the input's folders")
        seen[role] = r


#: Encoder for containers that cannot hold H.264 (the writer's default).
_CODEC_FOR = {".webm": "libvpx-vp9"}


def check_video_encoder(path: Path, codec: str | None) -> str:
    """The encoder a video output will use (``--codec``, else the container's default),
    checked to exist in this FFmpeg before any work. Returns its name.

    Raises:
        UsageError: ``ENCODER_UNAVAILABLE``.
    """
    name = codec or _CODEC_FOR.get(path.suffix.lower(), "libx264")
    try:
        av.Codec(name, "w")
    except (ValueError, av.error.FFmpegError) as exc:
        raise UsageError(f"encoder {name!r} is not available in this FFmpeg ({exc})", path=path,
                         code="ENCODER_UNAVAILABLE",
                         hint="choose another --codec (libx264, libx265, ffv1, ...); `tpn doctor` "
                              "lists the encoders") from exc
    return name


#: Bytes per output pixel and frame of detailed footage, measured on tests/data/goat_16.mp4
#: (DAVIS goat, 256x144): H.264 at CRF 16 0.22, PNG frames 2.2, half-float EXR (ZIP) 4.2,
#: palette masks 0.03; the HDR video's peak is its lossless FFV1 intermediate (about 1.5)
#: next to the HEVC; FFV1 and ProRes outputs near 1.5 and 1.2. Flat footage needs less.
_BYTES_PER_PIXEL = {"video": 0.25, "ffv1": 1.5, "prores_ks": 1.2, "png": 2.0, "exr": 4.5,
                    "masks": 0.05, "hdr-video": 1.6}

#: Room kept free beyond the estimate (the file system's own needs, logs, a bad estimate).
FREE_MARGIN_BYTES = 1 << 20


def estimate_bytes(kind: str, width: int, height: int, frames: int) -> int:
    """A typical size of an output (see :data:`_BYTES_PER_PIXEL` for ``kind``)."""
    return int(_BYTES_PER_PIXEL[kind] * width * height * frames)


def check_free_space(needs: list[tuple[Path, int]]) -> None:
    """Refuse a run whose outputs' estimated sizes do not fit the free space of their
    disks (outputs on one disk are added up), before any work. A disk that fills up
    anyway (the estimate is typical, not a bound) ends the run with exit 6 when it does.

    Raises:
        OutputNotWritableError: ``NO_SPACE`` with the estimate and the free space.
    """
    by_disk: dict[int, tuple[Path, int]] = {}
    for path, size in needs:
        parent = _real(path).parent
        try:
            dev = os.stat(parent).st_dev
        except OSError:
            continue  # a missing folder is reported by check_output_path
        first, total = by_disk.get(dev, (path, 0))
        by_disk[dev] = (first, total + size)
    for path, total in by_disk.values():
        free = shutil.disk_usage(_real(path).parent).free
        if free < total + FREE_MARGIN_BYTES:
            raise OutputNotWritableError(
                f"not enough free space: the output needs about {total / 1e6:.1f} MB, the disk "
                f"has {free / 1e6:.1f} MB free", path=path, code="NO_SPACE",
                hint="free some space, write to another disk, or process a part (--start/--end)")


def check_before_run(task: Any, output: Path, kind: str, extras: dict[str, Path | None],
                     inputs: dict[str, Path | None], *, overwrite: bool, codec: str | None,
                     size: tuple[int, int], frames: int) -> None:
    """Everything about a run's outputs that can fail, checked before any work: the extra
    outputs (``{"--sdr-preview": path}``, None when not asked) are videos, no two outputs
    and no output and input share a path (:func:`check_distinct`), each can be created
    (:func:`~tpn_cli.media.check_output_path`), each encoder exists, and the estimated
    sizes fit the free space (:func:`check_free_space`). ``task``: the run's task object
    (:class:`tpn_cli.tasks.base.Task`), which says which size estimate its output takes
    (and checks a video output's encoder).

    Raises:
        UsageError, OutputNotWritableError.
    """
    from .media import output_kind

    extras = {role: Path(p) for role, p in extras.items() if p}
    for role, p in extras.items():
        if output_kind(p) != "video":
            raise UsageError(f"{role} writes a video", path=p, hint="e.g. preview.mp4")
    check_distinct({"output": output, **extras}, inputs)
    for p in [output, *extras.values()]:
        check_output_path(p, overwrite=overwrite)
    w, h = size
    needs = [(output, estimate_bytes(task.output_size_kind(kind, output, codec), w, h, frames))]
    for p in extras.values():
        check_video_encoder(p, None)
        needs.append((p, estimate_bytes("video", w, h, frames)))
    check_free_space(needs)


class _Sink(Transactional):
    writer: Any

    def close(self) -> Path:
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()

    @property
    def warnings(self) -> list[str]:
        return list(getattr(self.writer, "warnings", []))


def _video_writer(reader: Any, path: Path, *, overwrite: bool, copy_streams: bool,
                  crf: int | None, preset: str | None, codec: str | None,
                  same_timeline: bool = True, writer: type = VideoWriter, **extra) -> VideoWriter:
    # ``writer``/``extra``: a VideoWriter subclass and its own arguments (tpn_cli.scale
    # joins video chunks with one, under exactly these settings)
    kw: dict[str, Any] = {"overwrite": overwrite, **extra}
    codec = codec or _CODEC_FOR.get(path.suffix.lower())
    if codec == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints its whole config to stderr otherwise
    if crf is not None:
        kw["crf"] = crf
    if preset is not None or (codec and codec not in ("libx264", "libx265")):
        kw["preset"] = preset  # x264/x265 presets mean nothing to other encoders
    if codec is not None:
        kw["codec"] = codec
    if isinstance(reader, VideoReader):
        if not copy_streams:
            kw["copy_streams_from"] = None
        deep = reader.bit_depth > 8
        sub = (reader.pix_fmt or "").startswith(("yuv444", "yuvj444", "yuv422", "yuvj422"))
        if deep and not sub and (codec or "libx264") in ("libx264", "libx265", "ffv1"):
            kw["pix_fmt"] = "yuv420p10le"  # a 10-bit source stays 10-bit
        # keep_chroma: a 4:4:4 / 4:2:2 source keeps its chroma resolution (colour is the product)
        return writer.like(reader, path, keep_chroma=True, same_timeline=same_timeline, **kw)
    return writer(path, width=reader.width, height=reader.height, fps=reader.fps,
                       time_base=reader.time_base, **kw)


class VideoSink(_Sink):
    """RGB frames → a video with the input's size, fps, timestamps, tags, audio, subtitles,
    pixel aspect, metadata and chapters (``same_timeline=False``: a frame range, whose
    chapters and timecode would not line up)."""

    def __init__(self, reader: Any, path: Path, *, overwrite: bool = False,
                 copy_streams: bool = True, crf: int | None = None, preset: str | None = None,
                 codec: str | None = None, same_timeline: bool = True) -> None:
        self.writer = _video_writer(reader, path, overwrite=overwrite, copy_streams=copy_streams,
                                    crf=crf, preset=preset, codec=codec, same_timeline=same_timeline)

    def write(self, frame: Frame, result: np.ndarray) -> None:
        self.writer.write(result, pts=frame.pts, duration=frame.duration)


class FramesSink(_Sink):
    """Images → a folder (PNG for RGB, half-float EXR for radiance), named by frame number."""

    def __init__(self, reader: Any, path: Path, *, ext: str = ".png", overwrite: bool = False) -> None:
        self.reader = reader
        self.writer = FrameFolderWriter(path, ext=ext, overwrite=overwrite)

    def write(self, frame: Frame, result: np.ndarray) -> None:
        self.writer.write(frame_name_number(self.reader, frame.index), result)


class HdrVideoSink(_Sink):
    """Radiance → HDR10 (PQ, MaxCLL/MaxFALL measured) or HLG HEVC, audio copied."""

    def __init__(self, reader: Any, path: Path, *, transfer: Literal["pq", "hlg"] = "pq",
                 paper_white: float = 203.0, overwrite: bool = False, copy_streams: bool = True,
                 crf: int | None = None, preset: str | None = None,
                 same_timeline: bool = True) -> None:
        copy = reader.path if isinstance(reader, VideoReader) and copy_streams else None
        carry = VideoWriter.carried(reader, same_timeline) if isinstance(reader, VideoReader) else {}
        quality = {k: v for k, v in (("crf", crf), ("preset", preset)) if v is not None}
        self.writer = HdrVideoWriter(path, width=reader.width, height=reader.height, fps=reader.fps,
                                     time_base=reader.time_base, transfer=transfer,
                                     paper_white=paper_white, copy_streams_from=copy,
                                     overwrite=overwrite, **quality, **carry)

    def write(self, frame: Frame, result: np.ndarray) -> None:
        self.writer.write(result, pts=frame.pts, duration=frame.duration)


class SdrPreviewSink(VideoSink):
    """Radiance → a tone-mapped 8-bit preview video (camera curve), same timing and audio."""

    def __init__(self, reader: Any, path: Path, *, overwrite: bool = False, copy_streams: bool = True,
                 same_timeline: bool = True) -> None:
        super().__init__(reader, path, overwrite=overwrite, copy_streams=copy_streams,
                         same_timeline=same_timeline)

    def write(self, frame: Frame, result: np.ndarray) -> None:
        self.writer.write(sdr_preview(result), pts=frame.pts, duration=frame.duration)


class MaskFolderSink(_Sink):
    """Id maps → PNG masks (palette with the input's colours, grayscale ids, or binary)."""

    def __init__(self, reader: Any, path: Path, *, palette: np.ndarray | None,
                 fmt: Literal["palette", "gray", "binary"] = "palette", digits: int = 5,
                 overwrite: bool = False) -> None:
        self.reader, self.palette, self.fmt, self.digits = reader, palette, fmt, digits
        self.writer = AtomicPath(path, overwrite=overwrite, is_dir=True)

    def write(self, frame: Frame, result: np.ndarray) -> None:
        n = frame_name_number(self.reader, frame.index)
        write_mask(self.writer.path / f"{n:0{self.digits}d}.png", result, palette=self.palette,
                   fmt=self.fmt, overwrite=True)

    def close(self) -> Path:
        return self.writer.commit()


class OverlaySink(VideoSink):
    """Id maps drawn over the frames in the mask colours → a preview video."""

    def __init__(self, reader: Any, path: Path, *, palette: np.ndarray | None,
                 overwrite: bool = False, same_timeline: bool = True) -> None:
        super().__init__(reader, path, overwrite=overwrite, same_timeline=same_timeline)
        self.palette = palette

    def write(self, frame: Frame, result: np.ndarray) -> None:
        self.writer.write(overlay(frame.image, result, self.palette), pts=frame.pts,
                          duration=frame.duration)

