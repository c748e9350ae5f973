"""Pixels in and out: video (PyAV), frame folders, EXR/HDR radiance, masks.

The names most callers need are re-exported here; see the submodules for details:

* :mod:`.video`  - :class:`VideoReader`, :class:`VideoWriter`, :class:`Frame`, :class:`ColorTags`
* :mod:`.frames` - frame folders and single images (PNG/JPEG 8/16-bit, EXR, .hdr)
* :mod:`.hdr`    - EXR / Radiance I/O, NaN/Inf checks, :class:`HdrVideoWriter` (HDR10, HLG)
* :mod:`.masks`  - palette / grayscale-id / binary / RGB masks, overlay
* :mod:`.atomic` - temporary-name-then-rename outputs

The output path decides the format (:func:`output_kind`): a video extension writes a
video, an image extension writes one image, and a folder or a path without extension
writes a frame sequence.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Literal, Union

from ..errors import BadInputError, UsageError
from .atomic import AtomicPath, check_output_path
from .frames import (IMAGE_EXTENSIONS, FrameFolderReader, FrameFolderWriter, frame_number, gray_thumbnail,
                     is_frame_sequence_path, list_frame_files, read_image, resize_image,
                     write_image)
from .video import VIDEO_EXTENSIONS, ColorTags, Frame, VideoReader, VideoWriter

__all__ = [
    "AtomicPath", "ColorTags", "Frame", "FrameFolderReader", "FrameFolderWriter",
    "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "VideoReader", "VideoWriter", "check_output_path",
    "frame_number", "gray_thumbnail", "is_frame_sequence_path", "list_frame_files", "open_input", "output_kind",
    "read_image", "resize_image", "write_image",
]

Reader = Union[VideoReader, FrameFolderReader]


def output_kind(path: str | os.PathLike[str]) -> Literal["video", "frames", "image"]:
    """``"frames"`` for an existing folder or a path without extension, ``"image"`` for an
    image extension, ``"video"`` for a video container's extension (which picks the
    container).

    Raises:
        UsageError: an extension that is none of these (decided here, before any work, not
            by the muxer later).
    """
    p = Path(path)
    if is_frame_sequence_path(p):
        return "frames"
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        return "image"
    if p.suffix.lower() in VIDEO_EXTENSIONS:
        return "video"
    raise UsageError(f"unknown output type {p.suffix!r}", path=p, code="BAD_OUTPUT_PATH",
                     hint="use a video extension (" + ", ".join(sorted(VIDEO_EXTENSIONS))
                          + "), or a folder / a path without extension for frames")


def open_input(path: str | os.PathLike[str], *, fps: Fraction | int | None = None,
               depth: Literal["auto", 8, 16] = "auto", autorotate: bool = False,
               allow_short: bool = False) -> Reader:
    """A :class:`VideoReader` for a file, a :class:`FrameFolderReader` for a folder
    (``fps``, default 25, applies to folders only: a video has its own timing, and
    giving one for a video is a usage error rather than silently ignored; ``allow_short``
    applies to videos: see VideoReader)."""
    p = Path(path)
    if p.is_dir():
        return FrameFolderReader(p, fps=fps or Fraction(25), depth=depth)
    if not p.exists():
        raise BadInputError("input not found", path=p, hint="check the path",
                            code="INPUT_MISSING")
    if fps is not None:
        raise UsageError("--fps applies to a folder of frames; a video keeps its own timing",
                         path=p, hint="drop --fps (re-time a video with ffmpeg first if needed)")
    return VideoReader(p, depth=depth, autorotate=autorotate, allow_short=allow_short)
