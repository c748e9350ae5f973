"""Video files in and out through PyAV, one frame at a time.

Conventions (what the README's "Commands" promises about inputs and outputs):

* Frame index = 0-based position in presentation order of the decoded video frames.
  Each :class:`Frame` also carries its ``pts`` (in :attr:`VideoReader.time_base`) so
  variable-frame-rate and 29.97 fps inputs keep exact timing.
* Images are ``numpy`` arrays ``(H, W, 3)`` RGB, ``uint8`` (8-bit sources) or
  ``uint16`` (full 0..65535 scale, for sources deeper than 8 bits, or on request).
  The YCbCr→RGB matrix and range follow the stream's colour tags.
* Nothing holds more than one decoded frame: readers are generators, writers encode
  and mux as they go, and audio/subtitle packets are remuxed (never re-encoded)
  interleaved with the video.
* :class:`VideoWriter` writes a hidden temporary file next to the target and renames
  it when :meth:`VideoWriter.close` succeeds; on any exception (Ctrl-C included) the
  temporary is deleted. See :mod:`tpn_cli.media.atomic`.

``av>=18,<19`` is assumed (``Fraction`` rational attributes, ``add_stream_from_template``
copying the time base, ``set_display_rotation``).
"""
from __future__ import annotations

import heapq
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Literal, Mapping

import av
import av.filter
import numpy as np

from ..errors import BadInputError, OutputNotWritableError, UsageError
from .atomic import AtomicPath, Transactional
from .hdrmeta import HdrStatic, add_mp4_boxes

__all__ = [
    "ColorTags",
    "Frame",
    "ShortVideoError",
    "VideoReader",
    "VideoWriter",
    "VIDEO_EXTENSIONS",
]

#: Extensions treated as video containers (input and output).
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mxf", ".ts", ".mts"})

_AV_ERRORS = (av.error.FFmpegError, av.error.ArgumentError)

# Containers and the copied-stream codecs they accept (others are skipped with a warning;
# Matroska takes nearly everything).
_MP4_OK = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac", "mov_text"}
_MOV_OK = _MP4_OK | {"pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be", "pcm_f32le"}


@dataclass(frozen=True)
class ColorTags:
    """FFmpeg colour description of a stream (integers of AVColorPrimaries, AVColorTransfer-
    Characteristic, AVColorSpace, AVColorRange). 2 = unspecified for the first three,
    0 = unspecified range; 1/1/1/1 is BT.709 limited range; 9/16/9/1 is HDR10 (BT.2020, PQ);
    9/18/9/1 is HLG."""

    primaries: int = 2
    trc: int = 2
    space: int = 2
    range: int = 0

    @property
    def is_hdr(self) -> bool:
        """True for PQ (16) or HLG (18) transfer."""
        return self.trc in (16, 18)

    @property
    def full_range(self) -> bool:
        return self.range == 2

    @property
    def needs_conversion(self) -> bool:
        """True when the pixels are not BT.709/sRGB-like, which is what every method here
        works in: other primaries (BT.2020, BT.601, P3 ...) or another transfer (PQ, HLG,
        linear ...). Unspecified counts as BT.709, as players assume. The BT.601 and
        BT.2020 transfers are the BT.709 curve."""
        return self.primaries not in (1, 2) or self.trc not in (1, 2, 6, 13, 14, 15)

    @property
    def convertible(self) -> bool:
        """FFmpeg's ``colorspace`` filter converts these tags to and from BT.709 (SDR
        primaries and transfers; not PQ or HLG, see :class:`ColourConverter`)."""
        return (self.primaries in _CS_PRIMARIES or self.primaries == 2) and \
            (self.trc in _CS_TRC or self.trc == 2) and (self.space in _CS_SPACE or self.space == 2)

    def describe(self) -> str:
        names = {1: "BT.709", 4: "BT.470M", 5: "BT.601 (625)", 6: "BT.601 (525)", 9: "BT.2020",
                 11: "DCI-P3", 12: "Display P3"}
        trcs = {8: "linear", 13: "sRGB", 16: "PQ", 18: "HLG"}
        return " ".join(x for x in (names.get(self.primaries, f"primaries {self.primaries}"),
                                    trcs.get(self.trc, "")) if x)

    def filter_args(self, prefix: str) -> str:
        """``colorspace`` filter options describing these tags (``i`` prefix: input)."""
        return ":".join([f"{prefix}primaries={_CS_PRIMARIES.get(self.primaries, 'bt709')}",
                         f"{prefix}trc={_CS_TRC.get(self.trc, 'bt709')}",
                         f"{prefix}space={_CS_SPACE.get(self.space, 'bt709')}",
                         f"{prefix}range={'pc' if self.full_range else 'tv'}"])


# FFmpeg's colorspace filter names of the AVColorPrimaries / AVColorTransferCharacteristic /
# AVColorSpace values it handles
_CS_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
                 9: "bt2020", 11: "smpte431", 12: "smpte432"}
_CS_TRC = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
           13: "srgb", 11: "xvycc", 14: "bt2020-10", 15: "bt2020-12"}
_CS_SPACE = {1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020ncl"}


BT709 = ColorTags(1, 1, 1, 1)
HDR10 = ColorTags(9, 16, 9, 1)
HLG = ColorTags(9, 18, 9, 1)


class ColourConverter:
    """Primaries and transfer conversion between ``src`` and ``dst`` tags by FFmpeg's
    ``colorspace`` filter (linear-light matrix, exact for SDR transfers, ~1 ms a frame),
    in a filter graph built for the first frame and reused; frames come out as
    12-bit 4:4:4 YCbCr tagged ``dst``. Not used for PQ/HLG: the filter has no such
    transfer, and swscale's colour management, which has, rebuilds its tables on every
    PyAV call (~5 s a frame measured), and the PyAV wheels have no zscale."""

    def __init__(self, src: ColorTags, dst: ColorTags) -> None:
        self.src, self.dst = src, dst
        self._graph = None

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        if self._graph is None:
            g = av.filter.Graph()
            buf = g.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                               time_base=Fraction(1, 1))
            cs = g.add("colorspace", self.src.filter_args("i") + ":" + self.dst.filter_args("")
                       + ":format=yuv444p12")
            sink = g.add("buffersink")
            buf.link_to(cs)
            cs.link_to(sink)
            g.configure()
            self._graph = g
        frame.pts = 0
        self._graph.push(frame)
        return self._graph.pull()


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes:
        index: 0-based presentation-order index in the whole video.
        image: ``(H, W, 3)`` RGB, uint8 or uint16.
        pts: presentation timestamp in the reader's ``time_base`` (None if the container
            has none).
        time: pts in seconds (None when pts is None).
    """

    index: int
    image: np.ndarray
    pts: int | None
    time: float | None
    duration: int | None = None  # the packet's duration as FFmpeg reports it (time base of pts)


def _bit_depth(pix_fmt: str | None) -> int:
    if not pix_fmt:
        return 8
    try:
        fmt = av.VideoFormat(pix_fmt)
        return max(c.bits for c in fmt.components)
    except Exception:  # unknown/odd formats: assume 8
        return 8


def _open_input(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise BadInputError("file not found", path=path,
                            hint="check the path (quote names with spaces)", code="INPUT_MISSING")
    if path.is_dir():
        raise BadInputError("is a folder, not a video file", path=path,
                            hint="pass a video file, or read the folder as a frame sequence")
    try:
        return av.open(str(path), mode="r")
    except _AV_ERRORS as exc:
        raise BadInputError(f"not a readable video ({exc.__class__.__name__}: {exc.strerror or exc})",
                            path=path,
                            hint="check that the file is complete; re-encode it, e.g. "
                                 "ffmpeg -i IN -c:v libx264 -crf 12 OUT.mp4",
                            code="INPUT_CORRUPT") from exc


class ReaderBase:
    """What every reader (:class:`VideoReader`, :class:`tpn_cli.media.FrameFolderReader`)
    derives from its ``size`` (width, height) and ``frames(start, end)``, written once so
    the readers stay interchangeable."""

    size: tuple[int, int]

    def frames(self, start: int = 0, end: int | None = None) -> Iterator[Frame]:
        raise NotImplementedError  # pragma: no cover - every reader defines it

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()


class VideoReader(ReaderBase):
    """Metadata of a video file and streaming access to its frames.

    Opening reads only the header; :meth:`frames` opens its own decoder each time it is
    called, so several passes (e.g. key-frame checks, then processing) are possible and
    nothing stays open between them.

    Args:
        path: the video file.
        depth: 8 → uint8 images, 16 → uint16 images, ``"auto"`` → 16 when the source has
            more than 8 bits per sample, else 8.
        threads: decode with FFmpeg frame+slice threading.
        autorotate: rotate pixels by the stream's display rotation (then :attr:`size`
            is the rotated size and :attr:`rotation` still reports the tag). Default False:
            pixels as stored, and :class:`VideoWriter.like` carries the rotation tag over.

    A video is trusted only as far as it decodes: opening checks that its codec is known
    and that its first frame decodes, and a pass that ends before the frame count the
    container declares raises :class:`ShortVideoError` (naming both counts) unless
    ``allow_short`` is set, in which case :meth:`count_frames` gives the frames that do
    decode and :attr:`frame_count` follows it.

    Raises:
        BadInputError: missing, unreadable file, no video stream, a codec that cannot be
            opened, no frame that decodes.
    """

    def __init__(self, path: str | os.PathLike[str], *, depth: Literal["auto", 8, 16] = "auto",
                 threads: bool = True, autorotate: bool = False, allow_short: bool = False) -> None:
        self.path = Path(path)
        self.threads = threads
        self.autorotate = autorotate
        self.allow_short = allow_short
        with _open_input(self.path) as c:
            if not c.streams.video:
                raise BadInputError("has no video stream", path=self.path,
                                    hint="pass a video file (audio-only and image files are not videos)")
            s = c.streams.video[0]
            cc = s.codec_context
            if cc is None or not cc.name:  # a codec id FFmpeg has no decoder for (or a damaged one)
                raise BadInputError("its video stream's codec cannot be decoded (unknown or damaged "
                                    "codec id)", path=self.path, code="UNSUPPORTED_CODEC",
                                    hint="re-encode it with a common codec, e.g. ffmpeg -i IN -c:v "
                                         "libx264 -crf 12 OUT.mp4; `tpn doctor` lists the decoders")
            self.codec: str = cc.name
            self.pix_fmt: str | None = cc.pix_fmt
            self.bit_depth: int = _bit_depth(cc.pix_fmt)
            self._stored_size = (cc.width, cc.height)
            self.time_base: Fraction = s.time_base or Fraction(1, 90000)
            rate = s.average_rate or s.guessed_rate or s.base_rate
            if not rate:
                rate = Fraction(25)
            #: Nominal (average) frame rate; for VFR use the frames' pts.
            self.fps: Fraction = Fraction(rate)
            #: Container frame count metadata (0 = unknown).
            self.frames_metadata: int = int(s.frames or 0)
            self.duration: float | None = (float(s.duration * s.time_base)
                                           if s.duration and s.time_base else
                                           (c.duration / av.time_base if c.duration else None))
            self.start_pts: int | None = s.start_time
            self.color = ColorTags(int(cc.color_primaries), int(cc.color_trc),
                                   int(cc.colorspace), int(cc.color_range))
            self.has_audio: bool = bool(c.streams.audio)
            self.has_subtitles: bool = bool(c.streams.subtitles)
            #: Container metadata (title, ...), the video stream's (language, timecode, ...)
            #: and chapters: carried to outputs by :meth:`VideoWriter.like`.
            self.metadata: dict[str, str] = dict(c.metadata)
            self.stream_metadata: dict[str, str] = dict(s.metadata)
            self.chapters: list[dict] = list(c.chapters())
            #: Sample aspect ratio (pixel shape); 1 for square pixels or when unknown.
            self.sample_aspect_ratio: Fraction = Fraction(s.sample_aspect_ratio or 1)
        if depth == "auto":
            depth = 16 if self.bit_depth > 8 else 8
        if depth not in (8, 16):
            raise UsageError(f"depth must be 8, 16 or 'auto', not {depth!r}")
        self.depth: int = int(depth)
        self._count: int | None = None
        self._cfr: bool | None = None
        self._first: tuple[int, HdrStatic | None] = self._check_first_frame()

    def _check_first_frame(self) -> tuple[int, HdrStatic | None]:
        """The first frame must decode; it gives the display rotation and the HDR static
        metadata (None when its side data cannot be read)."""
        try:
            with _open_input(self.path) as c:
                first = next(c.decode(video=0), None)
        except _AV_ERRORS + (ValueError,) as exc:
            raise BadInputError(f"its first frame cannot be decoded ({exc})", path=self.path, frame=0,
                                hint="the file is damaged; re-encode or re-download it",
                                code="INPUT_CORRUPT") from exc
        if first is None:
            raise BadInputError("no frame of its video stream decodes", path=self.path,
                                hint="the file is damaged or empty; re-encode or re-download it",
                                code="INPUT_CORRUPT")
        try:
            hdr = HdrStatic.from_frame(first)
        except _AV_ERRORS:
            hdr = None
        return int(round(first.rotation or 0)), hdr

    # -- metadata -------------------------------------------------------------------------
    def _first_frame(self) -> tuple[int, HdrStatic | None]:
        """(rotation, HDR static metadata) of the first decoded frame (read at opening)."""
        return self._first

    @property
    def rotation(self) -> int:
        """Display rotation in degrees, counter-clockwise (-180..180), from the first frame."""
        return self._first_frame()[0]

    @property
    def hdr_static(self) -> HdrStatic | None:
        """HDR10 mastering display / light levels of the source (SEI or container), if any."""
        return self._first_frame()[1]

    @property
    def display_sample_aspect_ratio(self) -> Fraction:
        """The pixel shape of the images :meth:`frames` yields (inverted when they are
        rotated a quarter turn)."""
        sar = self.sample_aspect_ratio
        return 1 / sar if self.autorotate and self.rotation % 180 != 0 else sar

    @property
    def constant_rate(self) -> bool:
        """True when every timestamp lies on the 1/fps grid (to the time base's rounding),
        read from the packets, nothing decoded: timestamps then count whole frames, and
        outputs can state the real frame rate in the bitstream (:class:`VideoWriter`'s
        ``cfr``). A variable-frame-rate clip keeps its own time base."""
        if self._cfr is None:
            with _open_input(self.path) as c:
                s = c.streams.video[0]
                pts = [p.pts for p in c.demux(s) if p.pts is not None and p.size]
            step = 1 / (self.fps * self.time_base)
            self._cfr = bool(pts) and all(abs(p - round(p / step) * step) <= 1 for p in pts)
        return self._cfr

    @property
    def colour_note(self) -> str | None:
        """What :meth:`frames` does to colours that are not BT.709/sRGB (None: nothing)."""
        if not self.color.needs_conversion or not self.color.convertible:
            return None
        return (f"{self.path.name} is {self.color.describe()}: frames are converted to BT.709 "
                "(sRGB primaries) by FFmpeg's colorspace filter for the method; video outputs "
                "are converted back and tagged like the source")

    @property
    def colour_warning(self) -> str | None:
        """What cannot be converted (PQ, HLG and other transfers): said, not hidden."""
        if not self.color.needs_conversion or self.color.convertible:
            return None
        return (f"{self.path.name} is {self.color.describe()}: its code values are used as they "
                "are, without tone mapping to SDR (FFmpeg's colorspace filter has no PQ/HLG "
                "transfer, swscale's takes ~5 s a frame through PyAV); key-frames must be painted "
                "on frames extracted by tpn extract; outputs keep the source's tags")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the images :meth:`frames` yields."""
        w, h = self._stored_size
        if self.autorotate and self.rotation % 180 != 0:
            return h, w
        return w, h

    @property
    def frame_count(self) -> int:
        """Number of frames: counted by decoding once :meth:`count_frames` ran (always when
        the container declares none), else the container's declaration."""
        if self._count is None and self.frames_metadata > 0:
            return self.frames_metadata
        return self.count_frames()

    def count_frames(self) -> int:
        """Exact frame count by decoding the whole stream (no pixel conversion). Cached."""
        if self._count is None:
            n = 0
            with _open_input(self.path) as c:
                s = c.streams.video[0]
                if self.threads:
                    s.thread_type = "AUTO"
                try:
                    for _ in c.decode(s):
                        n += 1
                except _AV_ERRORS + (ValueError,) as exc:
                    raise BadInputError(f"decoding failed after {n} frames ({exc})", path=self.path,
                                        frame=n, hint="the file is damaged; re-encode or re-download it",
                                        code="INPUT_CORRUPT") from exc
            self._count = n
        return self._count

    def __repr__(self) -> str:
        return (f"VideoReader({str(self.path)!r}, {self.width}x{self.height}, fps={self.fps}, "
                f"time_base={self.time_base}, codec={self.codec}, pix_fmt={self.pix_fmt})")

    # -- frames ---------------------------------------------------------------------------
    def _to_rgb(self, frame: av.VideoFrame, convert: ColourConverter | None = None) -> np.ndarray:
        fmt = "rgb48le" if self.depth == 16 else "rgb24"
        kw = {}
        if frame.color_range == 2 or (frame.format.name or "").startswith("yuvj"):
            kw["src_color_range"] = "JPEG"
        if convert is not None:
            img = convert(frame).to_ndarray(format=fmt)  # BT.709, tagged so
        else:
            img = frame.to_ndarray(format=fmt, **kw)
        if self.autorotate:
            rot = int(round(frame.rotation or 0)) % 360
            if rot:
                img = np.ascontiguousarray(np.rot90(img, k=rot // 90))
        return img

    def _decoded(self, start: int, end: int | None) -> Iterator[tuple[int, av.VideoFrame, Fraction]]:
        """(index, decoded frame, time base) for ``start <= index < end``; earlier frames
        are decoded and dropped (exact indices, no seeking)."""
        if start < 0 or (end is not None and end < start):
            raise UsageError(f"bad frame range start={start} end={end}",
                             hint="use 0 <= start <= end")
        index = 0
        # the frames this pass must reach: an end past the declared count is clamped
        # (callers pass frame_count-based ends), an unknown count checks nothing
        declared = self.frame_count if self._count is not None or self.frames_metadata > 0 else None
        must = declared if end is None or declared is None else min(end, declared)
        with _open_input(self.path) as c:
            s = c.streams.video[0]
            if self.threads:
                s.thread_type = "AUTO"
            it = c.decode(s)
            while end is None or index < end:
                try:
                    f = next(it)
                except StopIteration:
                    if must is not None and index < must and not self.allow_short:
                        raise ShortVideoError(self.path, declared, index) from None
                    break
                except _AV_ERRORS + (ValueError,) as exc:
                    raise BadInputError(f"cannot decode the frame ({exc})", path=self.path, frame=index,
                                        hint="the file is damaged; re-encode it, or use --end to stop "
                                             "before this frame", code="INPUT_CORRUPT") from exc
                if index >= start:
                    yield index, f, s.time_base
                index += 1

    def frames(self, start: int = 0, end: int | None = None) -> Iterator[Frame]:
        """Yield frames ``start <= index < end`` in presentation order.

        Frames before ``start`` are decoded and dropped (exact indices, no seeking).

        Raises:
            BadInputError: a frame cannot be decoded (names the frame index).
        """
        c = self.color  # one converter per pass: passes may run side by side in threads
        convert = ColourConverter(c, BT709) if c.needs_conversion and c.convertible else None
        for index, f, tb in self._decoded(start, end):
            pts = f.pts
            yield Frame(index=index, image=self._to_rgb(f, convert), pts=pts,
                        time=float(pts * tb) if pts is not None and tb else None,
                        duration=f.duration or None)

    def thumbnails(self, width: int, height: int, start: int = 0,
                   end: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, gray)`` for frames ``start <= index < end``: luminance only,
        area-averaged to ``width`` × ``height`` uint8 (aspect ratio not kept).

        A cheap pass for content analysis (:mod:`tpn_cli.shots`): FFmpeg scales the luma
        plane straight down, so no full-size RGB frame is made. Orientation is the stored
        one (the analysis does not depend on it).

        Raises:
            BadInputError: a frame cannot be decoded (names the frame index).
        """
        for index, f, _ in self._decoded(start, end):
            yield index, f.reformat(width=width, height=height, format="gray",
                                    interpolation="AREA").to_ndarray()

    def read(self, index: int) -> Frame:
        """Decode the frame at ``index`` (decodes from the start: for a few checks only)."""
        for f in self.frames(index, index + 1):
            return f
        raise BadInputError(f"frame {index} is past the end of the video", path=self.path,
                            hint=f"the video has {self.count_frames()} frames (0-based indices)",
                            code="FRAME_OUT_OF_RANGE")


#: Tags that describe the old file rather than the content (the muxer writes its own, or
#: they would be wrong: mkvmerge's statistics, durations, encoder names).
_NOT_CARRIED = ("encoder", "major_brand", "minor_version", "compatible_brands", "duration",
                "handler_name", "vendor_id", "creation_time", "bps", "number_of_", "_statistics")


def _carried_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The metadata tags that still hold for a re-encoded copy (title, language, timecode,
    artist, comment ...). Matroska's upper-case names are lowered, as MP4 expects."""
    out = {}
    for k, v in tags.items():
        low = k.lower()
        if not any(low == n or low.startswith(n) or low.endswith(n) for n in _NOT_CARRIED):
            out[low] = v
    return out


class ShortVideoError(BadInputError):
    """The container declares more frames than its stream decodes (a cut or damaged file)."""

    def __init__(self, path: Path, declared: int, decoded: int) -> None:
        super().__init__(f"declares {declared} frames but only {decoded} decode", path=path,
                         frame=decoded, code="SHORT_VIDEO",
                         hint=f"the file is cut short or damaged: re-encode or re-download it; "
                              f"colorize, hdr and segment process the {decoded} frames that "
                              "decode with --allow-short-input (and a warning)")
        self.declared, self.decoded = declared, decoded


def _container_accepts(fmt_name: str, codec: str) -> bool:
    names = set(fmt_name.split(","))
    if names & {"matroska", "webm"}:
        return "webm" not in names or codec in {"opus", "vorbis", "webvtt"}
    if "mov" in names:
        return codec in _MOV_OK
    if names & {"mp4", "m4a", "3gp", "3g2", "mj2", "ipod", "psp"}:
        return codec in _MP4_OK
    return True


class VideoWriter(Transactional):
    """Encode RGB frames to a video file, keeping timing, colour tags and other streams.

    The frame rate, time base and pts should come from the source (see :meth:`like`), so
    that 29.97 fps and variable-frame-rate inputs keep their timestamps. Audio and subtitle
    streams of ``copy_streams_from`` are remuxed packet by packet (bit-exact), interleaved
    with the video by time. Streams the target container cannot hold are skipped and
    listed in :attr:`warnings`.

    Args:
        path: the target file; its extension picks the container.
        width, height: frame size (images passed to :meth:`write` must match).
        fps: nominal frame rate (``Fraction``; 30000/1001 for 29.97).
        time_base: time base of the pts given to :meth:`write` (default ``1/fps``).
        codec: FFmpeg encoder, default ``libx264``.
        crf: quality for libx264/libx265/libsvtav1/libvpx-vp9 (lower = better; 16 is
            visually lossless for x264). Ignored for lossless codecs.
        preset: encoder speed preset (x264/x265), default ``medium``.
        pix_fmt: encoded pixel format; ``yuv420p`` (default, plays everywhere),
            ``yuv444p`` to keep full chroma, ``yuv420p10le`` etc. Odd sizes with a
            subsampled format fall back to ``yuv444p`` (noted in :attr:`warnings`).
        options: extra encoder options (strings), merged over the defaults.
        color: colour tags to write; the RGB→YCbCr matrix and range follow them
            (default BT.709 limited range).
        rotation: display rotation tag in degrees (counter-clockwise).
        copy_streams_from: a file whose audio and subtitle streams are copied.
        copy_audio, copy_subtitles: switch the copies off.
        overwrite: replace an existing target.
        codec_tag: e.g. ``"hvc1"`` (default for HEVC in MP4/MOV, for Apple players).
        sample_aspect_ratio: pixel shape (anamorphic sources), written to the stream.
        metadata, stream_metadata: container tags (title ...) and video stream tags
            (language, timecode: MP4/MOV then get a timecode track) to write.
        chapters: chapters as :meth:`av.container.Container.chapters` gives them.
        hdr_static: HDR10 mastering display / light levels, written as SEI (x264/x265)
            and as container metadata (MP4/MOV boxes, Matroska MasteringMetadata).
        cfr: every pts lies on the ``1/fps`` grid: the encoder then counts in frames
            (``time_base = 1/fps``), so the bitstream's timing (H.264/HEVC VUI) states the
            real frame rate instead of one tick of the source's time base.

    Chroma siting: swscale (and :func:`tpn_cli.media.hdr.rgb_to_yuv420p10`) subsample
    4:2:0 by averaging 2×2 blocks, i.e. chroma sited at the block centre, so the stream
    says ``center`` (H.264/HEVC VUI chroma_sample_loc_type 1, Matroska ChromaSiting);
    unsigned, players would assume left siting.

    Raises:
        OutputNotWritableError: target exists (without overwrite), folder not writable,
            encoder/muxer failure while writing.
    """

    def __init__(self, path: str | os.PathLike[str], *, width: int, height: int,
                 fps: Fraction | int | float | str, time_base: Fraction | None = None,
                 codec: str = "libx264", crf: int | None = 16, preset: str | None = "medium",
                 pix_fmt: str = "yuv420p", options: Mapping[str, str] | None = None,
                 color: ColorTags | None = None, rotation: int = 0,
                 copy_streams_from: str | os.PathLike[str] | None = None,
                 copy_audio: bool = True, copy_subtitles: bool = True,
                 overwrite: bool = False, codec_tag: str | None = None,
                 sample_aspect_ratio: Fraction | None = None,
                 metadata: Mapping[str, str] | None = None,
                 stream_metadata: Mapping[str, str] | None = None,
                 chapters: list[dict] | None = None, hdr_static: HdrStatic | None = None,
                 cfr: bool = False) -> None:
        self.target = Path(path)
        self.width, self.height = int(width), int(height)
        self.fps = Fraction(fps).limit_denominator(1_000_000) if not isinstance(fps, Fraction) else fps
        self.time_base = Fraction(time_base) if time_base else 1 / self.fps
        # the encoder's time base: frames (see ``cfr``) or the pts' own unit
        self._enc_tb = 1 / self.fps if cfr else self.time_base
        self.color = color or BT709
        self._convert = (ColourConverter(BT709, self.color)
                         if self.color.needs_conversion and self.color.convertible else None)
        self.hdr_static = hdr_static
        self.warnings: list[str] = []
        self.frames_written = 0
        self._last_pts: int | None = None
        self._durations: dict[int, int] = {}  # encoder pts → duration, for the packets
        if width <= 0 or height <= 0:
            raise UsageError(f"bad output size {width}x{height}", path=self.target)
        if (width % 2 or height % 2) and pix_fmt.startswith(("yuv420", "yuv422", "nv12")):
            self.warnings.append(f"{width}x{height} has an odd side: encoding {pix_fmt} is impossible, "
                                 "using yuv444p instead")
            pix_fmt = "yuv444p" if _bit_depth(pix_fmt) == 8 else "yuv444p10le"
        self.pix_fmt = pix_fmt
        self._atomic = AtomicPath(self.target, overwrite=overwrite)
        self._src: av.container.InputContainer | None = None
        self._out: av.container.OutputContainer | None = None
        fmt = self._guess_format(self.target)
        # Matroska cannot start a stream before 0 unless told: by default FFmpeg shifts
        # every stream by the copied AAC's priming (-21 ms), so the video would start at
        # 0.021 s; keep the source's timestamps instead (MP4 has edit lists for this)
        copts = {"avoid_negative_ts": "disabled"} if fmt in ("matroska", "webm") else {}
        try:
            self._out = av.open(str(self._atomic.path), mode="w", format=fmt,
                                container_options=copts)
            self._setup_video(codec, crf, preset, options, rotation, codec_tag, sample_aspect_ratio)
            if copy_streams_from is not None and (copy_audio or copy_subtitles):
                self._setup_copies(Path(copy_streams_from), copy_audio, copy_subtitles)
            self._setup_metadata(metadata, stream_metadata, chapters)
        except BaseException:
            self.abort()
            raise

    # -- construction helpers -------------------------------------------------------------
    @staticmethod
    def _guess_format(target: Path) -> str | None:
        ext = target.suffix.lower()
        return {".mkv": "matroska", ".webm": "webm", ".mp4": "mp4", ".m4v": "mp4",
                ".mov": "mov", ".ts": "mpegts", ".mts": "mpegts", ".avi": "avi"}.get(ext)

    def _setup_video(self, codec, crf, preset, options, rotation, codec_tag, sar) -> None:
        opts: dict[str, str] = {"chroma_sample_location": "center"}  # see the class doc
        if self.hdr_static is None and self.color.trc == 16:
            self.warnings.append("the output is PQ (HDR10) like the source, which has no mastering "
                                 "display or light-level metadata to carry: players will guess them")
        if self.hdr_static is not None:
            sei = self.hdr_static.encoder_options(codec)
            if not sei:
                self.warnings.append(f"{codec} cannot write the source's HDR10 mastering display "
                                     "and light levels into the bitstream (SEI); only the "
                                     "container carries them (use libx265 or libx264 for both)")
            opts.update(sei)
        if codec in ("libx264", "libx265"):
            if crf is not None:
                opts["crf"] = str(crf)
            if preset:
                opts["preset"] = preset
        elif codec == "libsvtav1":
            if crf is not None:
                opts["crf"] = str(crf)
        elif codec == "libvpx-vp9":
            if crf is not None:
                opts.update({"crf": str(crf), "b": "0"})
        for k, v in (options or {}).items():
            if k in ("x265-params", "x264-params") and opts.get(k):
                opts[k] = f"{opts[k]}:{v}"  # both say something: later entries win
            else:
                opts[k] = str(v)
        if codec == "libx265":
            params = opts.get("x265-params", "")
            if "log-level" not in params:
                opts["x265-params"] = ":".join(p for p in (params, "log-level=error") if p)
        try:
            vs = self._out.add_stream(codec, rate=self.fps, options=opts)
        except _AV_ERRORS + (ValueError,) as exc:
            raise UsageError(f"encoder {codec!r} is not available ({exc})", path=self.target,
                             hint="choose another codec, e.g. libx264, libx265, ffv1") from exc
        vs.width, vs.height = self.width, self.height
        vs.pix_fmt = self.pix_fmt
        cc = vs.codec_context
        cc.time_base = self._enc_tb
        cc.framerate = self.fps
        cc.thread_count = 0
        if sar and sar != 1:
            cc.sample_aspect_ratio = Fraction(sar)
        c = self.color
        if c.primaries != 2:
            cc.color_primaries = c.primaries
        if c.trc != 2:
            cc.color_trc = c.trc
        if c.space != 2:
            cc.colorspace = c.space
        cc.color_range = c.range if c.range else 1
        tag = codec_tag
        if tag is None and codec in ("libx265", "hevc") and self._out.format.name in ("mp4", "mov"):
            tag = "hvc1"
        if tag:
            cc.codec_tag = tag
        if rotation:
            vs.set_display_rotation(rotation)
        self._vs = vs

    def _setup_copies(self, src: Path, audio: bool, subs: bool) -> None:
        self._src = _open_input(src)
        wanted = []
        if audio:
            wanted += list(self._src.streams.audio)
        if subs:
            wanted += list(self._src.streams.subtitles)
        self._copy_map = {}
        fmt = self._out.format.name
        for s in wanted:
            name = s.codec_context.name if s.codec_context is not None else (
                s.codec.name if getattr(s, "codec", None) else "?")
            if not _container_accepts(fmt, name):
                self.warnings.append(f"{s.type} stream #{s.index} ({name}) cannot be stored in "
                                     f"{self.target.suffix}; skipped (use .mkv to keep it)")
                continue
            try:
                self._copy_map[s.index] = out = self._out.add_stream_from_template(s)
            except _AV_ERRORS + (ValueError,) as exc:
                self.warnings.append(f"{s.type} stream #{s.index} ({name}) not copied: {exc}")
                continue
            out.metadata.update(_carried_tags(s.metadata))  # language, title (not copied by FFmpeg)
            out.disposition = s.disposition
        if self._copy_map:
            srcs = [s for s in self._src.streams if s.index in self._copy_map]
            self._packets = self._src.demux(*srcs)
            self._pending = None
        else:
            self._src.close()
            self._src = None

    def _setup_metadata(self, metadata, stream_metadata, chapters) -> None:
        self._out.metadata.update(_carried_tags(metadata or {}))
        # a "timecode" tag becomes a timecode track in MP4/MOV and a TIMECODE tag in Matroska
        self._vs.metadata.update(_carried_tags(stream_metadata or {}))
        if chapters:
            try:
                self._out.set_chapters(chapters)
            except _AV_ERRORS + (ValueError, TypeError) as exc:
                self.warnings.append(f"chapters not written ({exc})")

    @classmethod
    def like(cls, reader: VideoReader, path: str | os.PathLike[str], *,
             width: int | None = None, height: int | None = None,
             keep_chroma: bool = False, same_timeline: bool = True, **kw) -> "VideoWriter":
        """A writer matching ``reader``: size, fps, time base, colour tags, rotation tag,
        pixel aspect, metadata, chapters, HDR10 static metadata, and audio/subtitle copies
        from the same file. ``keep_chroma=True`` keeps a 4:4:4 (or 4:2:2) source's chroma
        layout instead of the 4:2:0 default. ``same_timeline=False`` (a frame range of
        the source) drops what would no longer line up: chapters and the timecode.
        Keyword arguments override any of these (see the class arguments)."""
        kw.update(cls.carried(reader, same_timeline, **kw))
        kw.setdefault("fps", reader.fps)
        kw.setdefault("time_base", reader.time_base)
        kw.setdefault("color", reader.color)
        if not reader.autorotate:
            kw.setdefault("rotation", reader.rotation)
        kw.setdefault("copy_streams_from", reader.path)
        if reader.color.is_hdr:
            kw.setdefault("hdr_static", reader.hdr_static)
        if keep_chroma and "pix_fmt" not in kw and reader.pix_fmt:
            if reader.pix_fmt.startswith(("yuv444", "yuvj444")):
                kw["pix_fmt"] = "yuv444p" if reader.bit_depth == 8 else "yuv444p10le"
            elif reader.pix_fmt.startswith(("yuv422", "yuvj422")):
                kw["pix_fmt"] = "yuv422p" if reader.bit_depth == 8 else "yuv422p10le"
        return cls(path, width=width or reader.width, height=height or reader.height, **kw)

    @staticmethod
    def carried(reader: VideoReader, same_timeline: bool = True, **given) -> dict:
        """The writer arguments that carry ``reader``'s pixel aspect, metadata, chapters and
        frame-rate grid (those not in ``given``); shared with the HDR video writer."""
        tags = dict(reader.stream_metadata)
        if not same_timeline:
            tags = {k: v for k, v in tags.items() if k.lower() != "timecode"}
        out = {"sample_aspect_ratio": reader.display_sample_aspect_ratio,
               "metadata": reader.metadata, "stream_metadata": tags,
               "chapters": reader.chapters if same_timeline else None,
               "cfr": reader.constant_rate}
        return {k: v for k, v in out.items() if k not in given}

    # -- writing --------------------------------------------------------------------------
    def _mux(self, packets) -> None:
        for p in packets if isinstance(packets, list) else [packets]:
            # encoders do not pass the frame's duration on: the muxer would otherwise
            # guess the last frame's (a VFR clip's last frame then lasts too long)
            if p.stream is self._vs and p.pts in self._durations:
                p.duration = self._durations.pop(p.pts)
        try:
            self._out.mux(packets)
        except OSError as exc:
            raise OutputNotWritableError(f"writing failed: {exc.strerror or exc}", path=self.target,
                                         hint="check free disk space and permissions") from exc
        except _AV_ERRORS as exc:
            raise OutputNotWritableError(f"the muxer refused the output ({exc})", path=self.target,
                                         hint="try another container (.mkv accepts most streams) "
                                              "or drop the audio/subtitle copy") from exc

    def _pump(self, until: float | None) -> None:
        """Mux copied packets whose time is <= ``until`` seconds (None: all)."""
        if self._src is None:
            return
        while True:
            if self._pending is None:
                try:
                    self._pending = next(self._packets)
                except StopIteration:
                    self._src.close()
                    self._src = None
                    return
            p = self._pending
            if p.size == 0:  # demuxer flush packet
                self._pending = None
                continue
            ts = p.dts if p.dts is not None else p.pts
            if until is not None and ts is not None and p.time_base is not None \
                    and float(ts * p.time_base) > until:
                return
            p.stream = self._copy_map[p.stream.index]
            self._mux(p)
            self._pending = None

    def _frame_from_rgb(self, image: np.ndarray) -> av.VideoFrame:
        if image.ndim != 3 or image.shape[2] != 3:
            raise UsageError(f"expected an (H, W, 3) RGB image, got shape {image.shape}",
                             path=self.target)
        if image.shape[:2] != (self.height, self.width):
            raise UsageError(f"frame size {image.shape[1]}x{image.shape[0]} differs from the "
                             f"output size {self.width}x{self.height}", path=self.target)
        if image.dtype == np.uint8:
            fmt = "rgb24"
        elif image.dtype == np.uint16:
            fmt = "rgb48le"
        else:
            raise UsageError(f"expected uint8 or uint16 pixels, got {image.dtype}", path=self.target)
        f = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
        c = self.color
        space = c.space if c.space in (1, 4, 5, 6, 7, 9, 10) else None
        if self._convert is not None:
            # back from BT.709, which the pixels are in (see VideoReader), to the tags'
            # primaries and transfer; swscale then only subsamples
            f = f.reformat(format="yuv444p12le", dst_colorspace=1, dst_color_range="MPEG")
            f = self._convert(f)
        return f.reformat(format=self.pix_fmt, dst_colorspace=space,
                          dst_color_range="JPEG" if c.full_range else "MPEG")

    def write(self, image: np.ndarray, pts: int | None = None, duration: int | None = None) -> None:
        """Encode one RGB frame (uint8 or uint16, ``(H, W, 3)``).

        Args:
            pts: timestamp in :attr:`time_base` (pass the source frame's pts). Default:
                ``frames_written / fps``. Must increase from frame to frame.
            duration: how long the frame shows, in :attr:`time_base` (pass the source
                frame's; default: the muxer's guess from the frame rate).
        """
        self.write_frame(self._frame_from_rgb(image), pts, duration)

    def write_frame(self, frame: av.VideoFrame, pts: int | None = None,
                    duration: int | None = None) -> None:
        """Encode an already converted :class:`av.VideoFrame` (in :attr:`pix_fmt`)."""
        if self._out is None:
            raise UsageError("writer is closed", path=self.target)
        if pts is None:
            pts = int(round(self.frames_written / self.fps / self.time_base))
        pts = int(pts)
        if self._last_pts is not None and pts <= self._last_pts:
            raise UsageError(f"pts {pts} does not increase (previous {self._last_pts})",
                             path=self.target, frame=self.frames_written,
                             hint="write frames in presentation order with their source pts")
        frame.pts = int(round(pts * self.time_base / self._enc_tb))
        frame.time_base = self._enc_tb
        if duration:
            self._durations[frame.pts] = max(1, int(round(duration * self.time_base / self._enc_tb)))
        try:
            packets = self._vs.encode(frame)
        except _AV_ERRORS as exc:
            raise OutputNotWritableError(f"encoding failed ({exc})", path=self.target,
                                         frame=self.frames_written,
                                         hint="try another --codec or pixel format") from exc
        self._mux(packets)
        self._last_pts = pts
        self.frames_written += 1
        self._pump(float(pts * self.time_base))

    # -- finishing ------------------------------------------------------------------------
    def _flush_encoder(self) -> None:
        """Mux the frames the encoder still holds."""
        self._mux(self._vs.encode())

    def close(self) -> Path:
        """Flush the encoder, copy the remaining audio/subtitle packets, rename into place.

        Returns the final path. On failure the temporary file is deleted."""
        if self._out is None:
            return self.target
        try:
            self._flush_encoder()
            self._pump(None)
            try:
                self._out.close()  # writes the trailer (MP4: the whole sample index)
            except OSError as exc:  # a full disk here is the output's failure, not a bug
                raise OutputNotWritableError(f"writing failed: {exc.strerror or exc}", path=self.target,
                                             hint="check free disk space and permissions") from exc
            self._out = None
            if self.hdr_static is not None:
                self._add_hdr_boxes()
            return self._atomic.commit()
        except BaseException:
            self.abort()
            raise

    def _add_hdr_boxes(self) -> None:
        """Put :attr:`hdr_static` into the container (see :mod:`.hdrmeta` for why this
        way): MP4/MOV get the boxes in place; any other container is remuxed by FFmpeg
        from a video-only MP4 that has them (its muxer then writes its own form, e.g.
        Matroska's MasteringMetadata)."""
        path = self._atomic.path
        payload = self.hdr_static.boxes()
        if self._guess_format(self.target) in ("mp4", "mov"):
            if not add_mp4_boxes(path, payload):
                self.warnings.append("HDR10 mastering metadata not added to the MP4 container")
            return
        boxed = path.with_name(path.name + ".hdr.mp4")
        remuxed = path.with_name(path.name + ".hdr" + self.target.suffix)
        try:
            with av.open(str(path)) as src:
                v = src.streams.video[0]
                with av.open(str(boxed), "w", format="mp4") as out:
                    t = out.add_stream_from_template(v)
                    for p in src.demux(v):
                        if p.size:
                            p.stream = t
                            out.mux(p)
            if not add_mp4_boxes(boxed, payload):
                raise ValueError("no MP4 sample entry for this codec")
            with av.open(str(path)) as src, av.open(str(boxed)) as vsrc, \
                    av.open(str(remuxed), "w", format=self._guess_format(self.target),
                            container_options={"avoid_negative_ts": "disabled"}) as out:
                out.metadata.update(_carried_tags(src.metadata))
                if src.chapters():
                    out.set_chapters(src.chapters())
                to = {}  # (from the boxed MP4?, stream index) → output stream
                for s in src.streams:
                    vs = vsrc.streams.video[0] if s.type == "video" else s
                    to[s.type == "video", vs.index] = o = out.add_stream_from_template(vs)
                    o.metadata.update(_carried_tags(s.metadata))
                    o.disposition = s.disposition

                def tagged(container, boxed):
                    for p in container.demux():
                        if p.size and (boxed or p.stream.type != "video"):
                            t = p.dts if p.dts is not None else (p.pts or 0)
                            yield float(t * p.time_base), to[boxed, p.stream.index], p

                for _, o, p in heapq.merge(tagged(src, False), tagged(vsrc, True),
                                           key=lambda x: x[0]):
                    p.stream = o
                    out.mux(p)
            os.replace(remuxed, path)
        except (*_AV_ERRORS, ValueError, OSError) as exc:
            self.warnings.append(f"HDR10 mastering metadata not added to the "
                                 f"{self.target.suffix} container ({exc}); the SEI still has it")
        finally:
            for p in (boxed, remuxed):
                p.unlink(missing_ok=True)

    def abort(self) -> None:
        """Stop and delete the temporary file (idempotent). The target is left untouched."""
        for c in (self._out, self._src):
            if c is not None:
                try:
                    c.close()
                except Exception:
                    pass
        self._out = self._src = None
        self._atomic.abort()

