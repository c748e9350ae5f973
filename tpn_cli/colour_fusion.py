"""Learned fusion of the two flow-warped key-frames of a frame (colour, issue 19).

Both neighbouring key-frames are warped into the frame by dense flow; which of the two is
right at a pixel is what limits the two-key blend (a per-pixel oracle choice is +1.5 dB
over the photometric-fit weights of the issue's baseline). A small network decides it
from evidence a fixed formula weighs badly: each warped key's lightness mismatch at four
scales, its signed brightness change, its flow's size, roughness and how much of it
leaves the frame, its distance in time, and how much the two keys disagree.

The network is per pixel (1×1 convolutions) on features computed at a fixed short side
(:data:`FEATURE_SHORT_SIDE`; the box sizes are in those pixels), shared between the two
keys so the two orders give the same answer: for key i it sees (key i, the other key,
the frame) and scores key i; ``w0 = σ(s0 − s1)``. It also gives each key a confidence;
their w-weighted mean is the confidence of the blend, and where it is low the colour is
spread from the confident pixels around within the same lightness region
(:func:`tpn_cli.fill.fill_unfit`)::

    out = c·(w0·ab0 + (1 − w0)·ab1) + (1 − c)·fill

One key only (before the first key-frame of a shot, after the last): the other key's
features are zeros with its ``present`` flag 0; w0 = 1.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from . import fill, flow, weights
from .errors import WeightsUnavailableError
from .models import infer

__all__ = ["FEATURE_SHORT_SIDE", "KEY_FEATURES", "SHARED_FEATURES", "FusionNet", "KeyWarp",
           "feature_size", "key_features", "shared_features", "weights_and_confidences", "fuse",
           "save_fusion", "load_fusion"]

#: Features are computed at this short side (the frame shrunk, area-averaged): the
#: decision between two keys is smooth at this scale, and the cost stays fixed.
FEATURE_SHORT_SIDE = 240
#: Per key: |ΔL| at 1, 3, 7, 23 px, signed ΔL at 7, flow size, flow roughness, share of
#: the flow leaving the frame, distance in frames / 30, present.
KEY_FEATURES = 10
#: Shared: |ab0 − ab1| at 1 and 5 px, the frame's L gradient at 5 px, its L.
SHARED_FEATURES = 4
FORMAT = "tpn-colour-fusion"


class KeyWarp:
    """One key-frame warped into the frame: its ab (2, H, W) and 8-bit-scaled L (H, W)
    at the frame's size, the flow (H, W, 2) that moved it, its distance |t − k|."""

    def __init__(self, ab: np.ndarray, gray: np.ndarray, flow_map: np.ndarray, distance: float) -> None:
        self.ab, self.gray, self.flow, self.distance = ab, gray, flow_map, distance


def feature_size(h: int, w: int) -> tuple[int, int]:
    """(h, w) of the feature maps of an h × w frame."""
    s = min(1.0, FEATURE_SHORT_SIDE / min(h, w))
    return max(8, round(h * s)), max(8, round(w * s))


def _shrink(x: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    cv = flow.require_cv2()
    if x.shape[:2] == size:
        return np.ascontiguousarray(x, dtype=np.float32)
    return cv.resize(np.ascontiguousarray(x, dtype=np.float32), (size[1], size[0]), interpolation=cv.INTER_AREA)


def _box(x: np.ndarray, k: int) -> np.ndarray:
    cv = flow.require_cv2()
    return cv.blur(x, (k, k), borderType=cv.BORDER_REPLICATE)


def key_features(gray: np.ndarray, key: KeyWarp, size: tuple[int, int]) -> np.ndarray:
    """(KEY_FEATURES, h, w) float32 at ``size`` of one warped key against the frame's
    8-bit-scaled lightness ``gray`` (H, W)."""
    g = _shrink(gray, size)
    d = _shrink(key.gray, size) - g
    a = np.abs(d)
    fl = flow.resize_flow(np.ascontiguousarray(key.flow, dtype=np.float32), size)
    h, w = size
    mag = np.sqrt((fl ** 2).sum(axis=2))
    rough = np.abs(np.diff(fl, axis=0, append=fl[-1:])).sum(axis=2) + \
        np.abs(np.diff(fl, axis=1, append=fl[:, -1:])).sum(axis=2)
    xs = np.arange(w, dtype=np.float32)[None, :] + fl[..., 0]
    ys = np.arange(h, dtype=np.float32)[:, None] + fl[..., 1]
    outside = ((xs < 0) | (xs > w - 1) | (ys < 0) | (ys > h - 1)).astype(np.float32)
    return np.stack([
        np.log1p(a), np.log1p(_box(a, 3)), np.log1p(_box(a, 7)), np.log1p(_box(a, 23)),
        _box(d, 7) / 16.0,
        np.log1p(mag) / 3.0, np.log1p(_box(rough, 5)), _box(outside, 5),
        np.full(size, key.distance / 30.0, np.float32), np.ones(size, np.float32),
    ]).astype(np.float32)


def shared_features(gray: np.ndarray, keys: Sequence[KeyWarp], size: tuple[int, int]) -> np.ndarray:
    """(SHARED_FEATURES, h, w) float32 at ``size``: the keys' disagreement and the frame."""
    g = _shrink(gray, size)
    if len(keys) == 2:
        diff = np.sqrt(((_shrink(keys[0].ab.transpose(1, 2, 0), size)
                         - _shrink(keys[1].ab.transpose(1, 2, 0), size)) ** 2).sum(axis=2))
    else:
        diff = np.zeros(size, np.float32)
    gy, gx = np.gradient(g)
    grad = np.sqrt(gx ** 2 + gy ** 2)
    return np.stack([np.log1p(diff), np.log1p(_box(diff, 5)), np.log1p(_box(grad, 5)),
                     g / 255.0]).astype(np.float32)


class FusionNet(nn.Module):
    """Per-pixel scores and confidences of two warped keys (see the module doc). Features
    are channel-last: (..., KEY_FEATURES) per key, (..., SHARED_FEATURES) shared."""

    def __init__(self, hidden: int = 32) -> None:
        super().__init__()
        self.hidden = hidden
        n_in = 2 * KEY_FEATURES + SHARED_FEATURES
        self.mlp = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, 2))

    def parts(self, f0: torch.Tensor, f1: torch.Tensor,
              shared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``f0``, ``f1`` (..., KEY_FEATURES), ``shared`` (..., SHARED_FEATURES) → w0 and
        each key's confidence, all (..., 1) in [0, 1]. A missing key 1 has ``f1`` all
        zeros (its present flag 0): then w0 = 1."""
        s0, c0 = self.mlp(torch.cat([f0, f1, shared], -1)).split(1, -1)
        s1, c1 = self.mlp(torch.cat([f1, f0, shared], -1)).split(1, -1)
        present1 = f1[..., KEY_FEATURES - 1:KEY_FEATURES]
        w0 = torch.sigmoid(s0 - s1) * present1 + (1.0 - present1)
        return w0, torch.sigmoid(c0), torch.sigmoid(c1)

    def forward(self, f0: torch.Tensor, f1: torch.Tensor,
                shared: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """w0 and the blend's confidence c = w0·c0 + (1 − w0)·c1 (see :meth:`parts`)."""
        w0, c0, c1 = self.parts(f0, f1, shared)
        return w0, w0 * c0 + (1.0 - w0) * c1


def weights_and_confidences(net: FusionNet, gray: np.ndarray,
                            keys: Sequence[KeyWarp]) -> torch.Tensor:
    """(3, H, W) at the frame's size: w0 and each key's confidence (:meth:`FusionNet.parts`)
    for one or two warped ``keys`` of a frame of 8-bit-scaled lightness ``gray`` (H, W)."""
    H, W = gray.shape
    size = feature_size(H, W)

    def pixels(x: np.ndarray) -> torch.Tensor:  # (C, h, w) → (h·w, C)
        return torch.from_numpy(np.ascontiguousarray(x.reshape(x.shape[0], -1).T))

    f0 = pixels(key_features(gray, keys[0], size))
    f1 = pixels(key_features(gray, keys[1], size)) if len(keys) == 2 else torch.zeros_like(f0)
    sh = pixels(shared_features(gray, keys, size))
    with torch.inference_mode():
        maps = torch.cat(net.parts(f0, f1, sh), 1).T.reshape(1, 3, *size)
        return torch.nn.functional.interpolate(maps, size=(H, W), mode="bilinear", align_corners=False)[0]


def fuse(net: FusionNet, L: np.ndarray, gray: np.ndarray, keys: Sequence[KeyWarp],
         alphas: Sequence[torch.Tensor | None] = ()) -> torch.Tensor:
    """The fused ab (2, H, W) of a frame of lightness ``L`` (H, W, 0..100) from one or
    two warped keys. ``alphas``: each key's warped paint alpha (1, H, W) for partly
    painted keys (None: fully painted); the key weights follow the paint, and so does
    the confidence."""
    w0, c0, c1 = weights_and_confidences(net, gray, keys).split(1)
    abs_ = [torch.from_numpy(np.ascontiguousarray(k.ab)) for k in keys]
    if len(keys) == 1:
        return fill.fill_unfit(abs_[0], c0[0], torch.from_numpy(np.ascontiguousarray(L)))
    ws = [w0, 1.0 - w0]
    if any(a is not None for a in alphas):
        ws = infer.paint_weights(ws, alphas)
    ab = ws[0] * abs_[0] + ws[1] * abs_[1]
    c = ws[0] * c0 + ws[1] * c1
    return fill.fill_unfit(ab, c[0], torch.from_numpy(np.ascontiguousarray(L)))


def save_fusion(net: FusionNet, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write ``net`` (weights + size + ``meta``) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "version": 1, "hidden": net.hidden,
               "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()},
               "meta": meta or {}}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_fusion(path: str | os.PathLike) -> FusionNet:
    """The :class:`FusionNet` stored at ``path`` (eval mode). ValueError on foreign files."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tpn colour-fusion file")
    net = FusionNet(payload["hidden"])
    net.load_state_dict(payload["state_dict"])
    return net.eval()


def load_shipped(spec: str | None = None) -> FusionNet:
    """The shipped key fusion (the manifest's default ``colour-fusion`` entry), or the
    file or name ``spec``. Raises WeightsUnavailableError naming the file and the fix."""

    path = weights.resolve(spec, "colour-fusion")
    try:
        return load_fusion(path)
    except Exception as exc:  # torch raises many types for foreign/corrupt files
        raise WeightsUnavailableError(f"cannot load the colour key fusion ({type(exc).__name__}: {exc})",
                                      path=path, hint="re-download it or check `tpn weights verify`",
                                      code="WEIGHTS_CORRUPT") from exc
