"""Colour baselines that `tpn colorize` must beat (issue 19), as small reusable functions.

The two-key flow baseline, exactly as issue 19 states it:

* warp BOTH neighbouring key-frames into frame t with OpenCV DIS optical flow (preset
  MEDIUM) computed at the frame's full resolution on the 8-bit lightness (L × 255/100);
* weight each warped key per pixel by exp(−e/8) / (|t − k| + 1), where e is the 9×9 box
  mean of |warped key L − frame L| in 8-bit L;
* normalise the weights; where only one key exists it is used alone.

Arrays are numpy, channel-last; images are uint8 RGB (H, W, 3) as the readers give them.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tpn_cli import colour  # noqa: E402
from tpn_cli.flow import dis_flow, warp  # noqa: E402

#: The issue's confidence: 9×9 box, exp(−e / 8) with e in 8-bit L.
BOX, SCALE = 9, 8.0


def gray_L(rgb: np.ndarray) -> np.ndarray:
    """8-bit lightness (H, W) uint8 of an RGB frame: round(L × 255 / 100)."""
    L = colour.lightness_image(rgb)
    return np.clip(np.rint(L * (255.0 / 100.0)), 0, 255).astype(np.uint8)


class Frame:
    """One frame's pixels as the baselines use them: RGB, L (float), ab (float), 8-bit L."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.L = colour.lightness_image(rgb)
        self.ab = colour.ab_image(rgb)
        self.gray = np.clip(np.rint(self.L * (255.0 / 100.0)), 0, 255).astype(np.uint8)


def warp_key(target: Frame, key: Frame, preset: str = "medium") -> tuple[np.ndarray, np.ndarray]:
    """The key-frame's ab (H, W, 2) and 8-bit L (H, W, float32) moved into ``target`` by
    DIS flow at full resolution (target → key)."""
    flow = dis_flow(target.gray, key.gray, preset)
    both = np.concatenate([key.ab, key.gray[..., None].astype(np.float32)], axis=2)
    out = warp(both, flow)
    return out[..., :2], out[..., 2]


def photometric_error(warped_gray: np.ndarray, target_gray: np.ndarray, box: int = BOX) -> np.ndarray:
    """e: the ``box``×``box`` mean of |warped key L − frame L| (8-bit L), (H, W) float32."""
    d = np.abs(warped_gray.astype(np.float32) - target_gray.astype(np.float32))
    return cv2.blur(d, (box, box), borderType=cv2.BORDER_REPLICATE)


def two_key(target: Frame, t: int, keys: Sequence[tuple[int, Frame]]) -> np.ndarray:
    """The issue-19 two-key flow baseline: ab (H, W, 2) of frame ``t`` from its one or two
    neighbouring key-frames ``keys`` [(k, Frame), ...]."""
    num = np.zeros((*target.L.shape, 2), np.float32)
    den = np.zeros(target.L.shape, np.float32)
    for k, key in keys:
        ab, g = warp_key(target, key)
        w = np.exp(-photometric_error(g, target.gray) / SCALE) / (abs(t - k) + 1.0)
        num += w[..., None] * ab
        den += w
    return num / np.maximum(den, 1e-12)[..., None]


def rgb_of(target: Frame, ab: np.ndarray) -> np.ndarray:
    """8-bit RGB of the frame's own L with the predicted ``ab``."""
    return colour.lab_image_to_rgb(target.L, ab.astype(np.float32), np.uint8)
