"""Dense optical flow (OpenCV DIS) and backward warping: the flow baseline, and the
optional motion-aware alignment of a key-frame before the TPN refines it.

Arrays are numpy, channel-last: gray images (H, W) uint8, properties (H, W) or (H, W, C).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

try:
    import cv2
except ImportError:  # pragma: no cover - reported when used
    cv2 = None

PRESETS = ("ultrafast", "fast", "medium")


def require_cv2():
    if cv2 is None:
        raise RuntimeError("optical flow needs OpenCV: pip install opencv-python-headless")
    return cv2


@dataclass(frozen=True)
class DisTuning:
    """Overrides of a DIS preset's settings (OpenCV's names)."""

    finest_scale: int            # finest pyramid level (0: full size; MEDIUM stops at 1)
    patch_stride: int
    gradient_descent_iterations: int
    variational_refinement_iterations: int


def dis_flow(target_gray: np.ndarray, key_gray: np.ndarray, preset: str = "medium",
             tuning: DisTuning | None = None) -> np.ndarray:
    """Flow (H, W, 2) float32 from the target frame to the key-frame (DIS, OpenCV).

    target(x) ≈ key(x + flow(x)), so :func:`warp` samples the key-frame into the target.
    ``tuning`` overrides some of the preset's settings.
    """
    cv = require_cv2()
    code = {"ultrafast": cv.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv.DISOPTICAL_FLOW_PRESET_MEDIUM}[preset]
    dis = cv.DISOpticalFlow_create(code)
    if tuning is not None:
        dis.setFinestScale(tuning.finest_scale)
        dis.setPatchStride(tuning.patch_stride)
        dis.setGradientDescentIterations(tuning.gradient_descent_iterations)
        dis.setVariationalRefinementIterations(tuning.variational_refinement_iterations)
    return dis.calc(_as_u8(target_gray), _as_u8(key_gray), None)


def dis_flow_at(target_gray: np.ndarray, key_gray: np.ndarray, size: tuple[int, int],
                preset: str = "medium", tuning: DisTuning | None = None) -> np.ndarray:
    """:func:`dis_flow` computed on the images resized to ``size`` (h, w), the flow
    enlarged back to theirs (its vectors scaled with it)."""
    cv = require_cv2()
    h, w = target_gray.shape[:2]
    sh, sw = size
    if (sh, sw) == (h, w):
        return dis_flow(target_gray, key_gray, preset, tuning)
    small = dis_flow(cv.resize(_as_u8(target_gray), (sw, sh), interpolation=cv.INTER_AREA),
                     cv.resize(_as_u8(key_gray), (sw, sh), interpolation=cv.INTER_AREA), preset, tuning)
    return resize_flow(small, (h, w))


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``flow`` (H, W, 2) resampled to ``size`` (h, w), its vectors scaled with it (area
    averaging when shrinking, bilinear when enlarging)."""
    cv = require_cv2()
    H, W = flow.shape[:2]
    h, w = size
    if (h, w) == (H, W):
        return flow
    shrink = h < H or w < W
    out = cv.resize(flow, (w, h), interpolation=cv.INTER_AREA if shrink else cv.INTER_LINEAR)
    out[..., 0] *= w / W
    out[..., 1] *= h / H
    return out


#: The flow baseline's flow is computed at most at this short side (larger frames are
#: shrunk for it, the flow enlarged back): the baseline as measured (DAVIS, 480p), and DIS
#: at 1080p would cost ~5× for detail the key-frame's property does not need.
BASELINE_SHORT_SIDE = 480


def capped_size(h: int, w: int, max_short_side: int) -> tuple[int, int]:
    """(h, w) shrunk, aspect ratio kept, so that the short side is at most
    ``max_short_side`` (0: as is): the size :func:`baseline_flow` computes at."""
    s = max_short_side / min(h, w) if max_short_side else 1.0
    return (max(8, round(h * s)), max(8, round(w * s))) if s < 1.0 else (h, w)


def baseline_flow(target_gray: np.ndarray, key_gray: np.ndarray, preset: str = "medium",
                  max_short_side: int = BASELINE_SHORT_SIDE, tuning: DisTuning | None = None) -> np.ndarray:
    """The flow baseline's flow (H, W, 2) from the target to the key-frame: DIS between
    the gray images (H, W), computed at up to ``max_short_side`` (0: full size,
    :func:`capped_size`); ``tuning`` overrides some of the preset's settings."""
    size = capped_size(*target_gray.shape[:2], max_short_side)
    return dis_flow_at(target_gray, key_gray, size, preset, tuning)


def flow_warp(target_gray: np.ndarray, key_gray: np.ndarray, key: np.ndarray,
              preset: str = "medium", max_short_side: int = BASELINE_SHORT_SIDE) -> np.ndarray:
    """The flow baseline: ``key`` (H, W[, C]) moved into the target frame by
    :func:`baseline_flow`."""
    return warp(key, baseline_flow(target_gray, key_gray, preset, max_short_side))


def warp(key: np.ndarray, flow: np.ndarray, interpolation: str = "linear") -> np.ndarray:
    """Sample ``key`` (H, W[, C]) at x + flow(x): the key-frame moved into the target frame."""
    cv = require_cv2()
    gx, gy = _sample_points(flow)
    mode = cv.INTER_LINEAR if interpolation == "linear" else cv.INTER_NEAREST
    out = cv.remap(np.ascontiguousarray(key, dtype=np.float32) if key.dtype != np.uint8 else key,
                   gx, gy, mode, borderMode=cv.BORDER_REPLICATE)
    if key.ndim == 3 and out.ndim == 2:  # OpenCV drops a single trailing channel
        out = out[..., None]
    return out


def warp_planes(planes: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`warp` of a channel-first float32 stack ``planes`` (C, H, W), plane by plane
    (one sampling map for all, no transposes: 2× faster than an (H, W, C) warp and its
    copy back at 1080p); ``flow`` at any size, resized to (H, W) first. Returns the warped
    (C, H, W) and ``outside`` (H, W) float32: how far (px) each pixel's source lies outside
    the key's frame, 0 inside (the warp only repeats the key's border there)."""
    cv = require_cv2()
    h, w = planes.shape[1:]
    gx, gy = _sample_points(resize_flow(flow, (h, w)))
    out = np.empty(planes.shape, np.float32)
    for c in range(planes.shape[0]):
        out[c] = cv.remap(np.ascontiguousarray(planes[c], dtype=np.float32), gx, gy, cv.INTER_LINEAR,
                          borderMode=cv.BORDER_REPLICATE)
    outside = np.maximum(np.maximum(-gx, gx - (w - 1)), np.maximum(-gy, gy - (h - 1)))
    np.maximum(outside, 0, out=outside)
    return out, outside


def _sample_points(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The key-frame coordinates x + flow(x) (two (H, W) float32 maps) a warp samples."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gx += flow[..., 0]
    gy += flow[..., 1]
    return gx, gy


def _as_u8(img: np.ndarray) -> np.ndarray:
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    return np.ascontiguousarray(np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8))
