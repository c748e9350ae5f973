"""Validation scores on fixed pairs, each next to its "do nothing" baseline (the model's
input: the key-frame's property, flow-aligned if the run aligns). The model predicts as
`tpn colorize`/`tpn hdr` run it (:meth:`tpn_cli.propagator.KeyPropagator.network`: the
pairs come aligned, the correction is held back where the aligned key fits). ``score``
is the number that picks the best checkpoint (higher is better)."""
from __future__ import annotations

import torch

from .. import colour, metrics
from ..models import TPN, tasks
from ..propagator import KeyPropagator


def _psnr_u8(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two uint8 images (1, 3, H, W), peak 255, capped at 100 dB."""
    return min(100.0, float(metrics.psnr(a.float(), b.float())[0]))


def _colour_rgb(v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Guidance L (/100) + property ab (/110) → uint8 RGB, as evaluation does."""
    lab = torch.cat([v * 100.0, tasks.colour_unprop(u)], dim=1)
    return (colour.lab_to_rgb(lab) * 255.0).round().to(torch.uint8)


@torch.no_grad()
def evaluate(task: str, model: TPN, batches: list[dict]) -> dict:
    """Mean validation scores of ``model`` over ``batches`` (see module docstring)."""
    model.eval()
    sums: dict[str, float] = {}
    n = 0
    prop = KeyPropagator(None, model)
    for b in batches:
        pred = prop.network(b["u1"], b["v1"], b["v2"])
        for i in range(len(pred)):
            s = _scores(task, b, pred, i)
            for k, v in s.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
    out = {k: v / n for k, v in sums.items()}
    out["score"] = {"colour": out.get("psnr"), "hdr": -out.get("log_rmse_sat", 0.0),
                    "segment": out.get("iou")}[task]
    return out


def _scores(task: str, b: dict, pred: torch.Tensor, i: int) -> dict:
    sl = slice(i, i + 1)
    if task == "colour":
        truth = b["rgb2"][sl]
        return {"psnr": _psnr_u8(_colour_rgb(b["v2"][sl], pred[sl]), truth),
                "psnr_input": _psnr_u8(_colour_rgb(b["v2"][sl], b["u1"][sl]), truth)}
    if task == "hdr":
        # also in the LDR-saturated pixels, the only ones the HDR output takes from the TPN
        sat = (b["v2"][sl].amax(1, keepdim=True) >= 0.95).float()
        nsat = sat.sum().clamp(min=1) * 3
        err, err_in = (pred[sl] - b["u2"][sl]) ** 2, (b["u1"][sl] - b["u2"][sl]) ** 2
        return {"log_rmse": err.mean().sqrt().item(), "log_rmse_input": err_in.mean().sqrt().item(),
                "log_rmse_sat": ((err * sat).sum() / nsat).sqrt().item(),
                "log_rmse_sat_input": ((err_in * sat).sum() / nsat).sqrt().item()}
    if task == "segment":
        truth = b["u2"][sl].argmax(1) > 0
        return {"iou": _iou(pred[sl].argmax(1) > 0, truth),
                "iou_input": _iou(b["u1"][sl].argmax(1) > 0, truth)}
    raise ValueError(task)


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = (a | b).sum().item()
    return 1.0 if union == 0 else (a & b).sum().item() / union
