"""HDR video transfer functions: PQ (SMPTE ST 2084) and HLG (ARIB STD-B67), BT.2100."""
from __future__ import annotations

import math

import torch

from ._util import _check_channels, _pow_pos

#: BT.2408 HDR reference white: relative radiance 1.0 maps to this many cd/m² by default.
REFERENCE_WHITE_NITS = 203.0


# ---------------------------------------------------------------------------------------
# PQ (SMPTE ST 2084 / BT.2100)
# ---------------------------------------------------------------------------------------

_PQ_M1 = 2610.0 / 16384.0
_PQ_M2 = 2523.0 / 4096.0 * 128.0
_PQ_C1 = 3424.0 / 4096.0
_PQ_C2 = 2413.0 / 4096.0 * 32.0
_PQ_C3 = 2392.0 / 4096.0 * 32.0
_PQ_PEAK = 10000.0


def pq_inverse_eotf(nits: torch.Tensor) -> torch.Tensor:
    """Absolute luminance in cd/m² → PQ signal E' in [0, 1] (clamped to [0, 10000] nits)."""
    y = (nits / _PQ_PEAK).clamp(0.0, 1.0)
    ym = _pow_pos(y, _PQ_M1)
    return ((_PQ_C1 + _PQ_C2 * ym) / (1.0 + _PQ_C3 * ym)).pow(_PQ_M2)


def pq_eotf(signal: torch.Tensor) -> torch.Tensor:
    """PQ signal E' in [0, 1] → absolute luminance in cd/m² (ST 2084 EOTF)."""
    e = _pow_pos(signal.clamp(0.0, 1.0), 1.0 / _PQ_M2)
    num = (e - _PQ_C1).clamp(min=0.0)
    den = _PQ_C2 - _PQ_C3 * e
    return _PQ_PEAK * _pow_pos(num / den, 1.0 / _PQ_M1)


#: Aliases: encoding linear light to PQ is the inverse EOTF (PQ is display-referred).
pq_encode = pq_inverse_eotf
pq_decode = pq_eotf


# ---------------------------------------------------------------------------------------
# HLG (ARIB STD-B67 / BT.2100)
# ---------------------------------------------------------------------------------------

_HLG_A = 0.17883277
_HLG_B = 1.0 - 4.0 * _HLG_A
_HLG_C = 0.5 - _HLG_A * math.log(4.0 * _HLG_A)
_BT2020_LUMA = (0.2627, 0.6780, 0.0593)


def hlg_oetf(e: torch.Tensor) -> torch.Tensor:
    """Scene light E in [0, 1] → HLG signal E': √(3E) for E ≤ 1/12, else a·ln(12E − b) + c.

    Negative E is treated as 0. E = 1 gives E' = 1; E = 1/12 gives 0.5 from both sides.
    """
    e = e.clamp(min=0.0)
    low = _pow_pos(3.0 * e, 0.5)
    high = _HLG_A * torch.log((12.0 * e - _HLG_B).clamp(min=1e-12)) + _HLG_C
    return torch.where(e <= 1.0 / 12.0, low, high)


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
