"""Pure-PyTorch reference of the 4-direction, 3-neighbour linear scan.

The oracle for the compiled kernels and the fallback when they are missing. It loops
over the scan axis with shifted slices (O(H·W) memory, never H×H matrices); its
gradients come from autograd, so they are an independent check of the kernels'
hand-written backward.

Shapes (see ``tpn_cli.ops`` for the public contract):
  x: (N, C, H, W) or per direction (N, 4, C, H, W)
  w: (N, 4, 3, Cw, H, W) with Cw in {1, C}
  returns (N, 4, C, H, W), directions in the order L→R, R→L, T→B, B→T.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

DIRECTIONS = ("left_to_right", "right_to_left", "top_to_bottom", "bottom_to_top")


def to_lines(t: torch.Tensor, direction: int) -> torch.Tensor:
    """View the last two dims (H, W) as (T lines in scan order, L elements per line)."""
    if direction in (0, 1):  # horizontal scans: lines are columns
        t = t.transpose(-1, -2)
    if direction in (1, 3):  # reversed scans
        t = t.flip(-2)
    return t


def from_lines(t: torch.Tensor, direction: int) -> torch.Tensor:
    """Inverse of :func:`to_lines`."""
    if direction in (1, 3):
        t = t.flip(-2)
    if direction in (0, 1):
        t = t.transpose(-1, -2)
    return t


def _border_gates(p: torch.Tensor, gate_dim: int = -2):
    """Split gates into the three per-neighbour maps, missing neighbours (l-1 < 0, l+1 ≥ L) zeroed."""
    p0, p1, p2 = p.unbind(gate_dim)
    p0 = F.pad(p0[..., 1:], (1, 0))
    p2 = F.pad(p2[..., :-1], (0, 1))
    return p0, p1, p2


def _line_scan(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Forward scan in line form. x: (..., T, L); w: (..., 3, T, L) broadcastable."""
    out = [x[..., 0, :]]
    for t in range(1, x.shape[-2]):
        p0, p1, p2 = _border_gates(w[..., :, t, :])
        prev = out[-1]
        prev_lo = F.pad(prev[..., :-1], (1, 0))
        prev_hi = F.pad(prev[..., 1:], (0, 1))
        lam = 1 - p0 - p1 - p2
        out.append(lam * x[..., t, :] + p0 * prev_lo + p1 * prev + p2 * prev_hi)
    return torch.stack(out, dim=-2)


def _line_transpose(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Exact transpose of the line scan: v = u + Aᵀv (backwards over t), then λ ⊙ v."""
    T = u.shape[-2]
    v = [u[..., T - 1, :]]
    for t in range(T - 2, -1, -1):
        p0, p1, p2 = _border_gates(w[..., :, t + 1, :])
        nxt = v[-1]
        # child l+1 reaches l through its gate 0, child l through gate 1, child l-1 through gate 2
        from_hi = F.pad((p0 * nxt)[..., 1:], (0, 1))
        from_lo = F.pad((p2 * nxt)[..., :-1], (1, 0))
        v.append(u[..., t, :] + p1 * nxt + from_hi + from_lo)
    v = torch.stack(v[::-1], dim=-2)
    p0, p1, p2 = _border_gates(w, gate_dim=-3)
    lam = 1 - p0 - p1 - p2
    lam = torch.cat([torch.ones_like(lam[..., :1, :]), lam[..., 1:, :]], dim=-2)
    return lam * v


def _per_direction(fn, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    outs = []
    for d in range(4):
        xd = x[:, d] if x.dim() == 5 else x
        wd = w[:, d]  # (N, 3, Cw, H, W) -> gates on dim -4; move to (N, Cw, 3, H, W)
        wd = wd.transpose(1, 2)
        outs.append(from_lines(fn(to_lines(xd, d), to_lines(wd, d)), d))
    return torch.stack(outs, dim=1)


def scan(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The four directional scans of x with gates w, reference implementation."""
    return _per_direction(_line_scan, x, w)


def scan_transpose(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Exact Gᵀu of each directional scan, reference implementation."""
    return _per_direction(_line_transpose, u, w)
