"""HDR radiance in and out: OpenEXR, Radiance .hdr, HDR10 (PQ) and HLG HEVC video.

Radiance images are ``float32`` arrays ``(H, W, 3)``, linear, BT.709/sRGB primaries,
*relative*: 1.0 is the LDR clip level (HDRCNN's convention). For PQ video, relative
1.0 maps to ``paper_white`` nits (default 203, ITU-R BT.2408 HDR reference white).

Libraries (notes for the README):

* EXR uses the PyPI ``OpenEXR`` package (>= 3.3, numpy API, binary wheels, BSD-3).
  PyAV's EXR decoder cannot convert half-float frames without clipping to [0, 1] and
  imageio's EXR plugin downloads FreeImage at run time, so neither is usable offline for
  radiance. ``OpenEXR`` is imported lazily: only EXR users need it.
* Radiance ``.hdr`` uses PyAV's ``hdr`` decoder/encoder (already a dependency; unclipped
  float32), so no OpenCV is needed.
* PQ / HLG transfer functions and the BT.709→BT.2020 matrix come from
  :mod:`tpn_cli.colour` (one implementation in the project).

HDR10 needs MaxCLL/MaxFALL in the stream headers before the first frame is encoded,
but they must be measured on the whole output. :class:`HdrVideoWriter` therefore
writes the already PQ-encoded 10-bit frames to a lossless FFV1 temporary next to the
target (first pass, streaming), then transcodes it to HEVC with the measured values
(second pass). Pass ``max_cll=(cll, fall)`` to skip the intermediate.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, Mapping

import av
import numpy as np
import torch

from .. import colour
from ..errors import BadInputError, OutputNotWritableError, UsageError
from .atomic import AtomicPath, Transactional, check_output_path
from .hdrmeta import HdrStatic
from .frames import check_image_size
from .video import HDR10, HLG, VideoWriter

# contextlib.redirect_stdout swaps the process-wide sys.stdout: two threads redirecting at
# once (the pipeline reads EXR keys while its sink writes EXR frames) restore each other's
# target, and tpn's --json object then lands on stderr. One redirect at a time.
_OPENEXR_PRINTS = threading.Lock()


@contextlib.contextmanager
def _openexr_prints_to(target):
    """Send what OpenEXR's binding prints (its warnings, with Python's print) to
    ``target`` instead of sys.stdout, which carries tpn's --json object."""
    with _OPENEXR_PRINTS, contextlib.redirect_stdout(target):
        yield

__all__ = [
    "HDR_EXTENSIONS",
    "MASTER_DISPLAY_BT2020",
    "MASTER_DISPLAY_P3_D65",
    "HdrVideoWriter",
    "LightLevel",
    "check_finite",
    "read_exr",
    "read_hdr_image",
    "read_radiance_hdr",
    "rgb_to_yuv420p10",
    "sdr_preview",
    "write_exr",
    "write_radiance_hdr",
]

HDR_EXTENSIONS = frozenset({".exr", ".hdr", ".pic"})

#: SMPTE ST 2086 mastering display strings for x265 (chromaticities ×50000); luminance
#: ``L(max,min)`` is appended from ``peak_nits``/``min_nits`` in units of 0.0001 cd/m².
MASTER_DISPLAY_P3_D65 = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)"
MASTER_DISPLAY_BT2020 = "G(8500,39850)B(6550,2300)R(35400,14600)WP(15635,16450)"

_BT709_TO_BT2020 = colour.BT709_TO_BT2020.double().numpy().astype(np.float32)
_KR, _KG, _KB = 0.2627, 0.6780, 0.0593  # BT.2020 non-constant luminance


# ----------------------------------------------------------------------------------------
# checks
# ----------------------------------------------------------------------------------------
def check_finite(image: np.ndarray, path: str | os.PathLike[str] | None = None,
                 frame: int | None = None) -> np.ndarray:
    """Return ``image`` unchanged if every value is finite, else raise.

    Raises:
        BadInputError: names the file (and frame), the number of NaN and Inf values and
            the first bad pixel, with the fix.
    """
    finite = np.isfinite(image)
    if finite.all():
        return image
    n_nan = int(np.isnan(image).sum())
    n_inf = int(np.isinf(image).sum())
    y, x = np.argwhere(~finite)[0][:2]
    raise BadInputError(
        f"contains {n_nan} NaN and {n_inf} Inf values (first at x={x}, y={y})",
        path=path, frame=frame,
        hint="replace non-finite pixels in your compositing tool (e.g. clamp, or Nuke "
             "'Expression: isnan(r)?0:r') and export again",
        code="NONFINITE_PIXELS")


# ----------------------------------------------------------------------------------------
# EXR
# ----------------------------------------------------------------------------------------
def _openexr():
    try:
        import OpenEXR  # noqa: PLC0415 - optional, heavy
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise UsageError("reading/writing EXR needs the OpenEXR package",
                         hint="pip install 'OpenEXR>=3.3'") from exc
    return OpenEXR


def read_exr(path: str | os.PathLike[str], *, check: bool = True) -> np.ndarray:
    """Read an OpenEXR image as float32 ``(H, W, 3)`` RGB.

    Accepts RGB/RGBA (alpha dropped), a lone Y channel (replicated), layered names
    (``beauty.R`` ...: the first RGB layer). Luminance-chroma (Y/RY/BY) files are
    refused with a fix.

    Raises:
        BadInputError: missing or unreadable file, no usable channels, NaN/Inf values
            (when ``check``).
    """
    OpenEXR = _openexr()
    path = Path(path)
    if not path.is_file():
        raise BadInputError("file not found", path=path, hint="check the path", code="INPUT_MISSING")
    # OpenEXR's binding prints its warnings about a damaged file with Python's print, i.e.
    # on sys.stdout, which carries tpn's --json object: catch them, and put them in the
    # error message (they say more than the exception) or on stderr
    said = io.StringIO()
    try:
        with _openexr_prints_to(said):
            # the header first: a damaged data window must not make OpenEXR allocate it
            with OpenEXR.File(str(path), header_only=True) as f:
                lo, hi = f.header()["dataWindow"]
            check_image_size(int(hi[0]) - int(lo[0]) + 1, int(hi[1]) - int(lo[1]) + 1, path)
            with OpenEXR.File(str(path)) as f:
                chans = {k: v.pixels for k, v in f.channels().items()}
    except BadInputError:
        raise
    except Exception as exc:  # OpenEXR raises plain RuntimeError/Exception
        detail = " ".join(said.getvalue().split()) or str(exc)
        raise BadInputError(f"not a readable EXR file ({detail})", path=path,
                            hint="check that the file is complete; re-export it",
                            code="INPUT_CORRUPT") from exc
    if said.getvalue():
        sys.stderr.write(said.getvalue())
    img = None
    for name in sorted(chans, key=lambda n: (n.count("."), n)):
        base = name.rsplit(".", 1)[-1]
        if base in ("RGB", "RGBA"):
            img = chans[name][..., :3]
            break
    if img is None:
        if {"Y", "RY", "BY"} <= set(chans):
            raise BadInputError("is a luminance/chroma (Y, RY, BY) EXR", path=path,
                                hint="convert it to RGB first, e.g. exrmultipart or "
                                     "oiiotool IN --ch R,G,B -o OUT.exr")
        if "Y" in chans:
            img = np.repeat(chans["Y"][..., None], 3, axis=2)
        elif {"R", "G", "B"} <= set(chans):
            img = np.stack([chans["R"], chans["G"], chans["B"]], axis=2)
        else:
            raise BadInputError(f"has no RGB or Y channels (found: {', '.join(sorted(chans))})",
                                path=path, hint="export the image with R, G, B channels")
    img = np.ascontiguousarray(img, dtype=np.float32)
    if check:
        check_finite(img, path)
    return img


_EXR_COMPRESSION = {"none": "NO_COMPRESSION", "rle": "RLE_COMPRESSION", "zips": "ZIPS_COMPRESSION",
                    "zip": "ZIP_COMPRESSION", "piz": "PIZ_COMPRESSION", "pxr24": "PXR24_COMPRESSION",
                    "b44": "B44_COMPRESSION", "dwaa": "DWAA_COMPRESSION", "dwab": "DWAB_COMPRESSION",
                    "zstd": "ZSTD_COMPRESSION"}


def write_exr(path: str | os.PathLike[str], image: np.ndarray, *, half: bool = True,
              compression: str = "zip", overwrite: bool = False) -> Path:
    """Write float RGB ``(H, W, 3)`` as an EXR (half-float ZIP by default), atomically.

    Values above 65504 (the half-float maximum) are clipped to it when ``half``.

    Raises:
        OutputNotWritableError: exists without ``overwrite``, or cannot be written.
        UsageError: wrong shape or unknown compression.
    """
    OpenEXR = _openexr()
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise UsageError(f"expected (H, W, 3) RGB, got shape {image.shape}", path=path)
    try:
        comp = getattr(OpenEXR, _EXR_COMPRESSION[compression.lower()])
    except (KeyError, AttributeError) as exc:
        raise UsageError(f"unknown EXR compression {compression!r}", path=path,
                         hint=f"use one of {', '.join(_EXR_COMPRESSION)}") from exc
    arr = np.asarray(image, dtype=np.float32)
    if half:
        arr = np.clip(arr, -65504.0, 65504.0).astype(np.float16)
    name = "RGB" if arr.shape[2] == 3 else "RGBA"
    header = {"compression": comp, "type": OpenEXR.scanlineimage}
    with AtomicPath(path, overwrite=overwrite) as tmp:
        try:
            with _openexr_prints_to(sys.stderr):
                OpenEXR.File(header, {name: np.ascontiguousarray(arr)}).write(str(tmp.path))
        except Exception as exc:
            raise OutputNotWritableError(f"cannot write EXR ({exc})", path=path,
                                         hint="check free disk space and permissions") from exc
    return Path(path)


# ----------------------------------------------------------------------------------------
# Radiance .hdr (RGBE)
# ----------------------------------------------------------------------------------------
def read_radiance_hdr(path: str | os.PathLike[str], *, check: bool = True) -> np.ndarray:
    """Read a Radiance RGBE ``.hdr`` image as float32 ``(H, W, 3)`` RGB (unclipped)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError("file not found", path=path, hint="check the path", code="INPUT_MISSING")
    try:
        with av.open(str(path), format="hdr_pipe") as c:
            frame = next(c.decode(video=0))
            img = frame.to_ndarray()  # gbrpf32le → RGB channel-last, exact
    except (av.error.FFmpegError, StopIteration, ValueError) as exc:
        raise BadInputError(f"not a readable Radiance .hdr file ({exc})", path=path,
                            hint="check that the file is complete; re-export it",
                            code="INPUT_CORRUPT") from exc
    img = np.ascontiguousarray(img, dtype=np.float32)
    if check:
        check_finite(img, path)
    return img


def _encode_single(codec: str, frame: av.VideoFrame) -> bytes:
    cc = av.CodecContext.create(codec, "w")
    cc.width, cc.height = frame.width, frame.height
    cc.pix_fmt = frame.format.name
    cc.time_base = Fraction(1, 1)
    packets = cc.encode(frame) + cc.encode(None)
    return b"".join(bytes(p) for p in packets)


def write_radiance_hdr(path: str | os.PathLike[str], image: np.ndarray, *,
                       overwrite: bool = False) -> Path:
    """Write float RGB ``(H, W, 3)`` as a Radiance RGBE ``.hdr`` file, atomically.

    Negative values are clipped to 0 (RGBE cannot store them); relative precision ~0.4 %.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise UsageError(f"expected (H, W, 3) RGB, got shape {image.shape}", path=path)
    arr = np.ascontiguousarray(np.clip(np.asarray(image, dtype=np.float32), 0, None))
    frame = av.VideoFrame.from_ndarray(arr, format="gbrpf32le")
    data = _encode_single("hdr", frame)
    with AtomicPath(path, overwrite=overwrite) as tmp:
        try:
            tmp.path.write_bytes(data)
        except OSError as exc:
            raise OutputNotWritableError(f"cannot write ({exc.strerror})", path=path,
                                         hint="check free disk space and permissions") from exc
    return Path(path)


def read_hdr_image(path: str | os.PathLike[str], *, check: bool = True) -> np.ndarray:
    """Read an ``.exr`` or ``.hdr``/``.pic`` radiance image (dispatch on extension)."""
    ext = Path(path).suffix.lower()
    if ext == ".exr":
        return read_exr(path, check=check)
    if ext in (".hdr", ".pic"):
        return read_radiance_hdr(path, check=check)
    raise BadInputError(f"unsupported HDR image type {ext!r}", path=path,
                        hint="use OpenEXR (.exr) or Radiance (.hdr) files")


def sdr_preview(image: np.ndarray, exposure: float = 1.0) -> np.ndarray:
    """Tone-map relative radiance to an 8-bit sRGB preview (uint8 ``(H, W, 3)``).

    Uses the HDRCNN camera curve of :mod:`tpn_cli.colour` (1.0 → 1.0, highlights roll
    off), then sRGB-style display encoding. For previews only, not a grading tool.
    """
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)) * float(exposure)
    ldr = colour.camera_curve(t.clamp(min=0.0)).clamp(0.0, 1.0)
    return (ldr.numpy() * 255.0 + 0.5).astype(np.uint8)


# ----------------------------------------------------------------------------------------
# HDR10 / HLG video
# ----------------------------------------------------------------------------------------
@dataclass
class LightLevel:
    """Running MaxCLL / MaxFALL (CTA-861.3) in cd/m², on the encoded (clipped) values."""

    max_cll: float = 0.0
    max_fall: float = 0.0

    def update(self, nits_rgb: np.ndarray) -> None:
        m = nits_rgb.max(axis=2)
        self.max_cll = max(self.max_cll, float(m.max()))
        self.max_fall = max(self.max_fall, float(m.mean()))

    def as_ints(self) -> tuple[int, int]:
        return int(np.ceil(self.max_cll)), int(np.ceil(self.max_fall))


def rgb_to_yuv420p10(signal: np.ndarray) -> np.ndarray:
    """Non-linear BT.2020 R'G'B' in [0, 1] ``(H, W, 3)`` (H, W even) → the stacked
    ``(H*3/2, W)`` uint16 array of ``yuv420p10le`` planes (BT.2020 NCL matrix, narrow
    range, chroma averaged over 2×2). This is the exact path (no swscale rounding)."""
    h, w = signal.shape[:2]
    r, g, b = signal[..., 0], signal[..., 1], signal[..., 2]
    y = _KR * r + _KG * g + _KB * b
    cb = (b - y) / 1.8814
    cr = (r - y) / 1.4746
    cb = cb.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    cr = cr.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    dy = np.clip(np.rint(64 + 876 * y), 0, 1023).astype(np.uint16)
    du = np.clip(np.rint(512 + 896 * cb), 0, 1023).astype(np.uint16)
    dv = np.clip(np.rint(512 + 896 * cr), 0, 1023).astype(np.uint16)
    return np.concatenate([dy.reshape(-1), du.reshape(-1), dv.reshape(-1)]).reshape(h * 3 // 2, w)


class HdrVideoWriter(Transactional):
    """Write relative linear radiance frames as HDR10 (PQ) or HLG HEVC video.

    Args:
        path: target video (``.mp4``, ``.mkv`` or ``.mov``).
        width, height: frame size (even).
        fps, time_base: as :class:`~tpn_cli.media.video.VideoWriter` (pass the source's).
        transfer: ``"pq"`` (HDR10: ST 2086 mastering display + MaxCLL/MaxFALL SEI) or
            ``"hlg"`` (ARIB STD-B67, no metadata needed).
        paper_white: nits of relative radiance 1.0 (PQ), or the HLG reference white
            (203 → 75 % HLG signal on a 1000-nit display).
        peak_nits: mastering peak; PQ values above it are clipped (and it is the
            ``L(max)`` of the mastering display). HLG: nominal display peak (1000).
        min_nits: mastering display black level.
        master_display: primaries part of the ST 2086 string (default P3-D65).
        max_cll: ``(MaxCLL, MaxFALL)`` if known in advance: single pass, no intermediate.
        crf, preset, options: libx265 quality settings (``options`` merged last).
        copy_streams_from: file whose audio/subtitle streams are copied bit-exact.
        overwrite: replace an existing target.
        carry: what else :class:`~tpn_cli.media.video.VideoWriter` keeps of the source
            (``sample_aspect_ratio``, ``metadata``, ``stream_metadata``, ``chapters``, ``cfr``).

    HDR10's mastering display and MaxCLL/MaxFALL go into the HEVC SEI and the container
    (MP4/MOV ``mdcv``/``clli``, Matroska MasteringMetadata), see :mod:`.hdrmeta`.

    Frames are ``float32 (H, W, 3)`` linear BT.709-primaries relative radiance; they are
    converted to BT.2020, scaled, clipped and PQ/HLG-encoded in numpy (never through
    swscale, which clips floats to [0, 1]). After :meth:`close`, :attr:`light_level`
    holds the measured MaxCLL/MaxFALL.
    """

    def __init__(self, path: str | os.PathLike[str], *, width: int, height: int,
                 fps: Fraction | int | float, time_base: Fraction | None = None,
                 transfer: Literal["pq", "hlg"] = "pq", paper_white: float = colour.REFERENCE_WHITE_NITS,
                 peak_nits: float = 1000.0, min_nits: float = 0.0001,
                 master_display: str = MASTER_DISPLAY_P3_D65,
                 max_cll: tuple[int, int] | None = None, crf: int = 18, preset: str = "medium",
                 options: Mapping[str, str] | None = None,
                 copy_streams_from: str | os.PathLike[str] | None = None,
                 overwrite: bool = False, **carry) -> None:
        if transfer not in ("pq", "hlg"):
            raise UsageError(f"unknown HDR transfer {transfer!r}", hint="use 'pq' (HDR10) or 'hlg'")
        if width % 2 or height % 2:
            raise BadInputError(f"HDR video needs even width and height, got {width}x{height}",
                                path=path, hint="crop or pad the input by one pixel, or write an "
                                                "EXR sequence instead")
        if paper_white <= 0 or peak_nits <= 0:
            raise UsageError("paper white and peak must be positive (cd/m²)")
        self.target = check_output_path(path, overwrite=overwrite)
        self.width, self.height = int(width), int(height)
        self.fps = Fraction(fps)
        self.time_base = Fraction(time_base) if time_base else 1 / self.fps
        self.transfer = transfer
        self.paper_white = float(paper_white)
        self.peak_nits = float(peak_nits)
        self.min_nits = float(min_nits)
        self.master_display = master_display
        self.light_level = LightLevel()
        self._known_cll = max_cll
        self._crf, self._preset, self._options = crf, preset, dict(options or {})
        self._copy_from = copy_streams_from
        self._overwrite = overwrite
        self._carry = carry
        self._pts: list[tuple[int, int | None]] = []  # (pts, duration) for the second pass
        self.frames_written = 0
        self.warnings: list[str] = []
        self._tmp: AtomicPath | None = None
        self._inter: VideoWriter | None = None
        self._final: VideoWriter | None = None
        if transfer == "hlg" or max_cll is not None:
            self._final = self._open_final(max_cll)
        else:
            # lossless intermediate next to the target (deleted in every case)
            self._tmp = AtomicPath(self.target.with_suffix(".mkv"), overwrite=True)
            self._inter = VideoWriter(self._tmp.path, width=width, height=height, fps=self.fps,
                                      time_base=self.time_base, codec="ffv1", crf=None, preset=None,
                                      pix_fmt="yuv420p10le", options={"level": "3"},
                                      color=HDR10, overwrite=True)

    def _x265_params(self) -> str:
        p = ["repeat-headers=1", "colorprim=bt2020", "colormatrix=bt2020nc", "range=limited"]
        if self.transfer == "pq":  # the mastering display and light levels: _hdr_static
            p += ["hdr10-opt=1", "transfer=smpte2084"]
        else:
            p.append("transfer=arib-std-b67")
        extra = self._options.get("x265-params")
        if extra:
            p.append(extra)
        return ":".join(p)

    def _hdr_static(self, cll: tuple[int, int] | None) -> HdrStatic | None:
        """PQ: the mastering display (``L`` from peak/min nits) and measured light levels."""
        if self.transfer != "pq":
            return None
        lmax = int(round(self.peak_nits * 10000))
        lmin = max(1, int(round(self.min_nits * 10000)))
        return HdrStatic.from_x265(f"{self.master_display}L({lmax},{lmin})", cll)

    def _open_final(self, cll: tuple[int, int] | None) -> VideoWriter:
        opts = dict(self._options)
        opts["x265-params"] = self._x265_params()
        return VideoWriter(self.target, width=self.width, height=self.height, fps=self.fps,
                           time_base=self.time_base, codec="libx265", crf=self._crf,
                           preset=self._preset, pix_fmt="yuv420p10le", options=opts,
                           color=HDR10 if self.transfer == "pq" else HLG,
                           copy_streams_from=self._copy_from, overwrite=self._overwrite,
                           hdr_static=self._hdr_static(cll), **self._carry)

    def encode_signal(self, image: np.ndarray) -> np.ndarray:
        """Relative linear BT.709 radiance → non-linear BT.2020 PQ/HLG signal in [0, 1]
        (updates :attr:`light_level` for PQ)."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise UsageError(f"expected (H, W, 3) radiance, got shape {image.shape}", path=self.target)
        if image.shape[:2] != (self.height, self.width):
            raise UsageError(f"frame size {image.shape[1]}x{image.shape[0]} differs from the output "
                             f"size {self.width}x{self.height}", path=self.target)
        lin = np.asarray(image, dtype=np.float32) @ _BT709_TO_BT2020.T
        if self.transfer == "pq":
            nits = np.clip(lin * self.paper_white, 0.0, self.peak_nits)
            self.light_level.update(nits)
            sig = colour.pq_inverse_eotf(torch.from_numpy(np.ascontiguousarray(nits)))
        else:
            # scene light E with reference white at (paper_white / 1000)^(1/1.2): 203 → 0.265
            scale = (self.paper_white / 1000.0) ** (1.0 / 1.2)
            e = np.clip(lin * scale, 0.0, 1.0)
            sig = colour.hlg_oetf(torch.from_numpy(np.ascontiguousarray(e)))
        return sig.numpy().astype(np.float32)

    def write(self, image: np.ndarray, pts: int | None = None, duration: int | None = None) -> None:
        """Encode one frame of relative radiance (float ``(H, W, 3)``); ``pts`` and
        ``duration`` in :attr:`time_base` (default: from the frame counter and fps).
        NaN/Inf are refused."""
        check_finite(image, self.target, self.frames_written)
        planes = rgb_to_yuv420p10(self.encode_signal(image))
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p10le")
        if pts is None:
            pts = int(round(self.frames_written / self.fps / self.time_base))
        w = self._final if self._final is not None else self._inter
        w.write_frame(frame, pts, duration)
        self._pts.append((int(pts), duration))
        self.frames_written += 1

    def close(self) -> Path:
        """Finish: (PQ, two-pass) transcode the intermediate with the measured MaxCLL/MaxFALL,
        rename into place, delete the intermediate. Returns the final path."""
        try:
            if self._final is not None and self._inter is None:
                return self._final.close()
            self._inter.close()  # renamed to self._tmp.path, removed in `finally`
            inter_path = self._inter.target
            self._inter = None
            cll = self._known_cll or self.light_level.as_ints()
            self._final = self._open_final(cll)
            with av.open(str(inter_path)) as c:
                s = c.streams.video[0]
                s.thread_type = "AUTO"
                for i, f in enumerate(c.decode(s)):
                    self._final.write_frame(f, *self._pts[i])
            path = self._final.close()
            self.warnings += self._final.warnings
            return path
        except BaseException:
            self.abort()
            raise
        finally:
            if self._tmp is not None:
                self._tmp.abort()

    def abort(self) -> None:
        """Delete every temporary; the target is left untouched."""
        for w in (self._inter, self._final):
            if w is not None:
                w.abort()
        if self._tmp is not None:
            self._tmp.abort()

