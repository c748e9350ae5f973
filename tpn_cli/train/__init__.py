"""Training: pair synthesis (clips, stills, HDR virtual camera, DAVIS masks) and the
resumable loop.

    from tpn_cli.train import fit, TrainConfig
    fit("colour", {"run_dir": "/work/runs/colour", "minutes": 60, "align": True})

Presets for the shipped models are in :data:`PRESETS` (``fit(task, preset(task, ...))``).
"""
import json

from .loop import TrainConfig, fit

#: Settings of the shipped models per task (override any key); why these
#: (docs/what-we-tried.md, "Numbers behind the defaults", and docs/TRAINING.md).
PRESETS: dict[str, dict] = {
    "colour": {"crop": 160, "batch": 8, "max_dist": 30, "align": True, "still_prob": 0.1,
               "model": {"encoder": "signed", "scale": 2, "residual": True}},
    "segment": {"crop": 192, "batch": 6, "max_dist": 60, "align": True,
                "model": {"encoder": "signed", "scale": 2, "residual": True}},
    "hdr": {"crop": 160, "batch": 8, "max_dist": 40, "align": True,
            "model": {"encoder": "signed", "scale": 2, "residual": True}},
}


def parse_settings(items: list[str] | tuple[str, ...]) -> dict:
    """``["key=JSON", "model.key=JSON", ...]`` → overrides for :func:`preset` (a value that
    is not JSON is taken as a bare string)."""
    out: dict = {"model": {}}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"settings are KEY=VALUE, got {item!r}")
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass
        if key.startswith("model."):
            out["model"][key[6:]] = value
        else:
            out[key] = value
    return out


def preset(task: str, **overrides) -> dict:
    """The preset settings of ``task`` with ``overrides`` applied (model overrides merge)."""
    task = "colour" if task == "color" else task
    cfg = {k: (dict(v) if isinstance(v, dict) else v) for k, v in PRESETS[task].items()}
    model = overrides.pop("model", {})
    cfg.update(overrides)
    cfg["model"] = {**cfg.get("model", {}), **model}
    return cfg


__all__ = ["PRESETS", "TrainConfig", "parse_settings", "preset", "fit"]
