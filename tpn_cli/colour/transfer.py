"""HDR video transfer functions: PQ (SMPTE ST 2084) and HLG (ARIB STD-B67), BT.2100."""
from __future__ import annotations

import math

import torch

from ._util import _pow_pos

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


# ---------------------------------------------------------------------------------------
# HLG (ARIB STD-B67 / BT.2100)
# ---------------------------------------------------------------------------------------

_HLG_A = 0.17883277
_HLG_B = 1.0 - 4.0 * _HLG_A
_HLG_C = 0.5 - _HLG_A * math.log(4.0 * _HLG_A)


def hlg_oetf(e: torch.Tensor) -> torch.Tensor:
    """Scene light E in [0, 1] → HLG signal E': √(3E) for E ≤ 1/12, else a·ln(12E − b) + c.

    Negative E is treated as 0. E = 1 gives E' = 1; E = 1/12 gives 0.5 from both sides.
    """
    e = e.clamp(min=0.0)
    low = _pow_pos(3.0 * e, 0.5)
    high = _HLG_A * torch.log((12.0 * e - _HLG_B).clamp(min=1e-12)) + _HLG_C
    return torch.where(e <= 1.0 / 12.0, low, high)
