"""HDR on held-out pseudo-videos (a virtual camera over an HDR still): inverse camera
curve, copy / flow into the clipped pixels, and the TPN as `tpn hdr` runs it; see
:mod:`tpn_eval`."""
from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Iterable, Literal, Mapping, Sequence

import numpy as np
import torch

from tpn_cli import adapters, camera_response, colour, metrics
from tpn_cli.adapters import HdrAdapter
from tpn_cli.colour._util import Number, _check_channels
from tpn_cli.colour.hdr import inverse_camera_curve
from tpn_cli.engine import work_shape
from tpn_cli.flow import dis_flow, warp
from tpn_cli.models import tasks
from tpn_cli.models.infer import guide_to_gray
from tpn_cli.propagator import KeyPropagator
from tpn_cli.train.hdr_video import camera_view

from .plans import assign_keys, key_frames
from .tables import mean

__all__ = ["HDR_SAT_LEVEL", "percentile_threshold", "hdr_blend", "hdr_sequence", "evaluate_hdr_sequence", "hdr_clip_rng", "evaluate_hdr_clip",
           "hdr_summary"]

#: HDR: an LDR pixel is saturated when its largest channel reaches this level.
HDR_SAT_LEVEL = colour.CLIP_LEVEL


# the paper's rule (``tpn_paper``): propagated radiance above the key-frame's 95th percentile
def _reduce_channels(x: torch.Tensor, reduce: Literal["max", "luminance", "mean"]) -> torch.Tensor:
    """(…, 3, H, W) → (…, 1, H, W)."""
    _check_channels(x)
    if reduce == "max":
        return x.amax(dim=-3, keepdim=True)
    if reduce == "mean":
        return x.mean(dim=-3, keepdim=True)
    if reduce == "luminance":
        w = torch.tensor((0.212671, 0.715160, 0.072169), dtype=x.dtype, device=x.device)
        return (x * w.view(3, 1, 1)).sum(dim=-3, keepdim=True)
    raise ValueError(f"reduce must be 'max', 'luminance' or 'mean', got {reduce!r}")


def _quantile_last(x: torch.Tensor, q: float) -> torch.Tensor:
    """Linear-interpolated quantile over the last dim (numpy's default), any size."""
    n = x.shape[-1]
    if n == 0:
        raise ValueError("quantile of an empty tensor")
    s = x.sort(dim=-1).values
    pos = q * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return s[..., lo] + (s[..., hi] - s[..., lo]) * frac


def percentile_threshold(key_hdr: torch.Tensor, q: float = 0.95,
                         reduce: Literal["max", "luminance", "mean"] = "max") -> torch.Tensor:
    """Blending threshold T of a key-frame: the q-quantile of its per-pixel radiance.

    ``key_hdr`` (…, 3, H, W) linear HDR. The per-pixel value is the max over channels by
    default (HDRCNN's mask convention); q = 0.95 "removes the 5 % brightest pixels"
    (TPN). Returns one T per image, shape (…,). Interpolation is linear, like numpy.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    m = _reduce_channels(key_hdr, reduce)
    return _quantile_last(m.flatten(start_dim=-3), q)


def hdr_blend(pred_hdr: torch.Tensor, ldr: torch.Tensor, threshold: Number,
              width: float = 0.0, n: Number = 0.9, sigma: Number = 0.6,
              mask_from: Literal["pred", "ldr"] = "pred",
              reduce: Literal["max", "luminance", "mean"] = "max") -> torch.Tensor:
    """Final HDR frame: the inverted LDR where the radiance is below T, the propagation above.

    ``pred_hdr`` (…, 3, H, W) propagated linear radiance (``log_decode`` of the output);
    ``ldr`` (…, 3, H, W) the frame's LDR in [0, 1]; ``threshold`` T, a float or one value
    per image (…,), usually :func:`percentile_threshold` of the key-frame.

    With α the blending weight at each pixel (same for the three channels),
    H = (1 − α)·f⁻¹(LDR) + α·pred. The per-pixel value m that decides α is the channel
    max (``reduce``) of the prediction (``mask_from="pred"``, the TPN rule "f⁻¹(D) where
    the predicted H < T") or of f⁻¹(LDR) (``mask_from="ldr"``).
    ``width = 0``: hard switch, α = [m ≥ T]. ``width = w > 0``: smooth ramp
    α = clamp((m − T(1 − w)) / (T w), 0, 1), which avoids seams.
    """
    _check_channels(pred_hdr, "pred_hdr")
    _check_channels(ldr, "ldr")
    inv = inverse_camera_curve(ldr, n=n, sigma=sigma)
    m = _reduce_channels(pred_hdr if mask_from == "pred" else inv, reduce)
    t = torch.as_tensor(threshold, dtype=pred_hdr.dtype, device=pred_hdr.device)
    if t.dim() > 0:
        t = t.reshape(*t.shape, 1, 1, 1)
    if width < 0.0:
        raise ValueError(f"width must be ≥ 0, got {width}")
    if width == 0.0:
        alpha = (m >= t).to(pred_hdr.dtype)
    else:
        alpha = ((m - t * (1.0 - width)) / (t * width)).clamp(0.0, 1.0)
    return (1.0 - alpha) * inv + alpha * pred_hdr


def hdr_sequence(rng: np.random.Generator, img: np.ndarray, n_frames: int = 41, size: int = 256,
                 max_speed: float = 3.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A virtual camera moving smoothly over the HDR still ``img`` for ``n_frames``.

    The camera pans in a straight line at up to ``max_speed`` output pixels per frame,
    zooms by up to ±15 % and rolls by up to ±6° over the clip. One exposure (5–15 % of the
    first frame's values clip, radiance scaled so 1.0 is the clip level), one random
    HDRCNN camera curve, noise and 8-bit quantisation for the whole clip. Returns
    (radiance frames, LDR frames), each (size, size, 3) float32.
    """
    h, w = img.shape[:2]
    zoom = math.exp(rng.uniform(math.log(0.7), math.log(1.3)))
    dz = rng.uniform(-0.15, 0.15)
    zmax = zoom * math.exp(max(dz, 0.0))
    fit = 0.6 * min(h, w) / size  # the rotated window must fit: r <= min side / 2
    if zmax > fit:
        zoom, zmax = zoom * fit / zmax, fit
    r = zmax * size * 0.75
    lo, hi = np.array([r, r]), np.array([w - r, h - r])
    c0 = rng.uniform(lo, hi)
    direction = rng.uniform(0, 2 * math.pi)
    travel = rng.uniform(0.3, 1.0) * max_speed * zoom * (n_frames - 1)
    c1 = np.clip(c0 + travel * np.array([math.cos(direction), math.sin(direction)]), lo, hi)
    a0 = math.radians(rng.uniform(-5, 5))
    da = math.radians(rng.uniform(-6, 6))
    views = []
    for i in range(n_frames):
        s = i / max(1, n_frames - 1)
        views.append(camera_view(img, c0 + s * (c1 - c0), zoom * math.exp(dz * s), a0 + da * s, size))
    clip_frac = rng.uniform(0.05, 0.15)
    exposure = 1.0 / max(float(np.quantile(views[0], 1.0 - clip_frac)), 1e-6)
    n = float(np.clip(rng.normal(0.9, 0.1), 0.2, 2.5))
    sigma = float(np.clip(rng.normal(0.6, 0.1), 0.05, 5.0))
    noise = rng.uniform(0.0, 0.01)
    hdr, ldr = [], []
    for v in views:
        hs = (v * exposure).astype(np.float32)
        d = colour.camera_curve(torch.from_numpy(hs), n=n, sigma=sigma).numpy()
        d = d + rng.normal(0.0, noise, size=d.shape)
        hdr.append(hs)
        ldr.append((np.round(np.clip(d, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32))
    return hdr, ldr


def _chw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))


def _hdr_scores(pred: torch.Tensor, truth: torch.Tensor, sat: torch.Tensor) -> dict[str, float]:
    """log-RMSE over the whole frame, the saturated and the unsaturated pixels; PU21-PSNR."""
    def masked(mask: torch.Tensor) -> float:
        return float(metrics.log_rmse(pred, truth, mask=mask)[0]) if bool(mask.any()) else float("nan")

    return {"log_rmse": float(metrics.log_rmse(pred, truth)[0]), "log_rmse_sat": masked(sat),
            "log_rmse_unsat": masked(~sat), "pu21": float(metrics.pu21_psnr(pred, truth)[0])}


@torch.no_grad()
def evaluate_hdr_sequence(hdr: Sequence[np.ndarray], ldr: Sequence[np.ndarray],
                          pairs: Sequence[tuple[int, int]], model=None,
                          times: dict[str, float] | None = None,
                          keys: Sequence[int] | None = None) -> dict[tuple[int, int], dict]:
    """HDR methods (module docstring) on the (frame, key) ``pairs`` of one pseudo-video.

    ``keys``: the key-frames whose radiance the calibrated response is fitted to (default:
    the keys of ``pairs``), as ``tpn hdr`` fits it to all of its key-frames. The TPN runs
    as ``tpn hdr`` runs it: :class:`tpn_cli.propagator.KeyPropagator` with
    :class:`tpn_cli.adapters.HdrAdapter` at its default working size.
    Returns {(t, k): {method: {'log_rmse', 'log_rmse_sat', 'log_rmse_unsat', 'pu21'}}}
    and adds seconds to ``times`` ('flow', 'tpn', 'tpn+flow').
    """
    times = times if times is not None else defaultdict(float)
    keys = sorted({k for _, k in pairs}) if keys is None else sorted(keys)
    codes = [np.rint(x * 255.0).astype(np.uint8) for x in ldr]  # the 8-bit stream, exactly
    response = camera_response.fit((codes[k], hdr[k]) for k in keys)
    h, w = codes[0].shape[:2]
    work = work_shape(w, h, HdrAdapter.default_work_size)
    adapter = HdrAdapter(work, "cpu", response)
    before = HdrAdapter(work, "cpu")  # the generic curve: the command before calibration
    prop = KeyPropagator(adapter, model) if model is not None else None
    out = {}
    for t, k in pairs:
        H_t, D_t = _chw(hdr[t])[None].double(), _chw(ldr[t])[None]
        H_k, D_k = _chw(hdr[k])[None], _chw(ldr[k])[None]
        inv = colour.inverse_camera_curve(D_t.double())
        cal = _chw(response.radiance(codes[t]))[None].double()
        sat = (D_t.amax(1, keepdim=True) >= HDR_SAT_LEVEL)
        t0 = time.perf_counter()
        flow = dis_flow(guide_to_gray(D_t[0]), guide_to_gray(D_k[0]))
        H_w = _chw(warp(hdr[k], flow))[None].double()
        dt_flow = time.perf_counter() - t0
        times["flow"] = times.get("flow", 0.0) + dt_flow
        preds = {"icc": inv,
                 "copy_sat": torch.where(sat, H_k.double(), inv),
                 "flow_sat": torch.where(sat, H_w, inv),
                 "flow_sat_cal": torch.where(sat, H_w, cal)}
        if prop is not None:
            t0 = time.perf_counter()
            if k not in prop.keys:
                prop.set_key(k, hdr[k], codes[k])
            target = prop.target(t, codes[t])
            view = prop.view(target, k)
            t1 = time.perf_counter()
            prop.correct([view])
            dt = time.perf_counter() - t1
            pred = prop.frame(target, [view])
            preds["tpn"] = _chw(prop.output(pred))[None].double()
            times["tpn"] = times.get("tpn", 0.0) + dt
            times["tpn+flow"] = times.get("tpn+flow", 0.0) + time.perf_counter() - t0
            u = pred.u
            preds["tpn_generic"] = _chw(before.finish(codes[t], u, None))[None].double()
            radiance = tasks.hdr_unprop(adapters.resize(u, (h, w)))[None].double()
            thr = float(percentile_threshold(H_k[0], 0.95))
            preds["tpn_paper"] = hdr_blend(radiance, D_t.double(), thr)
        out[(t, k)] = {m: _hdr_scores(p, H_t, sat) for m, p in preds.items()}
    return out


def hdr_clip_rng(image: str, seed: int) -> np.random.Generator:
    """The random stream of pseudo-video ``seed`` over the still ``image`` (fixed, so every
    script evaluates the same clips)."""
    return np.random.default_rng([20261122, seed, sum(map(ord, image))])


def evaluate_hdr_clip(hdr: Sequence[np.ndarray], ldr: Sequence[np.ndarray], Ks: Sequence[int],
                      model=None, times: dict[str, float] | None = None) -> dict[int, dict]:
    """One pseudo-video with key-frames every K frames, for each K: {K: {'assign': {t: k}
    (nearest key), 'pairs': {(t, k): {method: scores}}}}. Each K is a separate run, as the
    calibrated response is fitted to that run's key-frames."""
    n = len(hdr)
    out = {}
    for K in Ks:
        assign = assign_keys(n, K, "nearest")
        pairs = sorted(assign.items())
        out[K] = {"assign": assign,
                  "pairs": evaluate_hdr_sequence(hdr, ldr, pairs, model, times, key_frames(n, K))}
    return out


def hdr_summary(clips: Iterable[Mapping[int, dict]], K: int) -> dict[str, dict[str, float]]:
    """{method: {score: mean over the non-key frames of all ``clips``}} at K (clips as
    :func:`evaluate_hdr_clip` returns them)."""
    vals: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for clip in clips:
        for scores in clip[K]["pairs"].values():
            for m, sc in scores.items():
                for q, v in sc.items():
                    vals[m][q].append(v)
    return {m: {q: mean(v) for q, v in qs.items()} for m, qs in vals.items()}
