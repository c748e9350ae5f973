"""Frame folders in and out, and single images.

Naming: the frame number of a file is the **last run of digits** of its name without the
extension (``frame_000120.png`` → 120, ``shot1_k0123.exr`` → 123, ``render.0042.exr`` →
42). Hidden files (``.DS_Store``, tpn's own ``.…tpn-partial-…``) are ignored.

Reading a folder (:class:`FrameFolderReader`) orders files by that number; the frame
*index* is the 0-based position in that order (so a folder numbered from 1 still starts
at index 0), and :attr:`FrameFolderReader.numbers` keeps the numbers from the names.

Writing a folder (:class:`FrameFolderWriter`) is atomic **per folder**: every frame goes
into a hidden temporary folder next to the target (``.NAME.tpn-partial-…``), which is
renamed to the target when :meth:`FrameFolderWriter.close` succeeds and deleted on any
failure or interrupt. So a folder with the target name is always complete. (Per-file
temp+rename would leave a half-filled folder that looks finished.)

Pixel types: PNG/JPEG give ``uint8`` or ``uint16`` ``(H, W, 3)`` RGB (grayscale is
replicated to 3 channels, palette images are expanded); EXR/HDR give ``float32``.
"""
from __future__ import annotations

import contextlib
import os
import re
import struct
import warnings
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Literal

import av
import numpy as np
from PIL import Image, ImageOps

from ..errors import BadInputError, OutputNotWritableError, UsageError
from .atomic import AtomicPath, Transactional
from .video import ColorTags, Frame, ReaderBase

__all__ = [
    "MAX_IMAGE_PIXELS",
    "FrameFolderReader",
    "FrameFolderWriter",
    "IMAGE_EXTENSIONS",
    "check_image_size",
    "frame_number",
    "is_frame_sequence_path",
    "open_pil",
    "list_frame_files",
    "read_image",
    "resize_image",
    "write_image",
]

LDR_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg"})
IMAGE_EXTENSIONS = LDR_EXTENSIONS | {".exr", ".hdr", ".pic"}

_DIGITS = re.compile(r"(\d+)(?!.*\d)")


def frame_number(name: str | os.PathLike[str]) -> int | None:
    """The last run of digits in a file name without its extension, or None."""
    stem = Path(name).name
    suffix = Path(stem).suffix
    if suffix.lower() in IMAGE_EXTENSIONS:
        stem = stem[: -len(suffix)]
    m = _DIGITS.search(stem)
    return int(m.group(1)) if m else None


def list_frame_files(folder: str | os.PathLike[str],
                     extensions: frozenset[str] | set[str] = IMAGE_EXTENSIONS,
                     what: str = "frame") -> list[tuple[int, Path]]:
    """``(number, path)`` of the image files in ``folder``, sorted by number.

    Raises:
        BadInputError: folder missing or empty, names without digits (listed), two files
            with the same number (both named).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError("folder not found", path=folder, hint="check the path",
                            code="INPUT_MISSING")
    files = [p for p in folder.iterdir()
             if not p.name.startswith(".") and p.is_file() and p.suffix.lower() in extensions]
    if not files:
        raise BadInputError(f"no {what} images found ({', '.join(sorted(extensions))})",
                            path=folder, hint=f"put {what} images named by frame index "
                                              "(e.g. 00012.png) in this folder", code="EMPTY_FOLDER")
    unnamed = sorted(p.name for p in files if frame_number(p.name) is None)
    if unnamed:
        shown = ", ".join(unnamed[:5]) + (" …" if len(unnamed) > 5 else "")
        raise BadInputError(f"{len(unnamed)} file(s) have no frame number in their name: {shown}",
                            path=folder, hint="name files by frame index, e.g. 00012.png or "
                                              "frame_000012.png (the last digits are the index)",
                            code="UNNUMBERED_FILE")
    seen: dict[int, Path] = {}
    for p in sorted(files):
        n = frame_number(p.name)
        if n in seen:
            raise BadInputError(f"{seen[n].name} and {p.name} both give frame number {n}",
                                path=folder, hint="keep one file per frame number",
                                code="DUPLICATE_FRAME")
        seen[n] = p
    return sorted(seen.items())


# ----------------------------------------------------------------------------------------
# single images
# ----------------------------------------------------------------------------------------
#: The largest image tpn decodes: 8192 x 8192 pixels (67 megapixels, twice 8K UHD). A
#: header that declares more is damaged or a decompression bomb; it is refused from the
#: header, before any pixel is decoded (and below Pillow's own warning threshold).
MAX_IMAGE_PIXELS = 8192 * 8192

#: What Pillow raises on a damaged file besides OSError: SyntaxError for a broken PNG
#: chunk, struct/zlib errors for cut headers and streams, EOFError, ValueError.
PIL_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, IndexError)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _head(path: str | os.PathLike[str], n: int) -> bytes:
    """The first ``n`` bytes of a file (an unreadable file is a named error)."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError as exc:
        raise BadInputError(f"cannot be read ({exc.strerror})", path=path, code="INPUT_UNREADABLE",
                            hint="check that it exists and that you may read it") from exc


def check_image_size(width: int, height: int, path: str | os.PathLike[str]) -> None:
    """Refuse an image header that declares no pixels or more than :data:`MAX_IMAGE_PIXELS`.

    Raises:
        BadInputError: ``IMAGE_TOO_LARGE`` naming the file and the declared size.
    """
    if width <= 0 or height <= 0 or width * height > MAX_IMAGE_PIXELS:
        raise BadInputError(
            f"its header declares {width}x{height} pixels; tpn reads images of 1 to "
            f"{MAX_IMAGE_PIXELS // 10**6} megapixels", path=path, code="IMAGE_TOO_LARGE",
            hint="the header is probably damaged: re-export the image (key-frames and masks "
                 "are best at the video's own size)")


@contextlib.contextmanager
def open_pil(path: str | os.PathLike[str]):
    """``Image.open`` with the size checked from the header before anything is decoded,
    and Pillow's errors for a damaged file turned into ``INPUT_CORRUPT`` naming it
    (decoding errors inside the ``with`` block included)."""
    if _head(path, 8) == PNG_SIGNATURE:  # our own check and message, before Pillow's decompression-bomb error
        _png_info(Path(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as exc:  # a size beyond Pillow's hard limit
        raise BadInputError(f"its header declares an image too large to read ({exc})".split(",")[0],
                            path=path, code="IMAGE_TOO_LARGE",
                            hint="the header is probably damaged: re-export the image") from exc
    except PIL_ERRORS as exc:
        raise BadInputError(f"not a readable image ({exc})", path=path,
                            hint="check that the file is complete; re-export it",
                            code="INPUT_CORRUPT") from exc
    with im:
        check_image_size(*im.size, path)
        try:
            yield im
        except PIL_ERRORS as exc:
            raise BadInputError(f"not a readable image ({exc})", path=path,
                                hint="check that the file is complete; re-export it",
                                code="INPUT_CORRUPT") from exc


def _png_info(path: Path) -> tuple[int, int]:
    """(bit depth, colour type) from the PNG IHDR chunk (its size checked first)."""
    head = _head(path, 26)
    if len(head) < 26 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise BadInputError("not a PNG file (no PNG signature and header)", path=path,
                            hint="re-export the image as PNG", code="INPUT_CORRUPT")
    width, height = struct.unpack(">II", head[16:24])
    check_image_size(width, height, path)
    return head[24], head[25]


#: PNG colour types that carry an alpha channel (gray + alpha, RGBA).
_PNG_ALPHA_TYPES = (4, 6)


def _read_png16(path: Path, alpha: bool = False) -> np.ndarray:
    with av.open(str(path)) as c:
        frame = next(c.decode(video=0))
        return frame.to_ndarray(format="rgba64le" if alpha else "rgb48le")


def _has_alpha(im: Image.Image) -> bool:
    """Whether a Pillow image carries transparency (an alpha channel or a tRNS chunk)."""
    return im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info


def _drop_opaque_alpha(img: np.ndarray) -> np.ndarray:
    """RGBA whose alpha is opaque everywhere → RGB, so such a file reads as an RGB one."""
    if img.shape[2] == 4 and np.all(img[..., 3] == np.iinfo(img.dtype).max):
        return img[..., :3]
    return img


def read_image(path: str | os.PathLike[str], *, depth: Literal["auto", 8, 16] = "auto",
               keep_alpha: bool = False) -> np.ndarray:
    """Read one image as ``(H, W, 3)`` RGB.

    PNG/JPEG: ``uint8`` (8-bit files) or ``uint16`` (16-bit PNG); ``depth=8|16`` converts
    (×257 / rounded ÷257). JPEG EXIF orientation is applied. EXR/HDR: ``float32``
    (NaN/Inf refused, see :func:`tpn_cli.media.hdr.check_finite`).

    ``keep_alpha``: a PNG with transparency that is not opaque everywhere comes back as
    ``(H, W, 4)`` RGBA (alpha in the fourth channel, same type and ``depth``); an opaque
    or alpha-less image still comes back as RGB (partly painted key-frames).

    Raises:
        BadInputError: missing, unreadable or unsupported file.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext in (".exr", ".hdr", ".pic"):
        from .hdr import read_hdr_image
        return read_hdr_image(path)
    if ext not in LDR_EXTENSIONS:
        raise BadInputError(f"unsupported image type {ext or '(none)'!r}", path=path,
                            hint="use PNG, JPEG, EXR or Radiance .hdr")
    if not path.is_file():
        raise BadInputError("file not found", path=path, hint="check the path", code="INPUT_MISSING")
    info = _png_info(path) if ext == ".png" else None
    if info is not None and info[0] == 16:
        # Pillow reads 16-bit RGB PNGs as 8-bit
        try:
            img = _read_png16(path, alpha=keep_alpha and info[1] in _PNG_ALPHA_TYPES)
        except (av.error.FFmpegError, StopIteration, ValueError) as exc:
            raise BadInputError(f"not a readable image ({exc})", path=path,
                                hint="check that the file is complete; re-export it",
                                code="INPUT_CORRUPT") from exc
    else:
        with open_pil(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                g = np.asarray(im, dtype=np.uint16)
                img = np.repeat(g[..., None], 3, axis=2)
            else:
                img = np.asarray(im.convert("RGBA" if keep_alpha and _has_alpha(im) else "RGB"))
    img = np.ascontiguousarray(_drop_opaque_alpha(img))
    if depth == 8 and img.dtype == np.uint16:
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif depth == 16 and img.dtype == np.uint8:
        img = img.astype(np.uint16) * 257
    return img


def _encode_png(image: np.ndarray) -> bytes:
    if image.ndim == 2:
        fmt_in, fmt_out = ("gray", "gray") if image.dtype == np.uint8 else ("gray16le", "gray16be")
    else:
        fmt_in, fmt_out = ("rgb24", "rgb24") if image.dtype == np.uint8 else ("rgb48le", "rgb48be")
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt_in)
    if fmt_out != fmt_in:
        frame = frame.reformat(format=fmt_out)
    cc = av.CodecContext.create("png", "w")
    cc.width, cc.height, cc.pix_fmt = frame.width, frame.height, fmt_out
    cc.time_base = Fraction(1, 1)
    return b"".join(bytes(p) for p in cc.encode(frame) + cc.encode(None))


def write_image(path: str | os.PathLike[str], image: np.ndarray, *, overwrite: bool = False,
                jpeg_quality: int = 95) -> Path:
    """Write one image atomically (temporary file + rename), type from the extension.

    * ``.png``: uint8 or uint16, ``(H, W, 3)`` or ``(H, W)`` (lossless, 8/16-bit).
    * ``.jpg``/``.jpeg``: uint8 (quality ``jpeg_quality``).
    * ``.exr``: float, half ZIP; ``.hdr``: float, RGBE.

    Raises:
        OutputNotWritableError: exists without ``overwrite``, or cannot be written.
        UsageError: pixel type does not fit the format.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".exr":
        from .hdr import write_exr
        return write_exr(path, image, overwrite=overwrite)
    if ext in (".hdr", ".pic"):
        from .hdr import write_radiance_hdr
        return write_radiance_hdr(path, image, overwrite=overwrite)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise UsageError(f"expected (H, W, 3) or (H, W) pixels, got shape {image.shape}", path=path)
    if ext == ".png":
        if image.dtype not in (np.uint8, np.uint16):
            raise UsageError(f"PNG needs uint8 or uint16 pixels, got {image.dtype}", path=path)
        data = _encode_png(image)
    elif ext in (".jpg", ".jpeg"):
        if image.dtype != np.uint8:
            raise UsageError(f"JPEG needs uint8 pixels, got {image.dtype}", path=path,
                             hint="write 16-bit images as PNG")
        data = None
    else:
        raise UsageError(f"unsupported image type {ext or '(none)'!r}", path=path,
                         hint="use .png, .jpg, .exr or .hdr")
    with AtomicPath(path, overwrite=overwrite) as tmp:
        try:
            if data is not None:
                tmp.path.write_bytes(data)
            else:
                Image.fromarray(image).save(tmp.path, format="JPEG", quality=jpeg_quality)
        except OSError as exc:
            raise OutputNotWritableError(f"cannot write ({exc.strerror or exc})", path=path,
                                         hint="check free disk space and permissions") from exc
    return path


# ----------------------------------------------------------------------------------------
# folders
# ----------------------------------------------------------------------------------------
class FrameFolderReader(ReaderBase):
    """A folder of numbered images, read like a video (see :class:`VideoReader`).

    Frame index = position in number order; ``pts`` = index, ``time_base`` = 1/fps.

    Args:
        folder: the folder.
        fps: frame rate to assume (folders carry none); default 25.
        depth: as :func:`read_image` (ignored for EXR/HDR).

    Raises:
        BadInputError: see :func:`list_frame_files`; mixed image types.
    """

    def __init__(self, folder: str | os.PathLike[str], *, fps: Fraction | int = Fraction(25),
                 depth: Literal["auto", 8, 16] = "auto") -> None:
        self.path = Path(folder)
        entries = list_frame_files(self.path)
        kinds = {p.suffix.lower().replace(".jpeg", ".jpg") for _, p in entries}
        if len(kinds) > 1:
            raise BadInputError(f"mixes image types ({', '.join(sorted(kinds))})", path=self.path,
                                hint="keep one image type per folder")
        self.numbers: list[int] = [n for n, _ in entries]
        self.files: list[Path] = [p for _, p in entries]
        self.fps = Fraction(fps)
        self.time_base = 1 / self.fps
        self.depth = depth
        self.color = ColorTags()
        self.rotation = 0
        self.has_audio = False
        self.has_subtitles = False
        self.autorotate = False
        first = read_image(self.files[0], depth=depth)
        self.dtype = first.dtype
        self.size: tuple[int, int] = (first.shape[1], first.shape[0])

    @property
    def frame_count(self) -> int:
        return len(self.files)

    def count_frames(self) -> int:
        return len(self.files)

    @property
    def is_hdr(self) -> bool:
        return self.files[0].suffix.lower() in (".exr", ".hdr", ".pic")

    def frames(self, start: int = 0, end: int | None = None) -> Iterator[Frame]:
        """Yield frames ``start <= index < end`` (size changes are refused)."""
        end = len(self.files) if end is None else min(end, len(self.files))
        for i in range(start, end):
            img = read_image(self.files[i], depth=self.depth)
            if (img.shape[1], img.shape[0]) != self.size:
                raise BadInputError(f"size {img.shape[1]}x{img.shape[0]} differs from the first "
                                    f"frame's {self.size[0]}x{self.size[1]}", path=self.files[i],
                                    frame=i, hint="resize all frames to one size")
            yield Frame(index=i, image=img, pts=i, time=float(i * self.time_base))

    def thumbnails(self, width: int, height: int, start: int = 0,
                   end: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, gray)``: each frame's luminance area-averaged to ``width`` ×
        ``height`` uint8, as :meth:`tpn_cli.media.VideoReader.thumbnails`."""
        for f in self.frames(start, end):
            yield f.index, gray_thumbnail(f.image, width, height)

    def read(self, index: int) -> Frame:
        if not 0 <= index < len(self.files):
            raise BadInputError(f"frame {index} is past the end", path=self.path,
                                hint=f"the folder has {len(self.files)} frames (0-based indices)",
                                code="FRAME_OUT_OF_RANGE")
        return next(self.frames(index, index + 1))

    def __repr__(self) -> str:
        return f"FrameFolderReader({str(self.path)!r}, {len(self.files)} frames, {self.width}x{self.height})"


class FrameFolderWriter(Transactional):
    """Write frames named by index (``00012.png``) into a folder, atomically per folder.

    Args:
        folder: target folder (must not exist unless ``overwrite``; then it is replaced
            whole at the end).
        ext: ``.png`` (default), ``.jpg``, ``.exr`` or ``.hdr``.
        digits: zero padding of the names (default 5: ``00012.png``; wider indices simply
            use more digits).
        prefix: optional name prefix, e.g. ``"frame_"``.
        overwrite: replace an existing folder.
    """

    def __init__(self, folder: str | os.PathLike[str], *, ext: str = ".png", digits: int = 5,
                 prefix: str = "", overwrite: bool = False) -> None:
        ext = ext if ext.startswith(".") else "." + ext
        if ext.lower() not in IMAGE_EXTENSIONS:
            raise UsageError(f"unsupported frame type {ext!r}", path=folder,
                             hint="use .png, .jpg, .exr or .hdr")
        self.target = Path(folder)
        self.ext, self.digits, self.prefix = ext, digits, prefix
        self._atomic = AtomicPath(self.target, overwrite=overwrite, is_dir=True)
        self.frames_written = 0

    def name(self, index: int) -> str:
        """File name of frame ``index``."""
        return f"{self.prefix}{index:0{self.digits}d}{self.ext}"

    def write(self, index: int, image: np.ndarray) -> Path:
        """Write frame ``index`` (into the temporary folder until :meth:`close`)."""
        if index < 0:
            raise UsageError(f"negative frame index {index}", path=self.target)
        p = write_image(self._atomic.path / self.name(index), image, overwrite=True)
        self.frames_written += 1
        return self.target / p.name

    def close(self) -> Path:
        """Rename the completed folder into place; returns the target."""
        return self._atomic.commit()

    def abort(self) -> None:
        """Delete the temporary folder; the target is left untouched."""
        self._atomic.abort()



def is_frame_sequence_path(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` means a frame folder: an existing folder, or a path without an
    extension (the README's "Commands": the output path decides the format)."""
    p = Path(path)
    return p.is_dir() or p.suffix == ""



def resize_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize ``(H, W, C)`` pixels (uint8, uint16 or float) to ``width`` × ``height``:
    bilinear, antialiased when shrinking; the dtype is kept (for key-frames whose
    aspect ratio matches the video, see :func:`tpn_cli.keyframes.check_size`)."""
    import torch
    import torch.nn.functional as F

    if image.shape[1] == width and image.shape[0] == height:
        return image
    dtype = image.dtype
    t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    out = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False,
                        antialias=True)[0].permute(1, 2, 0).numpy()
    if dtype.kind == "u":
        out = np.clip(np.rint(out), 0, np.iinfo(dtype).max)
    return np.ascontiguousarray(out.astype(dtype))


def gray_thumbnail(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """BT.709 luminance of an RGB (or gray) image, area-averaged to ``width`` ×
    ``height``, as uint8 (16-bit and float images are scaled to 0..255 first)."""
    import cv2

    img = np.asarray(image)
    scale = 1 / 257.0 if img.dtype == np.uint16 else (255.0 if img.dtype.kind == "f" else 1.0)
    img = img.astype(np.float32) * np.float32(scale)
    if img.ndim == 3 and img.shape[2] == 3:
        y = img @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    else:
        y = img.reshape(img.shape[:2])
    small = cv2.resize(y, (width, height), interpolation=cv2.INTER_AREA)
    return np.clip(np.rint(small), 0, 255).astype(np.uint8)
