"""Output sinks for the engine: each takes ``write(frame, result)`` in frame order and is
a context manager that commits on success and deletes its temporary on failure or
Ctrl-C (the writers of :mod:`tpn_cli.media` are atomic; these are thin adapters).

Frame files are named by the frame's number: its index for a video input, the number in
the file name for a frame-folder input (so outputs line up with inputs and masks can be
fed back with ``--masks``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .media import FrameFolderWriter, VideoReader, VideoWriter
from .media.atomic import AtomicPath, Transactional
from .media.hdr import HdrVideoWriter, sdr_preview
from .media.masks import overlay, write_mask
from .media.video import Frame

__all__ = ["FramesSink", "HdrVideoSink", "MaskFolderSink", "OverlaySink", "SdrPreviewSink",
           "VideoSink", "export_frames", "frame_name_number"]


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


class _Sink(Transactional):
    writer: Any

    def close(self) -> Path:
        return self.writer.close()

    def abort(self) -> None:
        self.writer.abort()

    @property
    def warnings(self) -> list[str]:
        return list(getattr(self.writer, "warnings", []))


#: Encoder for containers that cannot hold H.264 (the writer's default).
_CODEC_FOR = {".webm": "libvpx-vp9"}


def _video_writer(reader: Any, path: Path, *, overwrite: bool, copy_streams: bool,
                  crf: int | None, preset: str | None, codec: str | None,
                  same_timeline: bool = True) -> VideoWriter:
    kw: dict[str, Any] = {"overwrite": overwrite}
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
        return VideoWriter.like(reader, path, keep_chroma=True, same_timeline=same_timeline, **kw)
    return VideoWriter(path, width=reader.width, height=reader.height, fps=reader.fps,
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

