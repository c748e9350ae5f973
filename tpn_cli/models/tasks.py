"""Per-task heads: model configurations and the normalisation of U and V.

| task    | U (property)                 | V (guidance)      | hidden (paper)  |
|---------|------------------------------|-------------------|-----------------|
| colour  | ab of CIE-Lab / AB_SCALE     | L / 100           | 1/4 × 32        |
| hdr     | log(H + HDR_EPS), RGB        | LDR RGB in [0, 1] | 1/2 × 16        |
| segment | probabilities (bg + objects) | RGB in [0, 1]     | 1/4 × 16        |
"""
from __future__ import annotations

import torch

from ..colour import AB_SCALE, LOG_EPS as HDR_EPS, log_decode, log_encode
from .tpn import TPNConfig

TASKS = ("colour", "hdr", "segment")


def colour_config(**overrides) -> TPNConfig:
    """Colour: ab guided by L. Default keeps the key-frame's detail with a residual path."""
    cfg = dict(task="colour", prop_channels=2, guide_channels=1, hidden_channels=32, scale=4,
               encoder="learned", residual=True)
    cfg.update(overrides)
    return TPNConfig(**cfg)


def hdr_config(**overrides) -> TPNConfig:
    """HDR: log radiance (RGB) guided by the LDR RGB frames, hidden 1/2 × 16."""
    cfg = dict(task="hdr", prop_channels=3, guide_channels=3, hidden_channels=16, scale=2,
               encoder="learned", residual=True)
    cfg.update(overrides)
    return TPNConfig(**cfg)


def segment_config(**overrides) -> TPNConfig:
    """Segmentation: each object's probability map on its own (any number of objects)."""
    cfg = dict(task="segment", prop_channels=1, guide_channels=3, hidden_channels=16, scale=4,
               encoder="learned", residual=True, channelwise=True)
    cfg.update(overrides)
    return TPNConfig(**cfg)


def task_config(task: str, **overrides) -> TPNConfig:
    """The default configuration of ``task`` ('colour'/'color', 'hdr', 'segment')."""
    task = "colour" if task == "color" else task
    factories = {"colour": colour_config, "hdr": hdr_config, "segment": segment_config}
    if task not in factories:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")
    return factories[task](**overrides)


# -- normalisation (tensors (N, C, H, W), float) ------------------------------------------
def colour_guide(L: torch.Tensor) -> torch.Tensor:
    """L in [0, 100] → guidance in [0, 1]."""
    return L / 100.0


def colour_prop(ab: torch.Tensor) -> torch.Tensor:
    """ab (CIE-Lab units) → property."""
    return ab / AB_SCALE


def colour_unprop(u: torch.Tensor) -> torch.Tensor:
    """Property → ab (CIE-Lab units)."""
    return u * AB_SCALE


def hdr_prop(radiance: torch.Tensor) -> torch.Tensor:
    """Linear radiance (1.0 = LDR clip level) → log(H + 0.01)."""
    return log_encode(radiance)


def hdr_unprop(u: torch.Tensor) -> torch.Tensor:
    """log(H + 0.01) → linear radiance (exp(u) − 0.01, clamped at 0)."""
    return log_decode(u).clamp(min=0)


def segment_prop(labels: torch.Tensor, num_objects: int) -> torch.Tensor:
    """Integer ids (N, H, W), 0 = background → one-hot probabilities (N, 1 + objects, H, W)."""
    onehot = torch.nn.functional.one_hot(labels.long(), num_objects + 1)
    return onehot.permute(0, 3, 1, 2).float()


def segment_unprop(u: torch.Tensor) -> torch.Tensor:
    """Probabilities (N, K, H, W) → integer ids (N, H, W) by arg-max."""
    return u.argmax(dim=1)
