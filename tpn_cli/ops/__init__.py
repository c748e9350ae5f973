"""The propagation op: four directional 3-neighbour linear scans and their merge.

Shapes:
  x  (N, C, H, W), or one input per direction (N, 4, C, H, W)
  w  (N, 4, 3, Cw, H, W): per direction (L→R, R→L, T→B, B→T), three gates (the
     neighbour on the "-1" side across the scan, the straight one, the "+1" side),
     shared across channels (Cw = 1, the paper's 12 maps) or per channel (Cw = C).
     Gates are stored at the pixel being computed; use :func:`normalize_gates`
     to make raw network output stable.
  scan / scan_transpose return (N, 4, C, H, W).

Dtypes: float32 or float64 (x and w alike), the same on every backend; float16 and
bfloat16 raise TypeError: cast with ``.float()`` (why: ``validate.SCAN_DTYPES``).

The compiled kernels (``tpn_cli._C``) are used when present; otherwise the pure
PyTorch reference runs, after a one-line warning. :func:`backend` tells which.
"""
from __future__ import annotations

import torch

from . import reference
from .dispatch import backend, compiled_available, get_impl
from .validate import check_gates, check_input

__all__ = [
    "backend",
    "compiled_available",
    "merge_max",
    "normalize_gates",
    "propagate",
    "scan",
    "scan_transpose",
    "reference",
]


def normalize_gates(raw: torch.Tensor, margin: float = 1e-3) -> torch.Tensor:
    """Scale raw gates (N, 4, 3, Cw, H, W) so that Σ|p| ≤ 1 - margin at every pixel.

    Gates whose sum is already small are left unchanged (p / max(Σ|p|, 1)); the
    margin keeps λ = 1 - Σp away from 0 so the key-frame input is never ignored.
    """
    check_gates(raw, name="raw")
    total = raw.abs().sum(dim=2, keepdim=True) / (1.0 - margin)
    return raw / total.clamp(min=1.0)


def scan(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The four directional scans of ``x`` with gates ``w``: (N, 4, C, H, W). Differentiable."""
    check_input(x, w, name="x")
    return get_impl().scan(x, w)


def scan_transpose(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Exact transpose Gᵀu of each directional scan G of :func:`scan`: (N, 4, C, H, W).

    ⟨scan(a)[:, d], b⟩ = ⟨a, scan_transpose(b)[:, d]⟩ for every direction d. Differentiable.
    """
    check_input(u, w, name="u")
    return get_impl().scan_transpose(u, w)


def merge_max(ys: torch.Tensor) -> torch.Tensor:
    """Node-wise max over the direction dim of (N, 4, C, H, W).

    Tie rule: the first direction in L→R, R→L, T→B, B→T order wins and gets the
    whole gradient (ties are systematic at borders, where several scans give y = x).
    """
    # torch.max(dim) returns the first maximal index and routes the gradient to it.
    return ys.max(dim=1).values


def propagate(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """One propagation unit: scan in four directions, merge by max: (N, C, H, W)."""
    return merge_max(scan(x, w))
