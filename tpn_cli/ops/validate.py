"""Argument checks for the propagation op: clear errors that name the argument."""
from __future__ import annotations

import torch

#: The dtypes the scan takes, on every backend (compiled CPU, CUDA, reference). float16
#: and bfloat16 are refused rather than cast silently: the recurrence carries each value
#: along a whole image line (its magnitude can grow with the line, see
#: test_signed_gates_grow_at_most_linearly), which a 3- or 8-bit mantissa cannot hold,
#: and a hidden float32 copy would double the memory the caller planned for. Cast with
#: ``.float()``; the model does so for its reduced-precision guidance network.
SCAN_DTYPES = (torch.float32, torch.float64)


def check_gates(w: torch.Tensor, name: str = "w") -> None:
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(w).__name__}")
    if w.dim() != 6 or w.shape[1] != 4 or w.shape[2] != 3:
        raise ValueError(
            f"{name} must have shape (N, 4, 3, Cw, H, W) (4 directions × 3 gates), got {tuple(w.shape)}"
        )
    if not w.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {w.dtype}")


def check_input(x: torch.Tensor, w: torch.Tensor, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    check_gates(w)
    if x.dim() == 5:
        if x.shape[1] != 4:
            raise ValueError(
                f"{name} with 5 dims must be one input per direction (N, 4, C, H, W), got {tuple(x.shape)}"
            )
    elif x.dim() != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W) or (N, 4, C, H, W), got {tuple(x.shape)}")
    n, c, h, wd = x.shape[0], x.shape[-3], x.shape[-2], x.shape[-1]
    if w.shape[0] != n or w.shape[-2:] != (h, wd):
        raise ValueError(
            f"w has shape {tuple(w.shape)} but {name} has N={n}, H={h}, W={wd}: "
            "gates need the same batch size and spatial size as the input"
        )
    if w.shape[3] not in (1, c):
        raise ValueError(f"w has Cw={w.shape[3]} gate channels; expected 1 (shared) or C={c} (per channel)")
    if x.dtype != w.dtype:
        raise TypeError(f"{name} is {x.dtype} but w is {w.dtype}: use one floating-point dtype for both")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.dtype not in SCAN_DTYPES:
        raise TypeError(
            f"{name} and w are {x.dtype}: the scan takes float32 or float64 on every backend; "
            "cast with .float() (half precision cannot carry values along a whole image line)"
        )
    if x.device != w.device:
        raise ValueError(f"{name} is on {x.device} but w is on {w.device}: put both on one device")
    if h == 0 or wd == 0 or n == 0 or c == 0:
        raise ValueError(f"{name} has an empty dimension: {tuple(x.shape)}")
