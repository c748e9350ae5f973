"""RGB primaries: linear RGB ↔ XYZ matrices from xy chromaticities, BT.709 ↔ BT.2020."""
from __future__ import annotations

import torch


_PRIMARIES = {
    "bt709": ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)),
    "bt2020": ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
}
_D65_XY = (0.3127, 0.3290)


def rgb_primaries_matrix(primaries: str, white_xy: tuple[float, float] = _D65_XY) -> torch.Tensor:
    """Linear RGB → XYZ matrix (float64, 3×3) from the primaries' and white's xy (Y_white = 1)."""
    try:
        prim = _PRIMARIES[primaries]
    except KeyError:
        raise ValueError(f"unknown primaries {primaries!r}; known: {sorted(_PRIMARIES)}") from None
    cols = torch.tensor([[x / y, 1.0, (1.0 - x - y) / y] for x, y in prim], dtype=torch.float64).T
    wx, wy = white_xy
    white = torch.tensor([wx / wy, 1.0, (1.0 - wx - wy) / wy], dtype=torch.float64)
    scale = torch.linalg.solve(cols, white)
    return cols * scale


#: Linear BT.709 → linear BT.2020 (BT.2087), computed from the primaries (float64).
BT709_TO_BT2020 = torch.linalg.solve(rgb_primaries_matrix("bt2020"), rgb_primaries_matrix("bt709"))
