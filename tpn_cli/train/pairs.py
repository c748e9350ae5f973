"""Training pairs for colour and segmentation: two frames of one clip at a random
distance (or a still and its similarity transform), cropped at the same place.

A pair is a dict of float32 tensors (C, H, W):
  u1, v1   property and guidance of the key-frame (flow-aligned to frame 2 if align)
  u2, v2   property and guidance of the target frame
  rgb2     the target frame, uint8 RGB (for PSNR)
"""
from __future__ import annotations

import numpy as np
import torch

from .. import colour
from ..flow import dis_flow, warp
from ..models.infer import alignment_tuning
from ..models import tasks
from .sources import Clip

FLOW_MARGIN = 24  # flow is computed on a slightly larger window, so crop borders have context


def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _l8(lab: np.ndarray) -> np.ndarray:
    return np.clip(np.round(lab[..., 0] * 2.55), 0, 255).astype(np.uint8)


def similarity_transform(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A random similarity transform of ``img`` (s ∈ [0.9, 1.1], θ ∈ ±15°, shift ±0.1·min side)."""
    import cv2
    h, w = img.shape[:2]
    s, theta = rng.uniform(0.9, 1.1), rng.uniform(-15, 15)
    shift = rng.uniform(-0.1, 0.1, size=2) * min(h, w)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), theta, s)
    m[:, 2] += shift
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _pick_clip(rng: np.random.Generator, clips: list[Clip]) -> Clip:
    sizes = np.array([len(c) for c in clips], dtype=float)
    return clips[rng.choice(len(clips), p=sizes / sizes.sum())]


def _pick_frames(rng: np.random.Generator, n: int, max_dist: int) -> tuple[int, int]:
    """Key index and target index at a distance in [1, max_dist], either direction."""
    k = int(rng.integers(n))
    d = int(rng.integers(1, max_dist + 1))
    t = k + d if rng.random() < 0.5 else k - d
    if not 0 <= t < n:  # reflect back into the clip
        t = k - d if t >= n else k + d
    return k, int(np.clip(t, 0, n - 1))


def _window(rng, shape, size, centre=None, jitter=0):
    """Top-left corner of a size×size window inside ``shape``, optionally near ``centre``."""
    h, w = shape[:2]
    if centre is None:
        return int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    cy, cx = centre
    y = int(cy - size / 2 + rng.uniform(-jitter, jitter))
    x = int(cx - size / 2 + rng.uniform(-jitter, jitter))
    return int(np.clip(y, 0, h - size)), int(np.clip(x, 0, w - size))


def _shrunk(img: np.ndarray, short_side: int) -> np.ndarray:
    """``img`` shrunk to ``short_side`` (never enlarged; 0: unchanged)."""
    h, w = img.shape[:2]
    if not short_side or min(h, w) <= short_side:
        return img
    import cv2
    s = short_side / min(h, w)
    return cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)


def _crop(a, y, x, size):
    return a[y:y + size, x:x + size]


def _chw(a: np.ndarray) -> torch.Tensor:
    a = a if a.ndim == 3 else a[..., None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float()


def _lab(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 → (H, W, 3) float32 Lab."""
    t = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0
    return colour.rgb_to_lab(t).permute(1, 2, 0).numpy()


def colour_pair(rng: np.random.Generator, clips: list[Clip], crop: int, max_dist: int,
                align: bool = False, still_prob: float = 0.0, short_side: int = 0) -> dict:
    """One colour training pair (see module docstring); ``short_side`` shrinks the frames
    first (240: the clips seen as at colorize's working size; 0: as stored)."""
    size = crop + 2 * FLOW_MARGIN if align else crop
    clip = _pick_clip(rng, clips)
    if rng.random() < still_prob:
        img1 = _shrunk(clip.read(int(rng.integers(len(clip)))), short_side)
        img2 = similarity_transform(rng, img1)
    else:
        k, t = _pick_frames(rng, len(clip), max_dist)
        img1, img2 = _shrunk(clip.read(k), short_side), _shrunk(clip.read(t), short_side)
    frame_side = min(img1.shape[:2])
    y, x = _window(rng, img1.shape, size)
    img1, img2 = _crop(img1, y, x, size), _crop(img2, y, x, size)
    if rng.random() < 0.5:
        img1, img2 = img1[:, ::-1], img2[:, ::-1]
    img1, img2 = np.ascontiguousarray(img1), np.ascontiguousarray(img2)
    lab1, lab2 = _lab(img1), _lab(img2)
    if align:
        # flow from L only, as at inference on a grayscale film
        # the alignment flow's detail follows the frame's size, as at inference
        lab1 = warp(lab1, dis_flow(_l8(lab2), _l8(lab1), tuning=alignment_tuning(frame_side)))
        m = FLOW_MARGIN
        lab1, lab2, img2 = (a[m:m + crop, m:m + crop] for a in (lab1, lab2, img2))
    return {
        "u1": tasks.colour_prop(_chw(lab1[..., 1:])), "v1": tasks.colour_guide(_chw(lab1[..., :1])),
        "u2": tasks.colour_prop(_chw(lab2[..., 1:])), "v2": tasks.colour_guide(_chw(lab2[..., :1])),
        "rgb2": _chw(img2).to(torch.uint8),
    }


def degrade_mask(rng: np.random.Generator, fg: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """A (H, W) object probability spoilt like a prediction carried frame to frame.

    Smooth random displacement (boundary drift, up to ~6·strength px), erosion or dilation,
    a blur (soft edges) and sometimes a spurious or missing blob. Returns float32 in [0, 1].
    """
    import cv2
    h, w = fg.shape
    out = fg.astype(np.float32)
    amp = 6.0 * strength * rng.random()
    if amp > 0.5:
        grid = rng.normal(0.0, amp, size=(2, 5, 5)).astype(np.float32)
        fx = cv2.resize(grid[0], (w, h), interpolation=cv2.INTER_CUBIC)
        fy = cv2.resize(grid[1], (w, h), interpolation=cv2.INTER_CUBIC)
        out = warp(out, np.stack([fx, fy], axis=-1))
    r = int(rng.integers(0, int(1 + 4 * strength)))
    if r > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        out = cv2.dilate(out, k) if rng.random() < 0.5 else cv2.erode(out, k)
    if rng.random() < 0.3 * strength:  # a spurious blob or a hole
        cy, cx = rng.integers(0, h), rng.integers(0, w)
        rad = int(rng.integers(3, max(4, min(h, w) // 8)))
        cv2.circle(out, (int(cx), int(cy)), rad, float(rng.random() < 0.5), -1)
    sigma = 2.0 * strength * rng.random()
    if sigma > 0.3:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def segment_pair(rng: np.random.Generator, clips: list[Clip], crop: int, max_dist: int,
                 align: bool = False, degrade: float = 0.0, mask_guide: bool = False) -> dict:
    """One segmentation pair: masks as (background, object) probabilities, RGB guidance.

    The crop is placed near the key-frame's object so most pairs contain it. ``degrade``
    > 0 spoils the (aligned) key mask with :func:`degrade_mask` at that strength, so the
    model learns to correct a chained prediction (tpn_cli.mask_tracker). ``mask_guide``
    appends the key mask's object probability to both guidance images (4 channels), so
    the gates can depend on where the object is believed to be.
    """
    size = crop + 2 * FLOW_MARGIN if align else crop
    clip = _pick_clip(rng, clips)
    k, t = _pick_frames(rng, len(clip), max_dist)
    img1, img2 = clip.read(k), clip.read(t)
    m1, m2 = clip.read_mask(k), clip.read_mask(t)
    ys, xs = np.nonzero(m1)
    centre = (ys.mean(), xs.mean()) if len(ys) else None
    y, x = _window(rng, img1.shape, size, centre, jitter=size / 3)
    img1, img2, m1, m2 = (_crop(a, y, x, size) for a in (img1, img2, m1, m2))
    if rng.random() < 0.5:
        img1, img2, m1, m2 = (a[:, ::-1] for a in (img1, img2, m1, m2))
    img1, img2, m1, m2 = (np.ascontiguousarray(a) for a in (img1, img2, m1, m2))
    p1 = np.stack([m1 == 0, m1 > 0], axis=-1).astype(np.float32)
    p2 = np.stack([m2 == 0, m2 > 0], axis=-1).astype(np.float32)
    if align:
        flow = dis_flow(_gray(img2), _gray(img1))
        p1, img1 = warp(p1, flow), warp(img1, flow)
        mg = FLOW_MARGIN
        p1, p2, img1, img2 = (a[mg:mg + crop, mg:mg + crop] for a in (p1, p2, img1, img2))
    if degrade > 0:
        fg = degrade_mask(rng, p1[..., 1], degrade)
        p1 = np.stack([1.0 - fg, fg], axis=-1).astype(np.float32)
    v1, v2 = _chw(img1) / 255.0, _chw(img2) / 255.0
    if mask_guide:
        fg = _chw(1.0 - p1[..., 0])  # object(s) probability of the key
        v1, v2 = torch.cat([v1, fg]), torch.cat([v2, fg])
    return {"u1": _chw(p1), "v1": v1, "u2": _chw(p2), "v2": v2,
            "rgb2": _chw(img2).to(torch.uint8)}


def collate(items: list[dict]) -> dict:
    """Stack a list of pairs into a batch."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def fixed_pairs(make, n: int, seed: int) -> list[dict]:
    """``n`` pairs from ``make(rng)`` with a fixed seed: the same validation set every time."""
    rng = np.random.default_rng(seed)
    return [make(rng) for _ in range(n)]


__all__ = ["colour_pair", "degrade_mask", "segment_pair", "similarity_transform", "collate", "fixed_pairs"]
