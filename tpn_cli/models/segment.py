"""Long-range mask propagation (DAVIS protocol: only the first frame's mask is given).

A single TPN step from the first frame cannot reach frames 50–100 frames away: the
direct flow between them is garbage and the scans only move labels along image
affinities, a few pixels. So masks are carried frame to frame (issue 5, "propagate from
the first frame and from recent predictions"):

    probs_t = TPN(warp(probs_{t-1}, flow_{t←t-1}), warp(rgb_{t-1}), rgb_t)

The flow moves the previous prediction into frame t; the TPN (trained on short pairs
whose key mask is degraded like a chained prediction) snaps it back to frame t's edges,
so errors do not pile up the way they do in plain flow chaining. Probabilities are kept
soft between steps (clamped to [0, 1], renormalised over the channels).

    from tpn_cli.models.segment import MaskPropagator
    prop = MaskPropagator(model)            # a segment TPN, or None for flow chaining only
    prop.start(rgb0, probs0)                # (3, H, W) in [0, 1]; (K, H, W) one-hot
    for rgb in later_frames:                # in order
        probs = prop.step(rgb)              # (K, H, W); ids = probs.argmax(0)

``propagate_masks(model, frames, probs0)`` runs it over a list of frames.
"""
from __future__ import annotations

import numpy as np
import torch

from ..flow import dis_flow, warp
from .infer import guide_to_gray
from .tpn import TPN


def normalise_probs(u: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Clamp (K, H, W) (or (N, K, H, W)) to [0, 1] and make the channels sum to 1."""
    u = u.clamp(0.0, 1.0)
    return u / u.sum(dim=-3, keepdim=True).clamp(min=eps)


def _warp_t(t: torch.Tensor, flow: np.ndarray) -> torch.Tensor:
    """Warp a (C, H, W) tensor with a (H, W, 2) flow (see :func:`tpn_cli.flow.warp`)."""
    out = warp(t.permute(1, 2, 0).contiguous().numpy(), flow)
    return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1)


class MaskPropagator:
    """Frame-to-frame mask propagation with an optional TPN refinement (module docstring).

    model    a segment TPN (channelwise) or None (plain flow chaining of probabilities)
    preset   DIS preset of the frame-to-frame flow
    sharpen  exponent applied to the probabilities after each step (1 = none); > 1 pulls
             them towards 0/1 so the chain does not blur out
    """

    def __init__(self, model: TPN | None = None, preset: str = "medium", sharpen: float = 1.0):
        self.model = model
        self.preset = preset
        self.sharpen = sharpen
        self.prev_rgb: torch.Tensor | None = None
        self.prev_gray: np.ndarray | None = None
        self.probs: torch.Tensor | None = None

    def start(self, rgb: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Set the first frame (3, H, W) and its probabilities (K, H, W); returns them."""
        if rgb.shape[-2:] != probs.shape[-2:]:
            raise ValueError(f"frame {tuple(rgb.shape)} and mask {tuple(probs.shape)} sizes differ")
        self.prev_rgb = rgb.detach().float().cpu()
        self.prev_gray = guide_to_gray(self.prev_rgb)
        self.probs = normalise_probs(probs.detach().float().cpu())
        return self.probs

    @torch.no_grad()
    def step(self, rgb: torch.Tensor) -> torch.Tensor:
        """Probabilities (K, H, W) of the next frame ``rgb`` (3, H, W)."""
        if self.probs is None:
            raise RuntimeError("call start() with the first frame and its mask first")
        rgb = rgb.detach().float().cpu()
        gray = guide_to_gray(rgb)
        flow = dis_flow(gray, self.prev_gray, self.preset)
        u = _warp_t(self.probs, flow)
        if self.model is not None:
            v_key = _warp_t(self.prev_rgb, flow)
            u = self.model(u[None], v_key[None], rgb[None])[0]
        u = normalise_probs(u)
        if self.sharpen != 1.0:
            u = normalise_probs(u ** self.sharpen)
        self.prev_rgb, self.prev_gray, self.probs = rgb, gray, u
        return u


def propagate_masks(model: TPN | None, frames: list[torch.Tensor], probs0: torch.Tensor,
                    **options) -> list[torch.Tensor]:
    """Probabilities (K, H, W) for every frame of ``frames`` (the first gets ``probs0``)."""
    prop = MaskPropagator(model, **options)
    out = [prop.start(frames[0], probs0)]
    out += [prop.step(f) for f in frames[1:]]
    return out


__all__ = ["MaskPropagator", "normalise_probs", "propagate_masks"]
