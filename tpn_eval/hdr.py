"""HDR on held-out pseudo-videos (a virtual camera over an HDR still): inverse camera
curve, copy / flow into the clipped pixels, and the TPN as `tpn hdr` runs it; see
:mod:`tpn_eval`."""
from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any, Iterable, Literal, Mapping, Sequence

import numpy as np
import torch

from tpn_cli import camera_response, colour, metrics
from tpn_cli.adapters import HdrAdapter
from tpn_cli.colour._util import Number, _check_channels
from tpn_cli.colour.hdr import inverse_camera_curve
from tpn_cli.engine import work_shape
from tpn_cli.flow import dis_flow, warp
from tpn_cli.models.infer import guide_to_gray
from tpn_cli.propagator import KeyPropagator
from tpn_cli.train.hdr_video import camera_view

from tpn_cli.keyframes import plan

from .plans import assign_keys, key_frames
from .tables import mean

__all__ = ["HDR_SAT_LEVEL", "percentile_threshold", "hdr_blend", "hdr_sequence", "evaluate_hdr_sequence", "hdr_clip_rng", "evaluate_hdr_clip",
           "hdr_summary", "HDR_SETTINGS", "HDR_SPLIT", "two_key_flow"]

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
                 max_speed: float = 3.0, clip_fraction: tuple[float, float] = (0.05, 0.15),
                 info: dict | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A virtual camera moving smoothly over the HDR still ``img`` for ``n_frames``.

    The camera pans in a straight line at up to ``max_speed`` output pixels per frame,
    zooms by up to ±15 % and rolls by up to ±6° over the clip. One exposure (a fraction
    drawn from ``clip_fraction`` of the first frame's values clip, radiance scaled so 1.0
    is the clip level), one random HDRCNN camera curve, noise and 8-bit quantisation for
    the whole clip. Returns (radiance frames, LDR frames), each (size, size, 3) float32;
    ``info``, when given, receives the clip's camera curve ``n``, ``sigma`` (what the
    issue-19 baselines are given) and its ``noise``.
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
    clip_frac = rng.uniform(*clip_fraction)
    exposure = 1.0 / max(float(np.quantile(views[0], 1.0 - clip_frac)), 1e-6)
    n = float(np.clip(rng.normal(0.9, 0.1), 0.2, 2.5))
    sigma = float(np.clip(rng.normal(0.6, 0.1), 0.05, 5.0))
    noise = rng.uniform(0.0, 0.01)
    if info is not None:
        info.update(n=n, sigma=sigma, noise=noise)
    hdr, ldr = [], []
    for v in views:
        hs = (v * exposure).astype(np.float32)
        d = colour.camera_curve(torch.from_numpy(hs), n=n, sigma=sigma).numpy()
        d = d + rng.normal(0.0, noise, size=d.shape)
        hdr.append(hs)
        ldr.append((np.round(np.clip(d, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32))
    return hdr, ldr


#: HDR stills (paths under tpn_cli.train.hdr_video.HDR_ROOT), split before any issue-19
#: measurement: ``tune`` = the training-validation stills (HDR_VAL) plus one more never
#: trained on; ``heldout`` = the remaining readable real-photo stills, never read by
#: tpn_cli.train.hdr_video and never tuned on (memorial.hdr: research use with credit,
#: evaluation only).
HDR_SPLIT: dict[str, dict[str, str]] = {
    "tune": {"StillLife": "openexr-images/ScanLines/StillLife.exr",
             "venice_sunset_1k": "polyhaven/venice_sunset_1k.hdr",
             "Adjuster": "openexr-images/MultiView/Adjuster.exr"},
    "heldout": {"memorial": "memorial.hdr",
                "GoldenGate": "openexr-images/Tiles/GoldenGate.exr",
                "Bonita": "openexr-images/MultiResolution/Bonita.exr",
                "KernerEnvLatLong": "openexr-images/MultiResolution/KernerEnvLatLong.exr",
                "StageEnvLatLong": "openexr-images/MultiResolution/StageEnvLatLong.exr"},
}
#: Pseudo-video settings (:func:`hdr_sequence` keywords). ``standard``: the RESULTS
#: clips. ``hard``: frames 2× larger, the camera 2× faster over the scene (12 px/frame at
#: 512 px, 3 at 256) and 15–30 % of the values clipped instead of 5–15 %: the independent
#: check of issue 19 found errors ~6× those of ``standard`` (larger frames, faster motion,
#: more clipping).
HDR_SETTINGS: dict[str, dict[str, Any]] = {
    "standard": {"size": 256, "max_speed": 3.0, "clip_fraction": (0.05, 0.15)},
    "hard": {"size": 512, "max_speed": 12.0, "clip_fraction": (0.15, 0.30)},
}
#: The issue-19 two-key baseline: each key's weight exp(−e / scale) / (|t − k| + 1), e the
#: box mean (box × box) of |warped key gray − frame gray| (8-bit).
TWO_KEY_BOX, TWO_KEY_SCALE = 9, 8.0


def two_key_flow(hdr: Sequence[np.ndarray], grays: Sequence[np.ndarray], t: int,
                 keys: Sequence[int]) -> np.ndarray:
    """The issue-19 two-key baseline's radiance (H, W, 3) for frame ``t``: each of ``keys``
    (the neighbouring key-frames) DIS-warped (preset MEDIUM, full resolution, on the 8-bit
    ``grays``) and blended per pixel with the weights of :data:`TWO_KEY_BOX` /
    :data:`TWO_KEY_SCALE` (the caller puts it where the frame clips)."""
    import cv2

    num, den = 0.0, 1e-12
    for k in keys:
        fl = dis_flow(grays[t], grays[k])
        h_k, g_k = warp(hdr[k], fl), warp(grays[k], fl)
        e = cv2.blur(np.abs(g_k.astype(np.float32) - grays[t].astype(np.float32)),
                     (TWO_KEY_BOX, TWO_KEY_BOX), borderType=cv2.BORDER_REPLICATE)
        w = (np.exp(-e / TWO_KEY_SCALE) / (abs(t - k) + 1))[..., None]
        num, den = num + w * h_k, den + w
    return (num / den).astype(np.float32)


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
                          keys: Sequence[int] | None = None,
                          curve: Mapping[str, float] | None = None) -> dict[tuple[int, int], dict]:
    """HDR methods (module docstring) on the (frame, nearest key) ``pairs`` of one
    pseudo-video whose key-frames are ``keys`` (default: the keys of ``pairs``).

    The calibrated response is fitted to all of ``keys``, as ``tpn hdr`` does. Two-key
    methods take the frame's neighbouring keys (``blend`` schedule). ``tpn`` is the
    default ``tpn hdr`` (:class:`tpn_cli.propagator.KeyPropagator` with
    :class:`tpn_cli.adapters.HdrAdapter`, no network, both neighbouring keys), ``tpn_net``
    the same with ``model`` (``tpn hdr --tpn``). With the clip's true camera ``curve``
    ({'n', 'sigma'}) the issue's baselines with it are added (``*_true``).
    Returns {(t, k): {method: {'log_rmse', 'log_rmse_sat', 'log_rmse_unsat', 'pu21'}}}
    and adds seconds to ``times`` ('flow', 'two_key', 'tpn', 'tpn_net').
    """
    times = times if times is not None else defaultdict(float)
    keys = sorted({k for _, k in pairs}) if keys is None else sorted(keys)
    codes = [np.rint(x * 255.0).astype(np.uint8) for x in ldr]  # the 8-bit stream, exactly
    grays = [guide_to_gray(_chw(x)) for x in ldr]
    response = camera_response.fit((codes[k], hdr[k]) for k in keys)
    h, w = codes[0].shape[:2]
    work = work_shape(w, h, HdrAdapter.default_work_size)
    props = {"tpn": KeyPropagator(HdrAdapter(work, "cpu", response), None)}
    if model is not None:
        props["tpn_net"] = KeyPropagator(HdrAdapter(work, "cpu", response), model)
    sources = {a.frame: a.sources for a in plan(len(hdr), keys, "blend")}
    out = {}

    def timed(name: str, fn):
        t0 = time.perf_counter()
        result = fn()
        times[name] = times.get(name, 0.0) + time.perf_counter() - t0
        return result

    for t, k in pairs:
        H_t, D_t = _chw(hdr[t])[None].double(), _chw(ldr[t])[None]
        H_k = _chw(hdr[k])[None]
        inv = inverse_camera_curve(D_t.double())
        cal = _chw(response.radiance(codes[t]))[None].double()
        sat = (D_t.amax(1, keepdim=True) >= HDR_SAT_LEVEL)
        H_w = timed("flow", lambda: _chw(warp(hdr[k], dis_flow(grays[t], grays[k])))[None].double())
        ks = [key for key, _ in sources[t]]
        H_2 = timed("two_key", lambda: _chw(two_key_flow(hdr, grays, t, ks))[None].double())
        preds = {"icc": inv,
                 "copy_sat": torch.where(sat, H_k.double(), inv),
                 "flow_sat": torch.where(sat, H_w, inv),
                 "flow_sat_cal": torch.where(sat, H_w, cal),
                 "flow_two_cal": torch.where(sat, H_2, cal)}
        if curve is not None:
            true_inv = inverse_camera_curve(D_t.double(), n=curve["n"], sigma=curve["sigma"])
            preds.update(icc_true=true_inv, flow_sat_true=torch.where(sat, H_w, true_inv),
                         flow_two_true=torch.where(sat, H_2, true_inv))
        for name, prop in props.items():
            for key in ks:
                if key not in prop.keys:
                    prop.set_key(key, hdr[key], codes[key])
            preds[name] = _chw(timed(name, lambda: prop.predict(t, codes[t], sources[t])))[None].double()
        out[(t, k)] = {m: _hdr_scores(p, H_t, sat) for m, p in preds.items()}
    return out


def hdr_clip_rng(image: str, seed: int) -> np.random.Generator:
    """The random stream of pseudo-video ``seed`` over the still ``image`` (fixed, so every
    script evaluates the same clips)."""
    return np.random.default_rng([20261122, seed, sum(map(ord, image))])


def evaluate_hdr_clip(hdr: Sequence[np.ndarray], ldr: Sequence[np.ndarray], Ks: Sequence[int],
                      model=None, times: dict[str, float] | None = None,
                      curve: Mapping[str, float] | None = None) -> dict[int, dict]:
    """One pseudo-video with key-frames every K frames, for each K: {K: {'assign': {t: k}
    (nearest key), 'pairs': {(t, k): {method: scores}}}} (:func:`evaluate_hdr_sequence`;
    ``curve``: the clip's true camera curve, for the ``*_true`` baselines). Each K is a
    separate run, as the calibrated response is fitted to that run's key-frames."""
    n = len(hdr)
    out = {}
    for K in Ks:
        assign = assign_keys(n, K, "nearest")
        pairs = sorted(assign.items())
        out[K] = {"assign": assign,
                  "pairs": evaluate_hdr_sequence(hdr, ldr, pairs, model, times, key_frames(n, K), curve)}
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
