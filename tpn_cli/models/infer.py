"""Inference pieces that :class:`tpn_cli.propagator.KeyPropagator` puts together: the
flow alignment that a model trained with ``align`` expects (model.config.extra['align']),
the per-pixel fit of an aligned key, hold-back, blend and paint weights.

Flow is computed from the guidance images only (L for colour, LDR/RGB otherwise), since
that is all a real input (a grayscale film, an LDR video) provides.

The alignment flow is DIS (preset :data:`ALIGN_PRESET`) on the guidance images at
:data:`ALIGN_SCALE` of their size (enlarged back, vectors scaled, below 1). It is the
largest cost of a colour run after the guidance network (docs/BENCHMARKS.md), but a
cheaper flow lost quality (docs/what-we-tried.md, "Numbers behind the defaults"), so the default is full size, MEDIUM: the flow the
shipped models were trained with.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..flow import DisTuning, dis_flow_at, warp
from .tpn import TPN

#: DIS preset of the alignment flow.
ALIGN_PRESET = "medium"
#: Size at which the alignment flow is computed, relative to the guidance images.
ALIGN_SCALE = 1.0
#: Below this short side the alignment flow matches patches at full size (DIS finest
#: scale 0) instead of MEDIUM's half size, so its detail does not depend on the working
#: size. Its per-level work is cut (no variational refinement, 8 descent iterations) to
#: cost ~2× the half-size flow, not ~4× (docs/what-we-tried.md, "Numbers behind the defaults").
FINE_ALIGN_BELOW = 360
FINE_ALIGN = DisTuning(finest_scale=0, patch_stride=3, gradient_descent_iterations=8,
                       variational_refinement_iterations=0)



def guide_to_gray(v: torch.Tensor) -> np.ndarray:
    """Guidance (1 or 3, H, W) in [0, 1] → (H, W) uint8 for the optical flow."""
    v = v.detach().float().cpu()
    g = v[0] if v.shape[0] == 1 else 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2]
    return (g.clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def alignment_flow(target_gray: np.ndarray, key_gray: np.ndarray, scale: float | None = None,
                   preset: str | None = None) -> np.ndarray:
    """Flow (H, W, 2) from the target to the key-frame, for :func:`align_key`: DIS at
    ``scale`` (default :data:`ALIGN_SCALE`) of the images' size, enlarged back."""
    scale = ALIGN_SCALE if scale is None else scale
    h, w = target_gray.shape[:2]
    sh, sw = max(8, round(h * scale)), max(8, round(w * scale))
    return dis_flow_at(target_gray, key_gray, (sh, sw), preset or ALIGN_PRESET, alignment_tuning(min(sh, sw)))


def alignment_tuning(short_side: int) -> DisTuning | None:
    """DIS settings of the alignment flow on frames of ``short_side`` px (None: the
    preset's own), see :data:`FINE_ALIGN_BELOW`."""
    return FINE_ALIGN if short_side < FINE_ALIGN_BELOW else None


def align_key(u_key: torch.Tensor, v_key: torch.Tensor, v_tgt: torch.Tensor,
              flow: np.ndarray | None = None, key_gray: np.ndarray | None = None,
              tgt_gray: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp one key-frame's property and guidance (C, H, W) into the target frame.

    ``key_gray``/``tgt_gray``: the images' :func:`guide_to_gray`, when already known (a
    key-frame's is computed once for all the frames it feeds)."""
    if flow is None:
        tgt_gray = guide_to_gray(v_tgt) if tgt_gray is None else tgt_gray
        key_gray = guide_to_gray(v_key) if key_gray is None else key_gray
        flow = alignment_flow(tgt_gray, key_gray)
    # property and guidance in one remap call (same flow)
    both = torch.cat([u_key.float(), v_key.float()], dim=0).permute(1, 2, 0).numpy()
    out = torch.from_numpy(warp(both, flow)).permute(2, 0, 1)
    c = u_key.shape[0]
    return out[:c], out[c:]


#: Blending two key-frames (``--mode blend``): each aligned key's weight is its distance
#: weight × exp(−(|guidance difference| × 100, averaged over a 15×15 box) / 6) + a floor,
#: so where one key's warp disagrees with the frame the other key wins (docs/what-we-tried.md, "Numbers behind the defaults").
CONFIDENCE_RADIUS, CONFIDENCE_SCALE, CONFIDENCE_FLOOR = 7, 6.0, 1e-3


def alignment_confidence(v_key_aligned: torch.Tensor, v_tgt: torch.Tensor) -> torch.Tensor:
    """(1, H, W) confidence in (0, 1] that a flow-aligned key-frame matches the target,
    from their guidance images (C, H, W) in [0, 1] (see :data:`CONFIDENCE_SCALE`)."""
    import torch.nn.functional as F

    d = (v_key_aligned.float() - v_tgt.float()).abs().mean(0, keepdim=True)[None] * 100.0
    r = CONFIDENCE_RADIUS
    if d.device.type == "cpu" and not d.requires_grad:
        # OpenCV's running-sum box filter with the same replicated border: equal to the
        # pooling below up to float rounding (~1e-6), ~10× faster (it runs twice a frame
        # and key in a colour run: blend weights and hold-back)
        import cv2

        box = cv2.blur(d[0, 0].numpy(), (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REPLICATE)
        return torch.from_numpy(box)[None].div_(-CONFIDENCE_SCALE).exp_()
    d = F.pad(d, (r, r, r, r), mode="replicate")
    d = F.avg_pool2d(F.avg_pool2d(d, (1, 2 * r + 1), stride=1), (2 * r + 1, 1), stride=1)  # separable box
    return torch.exp(-d[0] / CONFIDENCE_SCALE)


#: How much a flow-aligned model's correction is held back where the aligned key-frame
#: already fits the frame: û = u + (1 − β·fit)·(TPN(u) − u), u the aligned key's property,
#: fit = :func:`alignment_confidence`. Where flow demonstrably fits, it is trusted; where it
#: fails (occlusions, long distances) the TPN's full correction stays. Measured on colour
#: (docs/what-we-tried.md, "Motion-aware input"); other tasks not measured (0: no change).
FIT_TRUST = {"colour": 1.0}


def hold_back(model: TPN, u_aligned: torch.Tensor, out: torch.Tensor,
              v_key_aligned: torch.Tensor, v_tgt: torch.Tensor) -> torch.Tensor:
    """``out`` (N, C, H, W) of a flow-aligned ``model`` with its correction of
    ``u_aligned`` held back by :data:`FIT_TRUST` where the aligned key fits the target."""
    beta = FIT_TRUST.get(model.config.task, 0.0)
    if not beta or not wants_alignment(model):
        return out
    fit = torch.stack([alignment_confidence(k, t) for k, t in zip(v_key_aligned, v_tgt)])
    return u_aligned + (1.0 - beta * fit) * (out - u_aligned)


def blend(parts: Sequence[tuple[torch.Tensor, float | torch.Tensor]]) -> torch.Tensor:
    """Σ weight × prediction over (prediction, weight) pairs: every task's property is
    blended linearly (colour in ab, HDR in log radiance, masks as probabilities)."""
    return sum(w * u for u, w in parts)


def blend_weights(distance_weights: list[float], v_keys_aligned: list[torch.Tensor],
                  v_tgt: torch.Tensor) -> list[torch.Tensor]:
    """Per-pixel weights (1, H, W), summing to 1, for blending the predictions from
    several aligned key-frames: distance weight × (confidence + floor), normalised."""
    raw = [w * (alignment_confidence(vk, v_tgt) + CONFIDENCE_FLOOR)
           for w, vk in zip(distance_weights, v_keys_aligned)]
    total = sum(raw)
    return [r / total for r in raw]


#: Floor of a key-frame's propagated alpha in :func:`paint_weights`: where no key's paint
#: reaches, the keys keep their own weights (and so carry the frame's own colour, which a
#: partly painted key holds where it is unpainted) instead of dividing by zero.
PAINT_FLOOR = 1e-3


def paint_weights(weights: Sequence[float | torch.Tensor],
                  alphas: Sequence[torch.Tensor | None]) -> list[float | torch.Tensor]:
    """Blend weights of key-frames with partial colour: each key's weight (a distance
    weight or a :func:`blend_weights` map) × (its propagated alpha (1, H, W) +
    :data:`PAINT_FLOOR`), normalised, so each key counts where its paint landed. An alpha
    of None is a fully painted key (alpha 1)."""
    raw = [w * ((1.0 if a is None else a) + PAINT_FLOOR) for w, a in zip(weights, alphas)]
    total = sum(raw)
    return [r / total for r in raw]


def paint_coverage(alphas: Sequence[torch.Tensor | None]) -> torch.Tensor | float:
    """Where any key-frame's paint reaches: 1 − Π(1 − alpha) over the keys' propagated
    alphas (None: fully painted, coverage 1)."""
    if any(a is None for a in alphas):
        return 1.0
    uncovered = 1.0
    for a in alphas:
        uncovered = uncovered * (1.0 - a.clamp(0.0, 1.0))
    return 1.0 - uncovered


def wants_alignment(model: TPN) -> bool:
    return bool(model.config.extra.get("align", False))
