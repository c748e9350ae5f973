"""Colour on held-out DAVIS sequences: copy, DIS flow and TPN models (as `tpn colorize`
runs them, through :class:`tpn_cli.propagator.KeyPropagator`); see :mod:`tpn_eval`."""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from tpn_cli import colour, metrics
from tpn_cli.adapters import ColourAdapter
from tpn_cli.engine import work_shape
from tpn_cli.flow import flow_warp
from tpn_cli.models import infer, tasks
from tpn_cli.models.infer import guide_to_gray
from tpn_cli.propagator import KeyPropagator

from .plans import SCHEDULES, assign_keys, blends_of, colour_pairs, keys_of
from .tables import mean

__all__ = ["ColourPairResult", "evaluate_colour_pairs", "evaluate_colour_sequence", "colour_frame_values",
           "colour_summary"]


def _lab(rgb: np.ndarray) -> torch.Tensor:
    return colour.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255.0)


def _colour_rgb(v: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Guidance L (/100) + property ab (/110) → uint8 RGB (1, 3, H, W)."""
    lab = torch.cat([v * 100.0, tasks.colour_unprop(u)], dim=1)
    return (colour.lab_to_rgb(lab) * 255.0).round().to(torch.uint8)


def _psnr_u8(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR (dB) of two uint8 images, peak 255, capped at 100 dB (identical frames)."""
    return min(100.0, float(metrics.psnr(a.float(), b.float()).reshape(-1)[0]))


@dataclass
class ColourPairResult:
    """One (frame, key-frame) pair: PSNR and style energy per method."""

    t: int
    k: int
    psnr: dict[str, float] = field(default_factory=dict)
    energy: dict[str, float] = field(default_factory=dict)

    @property
    def distance(self) -> int:
        return abs(self.t - self.k)


class _FrameCache:
    """Lab of the frames of one clip, read once (the key-frames are reused many times)."""

    def __init__(self, clip, keep: int = 16):
        self.clip, self.keep, self.store = clip, keep, {}

    def get(self, i: int):
        if i not in self.store:
            if len(self.store) >= self.keep:
                self.store.pop(next(iter(self.store)))
            rgb = self.clip.read(i)
            self.store[i] = (rgb, _lab(rgb))
        return self.store[i]


@torch.no_grad()
def evaluate_colour_pairs(clip, pairs: Sequence[tuple[int, int]], models: Mapping[str, Any],
                          times: dict[str, float] | None = None,
                          only: Mapping[str, set] | None = None,
                          work_short_side: int = ColourAdapter.default_work_size,
                          blends: Mapping[int, set] | None = None,
                          blend_out: dict | None = None) -> list[ColourPairResult]:
    """Copy, flow and each model on the (frame, key) ``pairs`` of ``clip`` (sorted by frame).

    ``models`` maps a name to a colour TPN (or None: left out); ``only[name]``, if given,
    restricts that model to a subset of the pairs. The models run exactly as `tpn colorize`
    runs them: through :class:`tpn_cli.propagator.KeyPropagator` at the working size
    ``work_short_side`` (the command's default), the score taken on the image the command
    would write (flow-aligned models mixed with the flow baseline's colour,
    ``ColourAdapter.FLOW_MIX``, as the command does). The baselines work at full size.
    Seconds spent are added to ``times``: 'flow' (DIS + warp), each model's name (the
    network alone), and '<name>+flow' (the propagator end to end: guidance, alignment,
    network, up-sampling, the flow part).

    ``blends`` ({frame: {((k0, w0), (k1, w1)), ...}}, :func:`blends_of`): for those frames
    the predictions from both keys are also blended as ``--mode blend`` does (the same
    propagator, reusing the frame's aligned keys and network outputs), flow's (by
    :func:`tpn_cli.models.infer.blend_weights` at full size) and each model's, and their
    PSNR put in ``blend_out[(frame, sources)][method]``.
    """
    times = times if times is not None else defaultdict(float)
    blends = blends or {}
    cache = _FrameCache(clip)
    h, w = clip.read(0).shape[:2]
    work = work_shape(w, h, work_short_side)
    props = {name: KeyPropagator(ColourAdapter(work, "cpu", flow_mix=_flow_mix(m)), m)
             for name, m in models.items() if m is not None}
    out = []
    frame_t = None  # the frame whose keys are in ``views``
    views: dict[str, dict[int, Any]] = {}  # model → key → its view of the frame (this frame)
    targets: dict[str, Any] = {}  # model → the frame's Target
    flows: dict[int, tuple] = {}  # key → (warped ab, warped L guidance) of the flow baseline

    def scores(rgb: np.ndarray, truth: torch.Tensor, true_ab: torch.Tensor) -> tuple[float, float]:
        got = torch.from_numpy(rgb).permute(2, 0, 1)[None]
        return _psnr_u8(got, truth), float(metrics.style_energy_ratio(_lab(rgb)[:, 1:], true_ab)[0])

    def finish_blends(t: int, lab_t: torch.Tensor, truth: torch.Tensor) -> None:
        v_t = tasks.colour_guide(lab_t[:, :1])
        for sources in blends.get(t, ()):
            res = blend_out.setdefault((t, sources), {})
            dist_w = [wt for _, wt in sources]
            if all(k in flows for k, _ in sources):
                maps = infer.blend_weights(dist_w, [flows[k][1] for k, _ in sources], v_t[0])
                ab = infer.blend([(flows[k][0], mp) for mp, (k, _) in zip(maps, sources)])
                res["flow"] = _psnr_u8(_colour_rgb(v_t, tasks.colour_prop(ab[None])), truth)
                # issue 19's two-key baseline: the same warps, weighted by fit / (|t − k| + 1)
                gray = np.clip(np.rint(lab_t[0, 0].numpy() * 2.55), 0, 255).astype(np.uint8)
                raw = [ColourAdapter.key_fit(flows[k][1][0].numpy() * 100.0, gray) / (abs(t - k) + 1.0)
                       for k, _ in sources]
                ab2 = sum(r * flows[k][0] for r, (k, _) in zip(raw, sources)) / sum(raw).clamp(min=1e-12)
                res["flow2"] = _psnr_u8(_colour_rgb(v_t, tasks.colour_prop(ab2[None])), truth)
            for name, prop in props.items():
                if all(k in views.get(name, {}) for k, _ in sources):
                    pred = prop.frame(targets[name], [replace(views[name][k], weight=wt) for k, wt in sources])
                    res[name] = _psnr_u8(torch.from_numpy(prop.output(pred)).permute(2, 0, 1)[None], truth)

    pending = None  # (t, lab_t, truth) of the frame whose blends are not done
    for t, k in pairs:
        if frame_t != t:
            if pending is not None:
                finish_blends(*pending)
                pending = None
            frame_t, views, targets, flows = t, {}, {}, {}
        rgb_t, lab_t = cache.get(t)
        rgb_k, lab_k = cache.get(k)
        truth = torch.from_numpy(rgb_t).permute(2, 0, 1)[None]
        true_ab = lab_t[:, 1:]
        v_t = tasks.colour_guide(lab_t[:, :1])
        u_k = tasks.colour_prop(lab_k[:, 1:])
        r = ColourPairResult(t, k)
        r.psnr["copy"] = _psnr_u8(_colour_rgb(v_t, u_k), truth)
        r.energy["copy"] = float(metrics.style_energy_ratio(lab_k[:, 1:], true_ab)[0])
        t0 = time.perf_counter()
        # flow from L only: all a grayscale input offers (baseline and models alike)
        lab_w = torch.from_numpy(flow_warp(guide_to_gray(v_t[0]), guide_to_gray(tasks.colour_guide(lab_k[0, :1])),
                                           lab_k[0].permute(1, 2, 0).numpy())).permute(2, 0, 1)
        times["flow"] = times.get("flow", 0.0) + time.perf_counter() - t0
        ab_w = lab_w[1:]
        r.psnr["flow"] = _psnr_u8(_colour_rgb(v_t, tasks.colour_prop(ab_w[None])), truth)
        r.psnr["flow2"] = r.psnr["flow"]  # the two-key baseline where one key feeds the frame
        r.energy["flow"] = float(metrics.style_energy_ratio(ab_w[None], true_ab)[0])
        if t in blends:
            flows[k] = (ab_w, tasks.colour_guide(lab_w[:1]))
        for name, prop in props.items():
            if only and name in only and (t, k) not in only[name]:
                continue
            t0 = time.perf_counter()
            if k not in prop.keys:
                if len(prop.keys) >= 8:  # pairs come sorted by frame: a key serves nearby frames
                    del prop.keys[next(iter(prop.keys))]
                prop.set_key(k, rgb_k)
            if name not in targets:
                targets[name] = prop.target(t, rgb_t)
            view = views.setdefault(name, {})[k] = prop.view(targets[name], k)
            t1 = time.perf_counter()
            prop.correct([view])
            dt = time.perf_counter() - t1
            rgb = prop.output(prop.frame(targets[name], [view]))
            times[name] = times.get(name, 0.0) + dt
            times[name + "+flow"] = times.get(name + "+flow", 0.0) + time.perf_counter() - t0
            r.psnr[name], r.energy[name] = scores(rgb, truth, true_ab)
        if t in blends:
            pending = (t, lab_t, truth)
        out.append(r)
    if pending is not None:
        finish_blends(*pending)
    return out


def _flow_mix(model: Any) -> float:
    """The flow baseline's share in a colour model's output, as `tpn colorize` sets it."""
    return ColourAdapter.FLOW_MIX if model is not None and infer.wants_alignment(model) else 0.0


def evaluate_colour_sequence(name: str, models: Mapping[str, Any], Ks: Sequence[int] = (10,),
                             schedules: Sequence[str] = SCHEDULES, stride: int = 1,
                             extra_models: Mapping[str, Any] | None = None,
                             extra_pairs: Sequence[tuple[int, str]] = ()) -> dict:
    """All colour numbers of one DAVIS sequence.

    Returns {'n': frames, 'assign': {(K, schedule): {t: k or sources}}, 'pairs': {(t, k):
    ColourPairResult}, 'blend': {(t, sources): {method: PSNR}} (two-key blends),
    'seconds': {...}, 'count': pairs computed}. ``extra_models`` are
    evaluated only on the pairs of the plans ``extra_pairs`` = [(K, schedule), ...] (a
    cheaper comparison); their results are merged into the same ColourPairResult objects.
    """
    from tpn_cli.train import sources
    clip = sources.davis_clip(name)
    n = len(clip)
    assign, pairs = colour_pairs(n, Ks, schedules, stride)
    times: dict[str, float] = defaultdict(float)
    only, counts = {}, {m: len(pairs) for m in ["flow", *models]}
    all_models = dict(models)
    if extra_models:
        sub = {p for K, s in extra_pairs for p in assign_keys(n, K, s, range(0, n, stride)).items()}
        for m, model in extra_models.items():
            if m not in all_models:
                all_models[m] = model
                only[m] = sub
                counts[m] = len(sub)
    blend: dict = {}
    results = {(r.t, r.k): r for r in evaluate_colour_pairs(clip, pairs, all_models, times, only,
                                                            blends=blends_of(assign), blend_out=blend)}
    return {"name": name, "n": n, "assign": assign, "pairs": results, "blend": blend,
            "seconds": dict(times), "count": counts}


def colour_frame_values(res: dict, K: int, schedule: str, what: str = "psnr") -> dict[int, tuple[int, dict]]:
    """{frame: (distance to its nearest key, {method: value})} of one sequence's results
    (:func:`evaluate_colour_sequence`) under (K, schedule); ``what``: 'psnr' or 'energy'
    (blends have PSNR only)."""
    out = {}
    for t, v in res["assign"].get((K, schedule), {}).items():
        ks = keys_of(v)
        if len(ks) == 2:
            vals = res["blend"].get((t, v), {}) if what == "psnr" else {}
        else:
            vals = getattr(res["pairs"][(t, ks[0])], what)
        out[t] = (min(abs(t - k) for k in ks), vals)
    return out


def colour_summary(seq_results: Sequence[dict], K: int, schedule: str, method: str,
                   what: str = "psnr") -> dict[str, float]:
    """Mean of ``what`` ('psnr' or 'energy') of ``method`` under (K, schedule): per sequence
    name, and 'all' = the mean over all evaluated frames of all sequences."""
    out, pooled = {}, []
    for res in seq_results:
        vals = [v[method] for _, v in colour_frame_values(res, K, schedule, what).values() if method in v]
        out[res["name"]] = mean(vals)
        pooled += vals
    out["all"] = mean(pooled)
    return out
