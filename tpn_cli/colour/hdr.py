"""HDR radiance: the camera curve and its inverse, the log-HDR property, the clipping level
below which the output keeps the frame's own inverted LDR. Radiance is relative: 1.0 is
the LDR clip level (f(1) = 1)."""
from __future__ import annotations

import torch

from ._util import Number, _pow_pos

#: Offset of the log-HDR property U = log(H + LOG_EPS).
LOG_EPS = 0.01
#: HDR output (:class:`tpn_cli.adapters.HdrAdapter`): an LDR pixel clips at this channel max; the
#: propagation is blended in over the ``CLIP_RAMP`` below it.
CLIP_LEVEL, CLIP_RAMP = 0.95, 0.05


def camera_curve(h: torch.Tensor, n: Number = 0.9, sigma: Number = 0.6) -> torch.Tensor:
    """HDRCNN camera curve f(H) = (1 + σ) Hⁿ / (Hⁿ + σ); f(0) = 0, f(1) = 1.

    Negative radiance is treated as 0. The result is not clipped: values above 1 are
    what an 8-bit LDR would saturate.
    """
    hn = _pow_pos(h, n)
    return (1.0 + sigma) * hn / (hn + sigma)


def inverse_camera_curve(d: torch.Tensor, n: Number = 0.9, sigma: Number = 0.6,
                         eps: float = 1e-10) -> torch.Tensor:
    """f⁻¹(D) = (σ D / (1 + σ − D))^(1/n) for D in [0, 1 + σ).

    D is clamped at 0 below and the denominator is floored at ``eps`` (as HDRCNN does),
    so D ≥ 1 + σ gives a large finite value instead of inf/NaN.
    """
    d = d.clamp(min=0.0)
    ratio = sigma * d / (1.0 + sigma - d).clamp(min=eps)
    return _pow_pos(ratio, 1.0 / n)


def log_encode(h: torch.Tensor, eps: float = LOG_EPS) -> torch.Tensor:
    """The HDR property U = log(H + eps) (natural log); negative H is treated as 0."""
    return torch.log(h.clamp(min=0.0) + eps)


def log_decode(u: torch.Tensor, eps: float = LOG_EPS) -> torch.Tensor:
    """Exact inverse of :func:`log_encode` on its range: H = exp(U) − eps (may be > −eps)."""
    return torch.exp(u) - eps
