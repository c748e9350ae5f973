"""Test oracles moved out of tpn_cli.colour (the package does not use them): the inverse
directions of the transfer functions (PQ EOTF, HLG inverse OETF, OOTF, EOTF and its
inverse), BT.2020 → BT.709, and the plain HDR output rule that
:class:`tpn_cli.adapters.HdrAdapter` computes by table look-up."""
from __future__ import annotations

import math

import torch

from tpn_cli.colour._util import Number, _apply_matrix, _check_channels, _pow_pos
from tpn_cli.colour.hdr import CLIP_LEVEL, CLIP_RAMP, inverse_camera_curve
from tpn_cli.colour.primaries import BT709_TO_BT2020
from tpn_cli.colour.transfer import (_HLG_A, _HLG_B, _HLG_C, _PQ_C1, _PQ_C2, _PQ_C3, _PQ_M1, _PQ_M2,
                                     _PQ_PEAK, hlg_oetf)


def pq_eotf(signal: torch.Tensor) -> torch.Tensor:
    """PQ signal E' in [0, 1] → absolute luminance in cd/m² (ST 2084 EOTF)."""
    e = _pow_pos(signal.clamp(0.0, 1.0), 1.0 / _PQ_M2)
    num = (e - _PQ_C1).clamp(min=0.0)
    den = _PQ_C2 - _PQ_C3 * e
    return _PQ_PEAK * _pow_pos(num / den, 1.0 / _PQ_M1)


_BT2020_LUMA = (0.2627, 0.6780, 0.0593)


def hlg_inverse_oetf(signal: torch.Tensor) -> torch.Tensor:
    """HLG signal E' → scene light E: E'²/3 for E' ≤ 1/2, else (exp((E' − c)/a) + b)/12."""
    s = signal.clamp(min=0.0)
    low = s * s / 3.0
    high = (torch.exp((s - _HLG_C) / _HLG_A) + _HLG_B) / 12.0
    return torch.where(s <= 0.5, low, high)


def _hlg_gamma(peak_nits: float) -> float:
    """System gamma of BT.2100 for a display of nominal peak L_W: 1.2 + 0.42·log10(L_W/1000)."""
    return 1.2 + 0.42 * math.log10(peak_nits / 1000.0)


def _bt2020_luma(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(_BT2020_LUMA, dtype=x.dtype, device=x.device)
    return (x * w.view(3, 1, 1)).sum(dim=-3, keepdim=True)


def hlg_ootf(scene: torch.Tensor, peak_nits: float = 1000.0) -> torch.Tensor:
    """HLG OOTF: scene light RGB E in [0, 1] (…, 3, H, W, BT.2020) → display light in cd/m².

    F_D = L_W · Y_s^(γ − 1) · E with Y_s the BT.2020 luminance of E.
    """
    _check_channels(scene, "scene")
    gamma = _hlg_gamma(peak_nits)
    ys = _bt2020_luma(scene.clamp(min=0.0))
    return peak_nits * _pow_pos(ys, gamma - 1.0) * scene.clamp(min=0.0)


def hlg_inverse_ootf(display: torch.Tensor, peak_nits: float = 1000.0) -> torch.Tensor:
    """Inverse of :func:`hlg_ootf`: display light in cd/m² → scene light E in [0, 1]."""
    _check_channels(display, "display")
    gamma = _hlg_gamma(peak_nits)
    d = display.clamp(min=0.0)
    yd = _bt2020_luma(d)
    scale = _pow_pos(yd / peak_nits, (1.0 - gamma) / gamma)
    return d / peak_nits * scale


def hlg_eotf(signal: torch.Tensor, peak_nits: float = 1000.0, black_nits: float = 0.0) -> torch.Tensor:
    """HLG EOTF (BT.2100-2): signal RGB (…, 3, H, W) → display light in cd/m².

    F_D = OOTF[OETF⁻¹(max(0, (1 − β)E' + β))], β = √(3 (L_B/L_W)^(1/γ)).
    """
    gamma = _hlg_gamma(peak_nits)
    beta = math.sqrt(3.0 * (black_nits / peak_nits) ** (1.0 / gamma))
    return hlg_ootf(hlg_inverse_oetf(((1.0 - beta) * signal + beta).clamp(min=0.0)), peak_nits)


def hlg_inverse_eotf(display: torch.Tensor, peak_nits: float = 1000.0,
                     black_nits: float = 0.0) -> torch.Tensor:
    """Inverse of :func:`hlg_eotf`: display light in cd/m² (…, 3, H, W) → HLG signal."""
    gamma = _hlg_gamma(peak_nits)
    beta = math.sqrt(3.0 * (black_nits / peak_nits) ** (1.0 / gamma))
    s = hlg_oetf(hlg_inverse_ootf(display, peak_nits))
    return (s - beta) / (1.0 - beta)


#: Linear BT.2020 → linear BT.709 (may give negative values for wide-gamut colours).
BT2020_TO_BT709 = torch.linalg.inv(BT709_TO_BT2020)


def bt709_to_bt2020(rgb_linear: torch.Tensor) -> torch.Tensor:
    """Linear BT.709/sRGB RGB → linear BT.2020 RGB; apply before PQ or HLG."""
    return _apply_matrix(BT709_TO_BT2020, rgb_linear)


def bt2020_to_bt709(rgb_linear: torch.Tensor) -> torch.Tensor:
    """Linear BT.2020 RGB → linear BT.709 RGB (not clipped)."""
    return _apply_matrix(BT2020_TO_BT709, rgb_linear)


def fill_saturated(pred_hdr: torch.Tensor, ldr: torch.Tensor, level: float = CLIP_LEVEL,
                   ramp: float = CLIP_RAMP, n: Number = 0.9, sigma: Number = 0.6) -> torch.Tensor:
    """Final HDR frame: the propagation where the LDR frame clips, f⁻¹(LDR) elsewhere.

    The weight of the propagation is α = clamp((m − (level − ramp)) / ramp, 0, 1) with m
    the LDR channel max, so it rises from 0 at ``level − ramp`` to 1 at ``level`` (no
    seam; ``ramp = 0``: hard switch at ``level``). The rule of
    :class:`tpn_cli.adapters.HdrAdapter` (with the generic curve), written plainly: the
    oracle of its table-lookup fast path.
    """
    _check_channels(pred_hdr, "pred_hdr")
    _check_channels(ldr, "ldr")
    if ramp < 0.0:
        raise ValueError(f"ramp must be ≥ 0, got {ramp}")
    inv = inverse_camera_curve(ldr, n=n, sigma=sigma)
    m = ldr.amax(dim=-3, keepdim=True)
    if ramp == 0.0:
        alpha = (m >= level).to(pred_hdr.dtype)
    else:
        alpha = ((m - (level - ramp)) / ramp).clamp(0.0, 1.0).to(pred_hdr.dtype)
    return (1.0 - alpha) * inv + alpha * pred_hdr
