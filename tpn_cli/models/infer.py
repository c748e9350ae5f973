"""Inference helper: one target frame from one key-frame, with the optional flow alignment
that a model trained with ``align`` expects (model.config.extra['align']).

Flow is computed from the guidance images only (L for colour, LDR/RGB otherwise), since
that is all a real input (a grayscale film, an LDR video) provides.
"""
from __future__ import annotations

import numpy as np
import torch

from ..flow import dis_flow, warp
from .tpn import TPN


def guide_to_gray(v: torch.Tensor) -> np.ndarray:
    """Guidance (1 or 3, H, W) in [0, 1] → (H, W) uint8 for the optical flow."""
    v = v.detach().float().cpu()
    g = v[0] if v.shape[0] == 1 else 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2]
    return (g.clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def align_key(u_key: torch.Tensor, v_key: torch.Tensor, v_tgt: torch.Tensor,
              flow: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp one key-frame's property and guidance (C, H, W) into the target frame."""
    if flow is None:
        flow = dis_flow(guide_to_gray(v_tgt), guide_to_gray(v_key))

    def w(t):
        return torch.from_numpy(warp(t.permute(1, 2, 0).numpy(), flow)).permute(2, 0, 1)

    return w(u_key.float()), w(v_key.float())


@torch.no_grad()
def predict(model: TPN, u_key: torch.Tensor, v_key: torch.Tensor, v_tgt: torch.Tensor) -> torch.Tensor:
    """Target properties (N, C, H, W) from key-frames; aligns by flow when the model wants it."""
    if model.config.extra.get("align", False):
        pairs = [align_key(u_key[i], v_key[i], v_tgt[i]) for i in range(len(u_key))]
        u_key = torch.stack([p[0] for p in pairs])
        v_key = torch.stack([p[1] for p in pairs])
    return model(u_key, v_key, v_tgt)
