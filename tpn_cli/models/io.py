"""Save and load a TPN: state dict + config in one file, written atomically."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from .tpn import TPN, TPNConfig

FORMAT = "tpn-model"
VERSION = 1


def save_model(model: TPN, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write ``model`` (weights + config + optional ``meta`` dict) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": meta or {},
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # readers never see a half-written file
    return path


def load_model(path: str | os.PathLike, map_location: str = "cpu") -> TPN:
    """Rebuild the TPN stored at ``path`` (eval mode). Raises ValueError on foreign files."""
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a tpn model file")
    if payload.get("version", 0) > VERSION:
        raise ValueError(f"{path}: model format version {payload['version']} is newer than "
                         f"this tpn understands ({VERSION}); upgrade tpn")
    model = TPN(TPNConfig.from_dict(payload["config"]))
    model.load_state_dict(payload["state_dict"])
    model.meta = payload.get("meta", {})
    return model.eval()
