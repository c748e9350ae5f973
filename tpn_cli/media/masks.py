"""Object masks in and out: palette, grayscale-id, binary and RGB PNGs.

A mask is an integer id map ``(H, W)``: 0 = background, 1..N = objects, plus an
optional ``void`` id (DAVIS uses 255 for "don't care"). Encodings read by
:func:`read_mask` (auto-detected):

* ``P`` palette PNG (DAVIS / YouTube-VOS): the palette index is the object id; the
  palette is kept so outputs look the same as the input.
* ``L`` / 16-bit grayscale with object ids as values (``I;16`` for > 255 objects).
* binary: two values ``{0, v}`` with ``v`` > ``max_objects`` (typically 0/255) → id 1.
* RGB / RGBA: each exact colour is one object (black = background, sorted by colour
  for stable ids); alpha <= 127 is background.

Anti-aliased masks (soft brush edges, resized masks, JPEG) have many grey levels or
colours that each cover a sliver of pixels; they are refused with a fix rather than
silently turned into dozens of bogus objects.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from ..errors import BadInputError, OutputNotWritableError, UsageError
from .atomic import AtomicPath
from .frames import open_pil

__all__ = [
    "Mask",
    "default_palette",
    "overlay",
    "read_mask",
    "write_mask",
]

#: Fraction of the image under which a value counts as a "sliver" (anti-aliasing edge).
RARE_FRACTION = 0.001


def default_palette() -> np.ndarray:
    """The DAVIS / PASCAL-VOC palette as a ``(256, 3)`` uint8 array (id 1 is red, 2 green…).

    Entry ``i`` takes the bits of ``i`` three at a time, most significant first, into
    red, green and blue."""
    pal = np.zeros((256, 3), dtype=np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        pal[i] = (r, g, b)
    return pal


@dataclass
class Mask:
    """An object-id map with the information needed to write it back the same way.

    Attributes:
        ids: ``(H, W)`` uint8 (or uint16 for > 255 ids).
        palette: ``(256, 3)`` uint8 colours of ids (input palette, the RGB colours of an
            RGB mask, or :func:`default_palette`).
        kind: the encoding it was read from: ``palette``, ``gray``, ``binary`` or ``rgb``.
        void: the void id, or None.
        path: the file it came from.
    """

    ids: np.ndarray
    palette: np.ndarray = field(default_factory=default_palette)
    kind: Literal["palette", "gray", "binary", "rgb"] = "palette"
    void: int | None = None
    path: Path | None = None

    @property
    def object_ids(self) -> list[int]:
        """Ids present in the mask, background (0) and void excluded, ascending."""
        return [int(v) for v in np.unique(self.ids) if v != 0 and v != self.void]

    @property
    def size(self) -> tuple[int, int]:
        return self.ids.shape[1], self.ids.shape[0]

    def object_table(self) -> list[tuple[int, tuple[int, int, int], int]]:
        """``(id, colour, pixel count)`` per object, for ``--dry-run``."""
        vals, counts = np.unique(self.ids, return_counts=True)
        return [(int(v), tuple(int(c) for c in self.palette[int(v) % len(self.palette)]), int(n))
                for v, n in zip(vals, counts) if v != 0 and v != self.void]


def _check_not_antialiased(values: np.ndarray, counts: np.ndarray, path: Path,
                           max_objects: int, unit: str) -> None:
    total = int(counts.sum())
    n = len(values)
    rare = int((counts < RARE_FRACTION * total).sum())
    hint = ("paint masks with a hard-edged brush (no anti-aliasing), export as PNG (not "
            "JPEG), resize with nearest-neighbour, or save as a palette PNG")
    if n - 1 > max_objects:
        raise BadInputError(
            f"has {n} distinct {unit}s; it looks anti-aliased or compressed, not an object mask "
            f"(at most {max_objects} objects are expected)", path=path, hint=hint,
            code="ANTIALIASED_MASK")
    if n > 3 and rare >= 3 and rare * 2 >= n:
        raise BadInputError(
            f"{rare} of its {n} {unit}s each cover less than {RARE_FRACTION:.1%} of the image: "
            "it looks anti-aliased (soft edges), not an object mask", path=path, hint=hint,
            code="ANTIALIASED_MASK")


def _palette_of(im: Image.Image) -> np.ndarray:
    pal = np.asarray(im.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
    out = default_palette()
    out[: len(pal)] = pal[:256]
    return out


def read_mask(path: str | os.PathLike[str], *, max_objects: int = 32,
              void: int | None = None) -> Mask:
    """Read a mask PNG into a :class:`Mask` (encoding auto-detected, see module doc).

    Args:
        max_objects: more distinct ids/colours than this is treated as anti-aliasing.
        void: an id to ignore (e.g. 255 in DAVIS); excluded from the checks and from
            :attr:`Mask.object_ids`.

    Raises:
        BadInputError: missing/unreadable file, anti-aliased mask, unsupported mode.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError("mask file not found", path=path, hint="check the path",
                            code="INPUT_MISSING")
    with open_pil(path) as im:  # size checked from the header; damaged files named
        im.load()
        mode = im.mode
        if mode == "P":
            ids = np.asarray(im, dtype=np.uint8)
            kind, palette = "palette", _palette_of(im)
        elif mode in ("L", "I;16", "I;16B", "I;16L", "I", "1"):
            ids = np.asarray(im)
            kind, palette = "gray", default_palette()
        elif mode in ("RGB", "RGBA", "LA", "PA"):
            rgba = np.asarray(im.convert("RGBA"))
            kind, palette = "rgb", default_palette()
            ids = None
        else:
            raise BadInputError(f"unsupported mask image mode {mode}", path=path,
                                hint="save the mask as a palette, grayscale or RGB PNG")

    if kind == "rgb":
        fg = rgba[..., 3] > 127
        rgb = np.where(fg[..., None], rgba[..., :3], 0)
        key = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
        values, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        _check_not_antialiased(values, counts, path, max_objects, "colour")
        # black is id 0 when present (it sorts first); other colours get 1, 2, ...
        offset = 0 if values[0] == 0 else 1
        ids = (inverse.reshape(key.shape) + offset).astype(np.uint8)
        for i, v in enumerate(values):
            palette[i + offset] = ((v >> 16) & 255, (v >> 8) & 255, v & 255)
        return Mask(ids=ids, palette=palette, kind="rgb", void=void, path=path)

    if ids.dtype == bool:
        ids = ids.astype(np.uint8)
    ids = ids.astype(np.uint16 if ids.max(initial=0) > 255 else np.uint8)
    vals, counts = np.unique(ids, return_counts=True)
    keep = vals != void if void is not None else np.ones(len(vals), bool)
    vals_nv, counts_nv = vals[keep], counts[keep]
    nonzero = vals_nv[vals_nv != 0]
    if kind == "gray" and len(nonzero) == 1 and nonzero[0] > max_objects:
        ids = np.where(ids == nonzero[0], 1, np.where(ids == void, ids, 0)).astype(np.uint8) \
            if void is not None else (ids == nonzero[0]).astype(np.uint8)
        return Mask(ids=ids, palette=default_palette(), kind="binary", void=void, path=path)
    _check_not_antialiased(vals_nv, counts_nv, path, max_objects,
                           "palette index" if kind == "palette" else "grey level")
    return Mask(ids=ids, palette=palette, kind=kind, void=void, path=path)


def write_mask(path: str | os.PathLike[str], ids: np.ndarray, *,
               palette: np.ndarray | None = None,
               fmt: Literal["palette", "gray", "binary"] = "palette",
               overwrite: bool = False) -> Path:
    """Write an id map as a PNG, atomically.

    Args:
        ids: ``(H, W)`` integer ids.
        palette: ``(N, 3)`` uint8 colours (the input mask's :attr:`Mask.palette`); default
            :func:`default_palette`. Only for ``fmt="palette"``.
        fmt: ``palette`` (P-mode, ids <= 255), ``gray`` (8-bit, or 16-bit when ids > 255),
            ``binary`` (0/255: any object vs background; write ``ids == k`` for one object).

    Raises:
        UsageError: ids do not fit the format. OutputNotWritableError: see AtomicPath.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise UsageError(f"expected an (H, W) id map, got shape {ids.shape}", path=path)
    if ids.size and (ids.min() < 0 or ids.max() > 65535):
        raise UsageError("ids must be in 0..65535", path=path)
    if fmt == "palette":
        if ids.size and ids.max() > 255:
            raise UsageError(f"id {int(ids.max())} does not fit a palette PNG", path=path,
                             hint="use the 16-bit grayscale id format for more than 255 objects")
        pal = default_palette() if palette is None else np.asarray(palette, dtype=np.uint8)
        im = Image.fromarray(ids.astype(np.uint8))
        im.putpalette(pal[:256].reshape(-1).tolist())
    elif fmt == "gray":
        if ids.size and ids.max() > 255:
            from .frames import write_image
            return write_image(path, ids.astype(np.uint16), overwrite=overwrite)
        im = Image.fromarray(ids.astype(np.uint8))
    elif fmt == "binary":
        im = Image.fromarray(((ids > 0) * 255).astype(np.uint8))
    else:
        raise UsageError(f"unknown mask format {fmt!r}", hint="use palette, gray or binary")
    with AtomicPath(path, overwrite=overwrite) as tmp:
        try:
            im.save(tmp.path, format="PNG")
        except OSError as exc:
            raise OutputNotWritableError(f"cannot write ({exc.strerror or exc})", path=path,
                                         hint="check free disk space and permissions") from exc
    return Path(path)


def overlay(image: np.ndarray, ids: np.ndarray, palette: np.ndarray | None = None,
            alpha: float = 0.5, void: int | None = None) -> np.ndarray:
    """Blend object colours over an RGB uint8 image (background and void untouched)."""
    if image.shape[:2] != ids.shape:
        raise UsageError(f"image {image.shape[:2]} and mask {ids.shape} sizes differ")
    pal = default_palette() if palette is None else np.asarray(palette, dtype=np.uint8)
    img8 = image if image.dtype == np.uint8 else (image.astype(np.uint32) // 257).astype(np.uint8)
    colours = pal[np.asarray(ids).astype(np.int64) % len(pal)].astype(np.float32)
    fg = ids > 0
    if void is not None:
        fg &= ids != void
    out = img8.astype(np.float32)
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[fg]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
