"""Helpers shared by the colour modules (channel checks, 3×3 matrices, safe powers)."""
from __future__ import annotations

from typing import Union

import torch

Number = Union[float, torch.Tensor]


def _check_channels(x: torch.Tensor, name: str = "image") -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have 3 channels at dim -3, got shape {tuple(x.shape)}")


def _apply_matrix(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """3×3 matrix times the colour vector at dim -3 of x."""
    _check_channels(x)
    m = m.to(dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _pow_pos(x: torch.Tensor, p: Number) -> torch.Tensor:
    """x^p where x > 0 and 0 elsewhere, with a finite gradient everywhere.

    The clamp keeps pow away from 0 and negatives, so the branch that torch.where does not
    select never produces inf/NaN gradients.
    """
    tiny = torch.finfo(x.dtype).tiny if x.is_floating_point() else 1e-30
    return torch.where(x > 0, x.clamp(min=tiny).pow(p), torch.zeros_like(x))
