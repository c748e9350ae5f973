"""Video chroma: the BT.601 luma Y′ and colour differences (Cb, Cr) of gamma-encoded sRGB,
the space JPEG and video codecs keep colour in (at half resolution, 4:2:0).

The colour flow part carries its key-frames' colour as (Cb, Cr) and rebuilds each frame
from its own luma. In footage whose chroma went through a codec, (Cb, Cr) is smooth across
the picture's edges where CIE-Lab's a and b change with L, so colour that a flow moves a
pixel or two off costs less: +0.5 dB at every key spacing on the evaluation clips
(docs/what-we-tried.md, "Colour: chroma carried as video chroma"). A black-and-white frame
(R = G = B) has Y′ equal to its gray value whatever the luma weights, so its tones come
back unchanged.

The flow part's lightness is that of the luma (:func:`luma_lightness`): all a black-and-white
film shows, so key-frames and frames compare alike whether the video is black-and-white or
colour.

Units: 8-bit code values for every input depth (Y′ in [0, 255], Cb and Cr in [−127.5,
127.5], 0 = gray), full range, as JPEG.
"""
from __future__ import annotations

import numpy as np
import torch

from ._util import _check_channels
from .lab import lightness

_KR, _KB = 0.299, 0.114  # BT.601 (JPEG; FFmpeg's default for untagged video)
_KG = 1.0 - _KR - _KB
#: rows Y′, Cb, Cr from gamma-encoded R, G, B
_TO_YCC = np.array([[_KR, _KG, _KB],
                    [-_KR / (2 - 2 * _KB), -_KG / (2 - 2 * _KB), 0.5],
                    [0.5, -_KG / (2 - 2 * _KR), -_KB / (2 - 2 * _KR)]], np.float32)
#: R, G, B from Y′, Cb, Cr
_FROM_YCC = np.linalg.inv(_TO_YCC.astype(np.float64)).astype(np.float32)


def chroma(rgb: torch.Tensor) -> torch.Tensor:
    """(Cb, Cr) (…, 2, H, W) of sRGB (…, 3, H, W) in [0, 1], in 8-bit units."""
    _check_channels(rgb)
    m = torch.from_numpy(_TO_YCC[1:] * 255.0).to(dtype=rgb.dtype, device=rgb.device)
    return torch.einsum("ij,...jhw->...ihw", m, rgb)


def luma_lightness(rgb: torch.Tensor) -> torch.Tensor:
    """CIE L (…, 1, H, W) of sRGB (…, 3, H, W) in [0, 1] shown in black and white: the
    lightness of its luma Y′ as a gray (for a gray image, its own L)."""
    _check_channels(rgb)
    y = torch.einsum("j,...jhw->...hw", torch.from_numpy(_TO_YCC[0]).to(dtype=rgb.dtype, device=rgb.device), rgb)
    return lightness(y.unsqueeze(-3).expand(*y.shape[:-2], 3, *y.shape[-2:]))


_STEPS = 16  # luma_lightness_image's table: 1/16 of an 8-bit code
_LUMA_L: dict = {}


def luma_lightness_image(image: np.ndarray) -> np.ndarray:
    """:func:`luma_lightness` (H, W) float32 of an (H, W, 3) uint8 / uint16 / float [0, 1]
    image, by a table over Y′ in 1/16 steps of an 8-bit code (0.03 L at most)."""
    if "lut" not in _LUMA_L:
        v = torch.arange(255 * _STEPS + 1, dtype=torch.float64) / (255.0 * _STEPS)
        _LUMA_L["lut"] = lightness(v.view(1, 1, -1).expand(3, 1, -1))[0, 0].numpy().astype(np.float32)
    idx = np.rint(luma_image(image) * np.float32(_STEPS))
    np.clip(idx, 0, 255 * _STEPS, out=idx)
    return _LUMA_L["lut"][idx.astype(np.int32)]


def _as_8bit_float(image: np.ndarray) -> np.ndarray:
    """An (H, W, 3) uint8 / uint16 / float [0, 1] image as float32 in 8-bit units."""
    scale = {np.dtype(np.uint8): 1.0, np.dtype(np.uint16): 255.0 / 65535.0}.get(image.dtype, 255.0)
    if scale == 1.0:
        return np.ascontiguousarray(image, np.float32)
    return np.multiply(image, np.float32(scale), dtype=np.float32)  # a new array: never the caller's


def luma_image(image: np.ndarray) -> np.ndarray:
    """Y′ (H, W) float32, 8-bit units, of an (H, W, 3) uint8 / uint16 / float [0, 1] image."""
    import cv2

    return cv2.transform(_as_8bit_float(image), _TO_YCC[:1])


def chroma_image(image: np.ndarray) -> np.ndarray:
    """(Cb, Cr) (H, W, 2) float32, 8-bit units, of an (H, W, 3) uint8 / uint16 / float
    [0, 1] image (0 for a black-and-white one)."""
    import cv2

    return cv2.transform(_as_8bit_float(image), _TO_YCC[1:])


def chroma_image_to_rgb(luma: np.ndarray, cc: np.ndarray, dtype) -> np.ndarray:
    """Luma Y′ (H, W) and chroma (Cb, Cr) (H, W, 2), float32 in 8-bit units → an (H, W, 3)
    RGB image of ``dtype`` (uint8 or uint16; rounded, clipped)."""
    import cv2

    planes = [np.ascontiguousarray(p, dtype=np.float32) for p in (luma, cc[..., 0], cc[..., 1])]
    rgb = cv2.transform(cv2.merge(planes), _FROM_YCC)
    peak = 65535.0 if np.dtype(dtype) == np.uint16 else 255.0
    if peak != 255.0:
        rgb *= np.float32(peak / 255.0)
    np.clip(rgb, 0.0, peak, out=rgb)
    return np.rint(rgb, out=rgb).astype(dtype)


def lab_image_to_chroma(L: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """(Cb, Cr) (H, W, 2) float32 of a CIE-Lab image given as L (H, W) and ab (H, W, 2)
    (the colour network's output, joined to the flow part's chroma)."""
    import cv2

    planes = [np.ascontiguousarray(p, dtype=np.float32) for p in (L, ab[..., 0], ab[..., 1])]
    rgb = np.clip(cv2.cvtColor(cv2.merge(planes), cv2.COLOR_Lab2RGB), 0.0, 1.0)
    return chroma_image(rgb)
