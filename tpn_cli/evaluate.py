"""Evaluation on held-out data, shared by scripts/eval_colour.py, scripts/eval_segment.py
and scripts/make_results.py (which writes docs/RESULTS.md).

Colour (DAVIS held-out sequences)
    Key-frames every K frames (0, K, 2K, ...). A schedule assigns each other frame one
    key-frame (:func:`tpn_cli.keyframes.plan`): ``online`` = the nearest key-frame at or
    before it (the paper's online mode), ``nearest`` = the nearest on either side (ties to
    the earlier). Each method predicts the frame's ab from that key-frame; PSNR is on 8-bit
    RGB rebuilt with the frame's own L (key-frames excluded), style energy is
    :func:`tpn_cli.metrics.style_energy_ratio` (propagated ab variance / true). The
    prediction for frame t from key k does not depend on K or on the schedule, so every
    distinct (t, k) pair is computed once (:func:`colour_pairs`).
    Methods: ``copy`` (the key-frame's ab), ``flow`` (the key-frame's ab warped by OpenCV DIS
    flow, preset MEDIUM, computed between the frame's and the key-frame's L), and TPN models
    run exactly as `tpn colorize` runs them (:class:`tpn_cli.propagator.KeyPropagator`),
    scored on the RGB image the command writes.

Segmentation (DAVIS protocol, first-frame mask only)
    ``copy`` (the first mask everywhere), ``flow_first`` (the first mask warped to each
    frame by DIS flow computed directly between the two), ``flow_chain`` (the mask warped
    frame to frame by DIS flow), a TPN from the first frame
    (:meth:`tpn_cli.propagator.KeyPropagator.propagate`), or a TPN chained frame to frame
    (:class:`tpn_cli.models.segment.MaskPropagator`). J, F, J&F with first and last frame
    excluded (:func:`tpn_cli.metrics.evaluate_davis_sequence`).

HDR (held-out pseudo-video)
    A virtual camera pans, zooms and rolls smoothly over a held-out HDR still
    (:func:`hdr_sequence`); the LDR stream has one exposure (5–15 % of the first frame's
    values clip), one random camera curve, per-frame noise and 8-bit quantisation, as the
    training pairs (tpn_cli.train.hdr_video). Key-frames carry the true radiance; each K
    is a separate run. Methods: ``icc`` (the inverse camera curve with the default
    parameters, a camera we do not know), the key-frame's radiance copied (``copy_sat``)
    or warped by flow (``flow_sat``) into the frame's saturated pixels (LDR channel max ≥
    0.95; generic f⁻¹(LDR) elsewhere); ``flow_sat_cal`` the same with f⁻¹ the response
    fitted to the run's key-frames (:mod:`tpn_cli.camera_response`), and TPN: ``tpn`` as
    the command line runs it (:class:`tpn_cli.adapters.HdrAdapter` with the fitted
    response: the TPN's radiance into the clipped pixels with a soft edge),
    ``tpn_generic`` the same with the generic curve (the command before calibration),
    ``tpn_paper`` the paper's rule (:func:`tpn_cli.colour.hdr_blend` at the key-frame's
    95th-percentile radiance). log-RMSE (whole frame, saturated and unsaturated pixels)
    and PU21-PSNR (1.0 = 203 cd/m²).
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch

from . import adapters, camera_response, colour, metrics
from .adapters import ColourAdapter, HdrAdapter
from .engine import work_size
from .flow import dis_flow, flow_warp, warp
from .keyframes import plan
from .models import load_model, tasks
from .models import infer
from .models.infer import guide_to_gray
from .propagator import KeyPropagator

__all__ = [
    "DISTANCE_BINS", "SCHEDULES", "key_frames", "assign_keys", "colour_pairs", "distance_bin",
    "bin_by_distance", "fmt", "markdown_table", "mean", "ColourPairResult", "evaluate_colour_sequence",
    "colour_summary", "colour_frame_values", "blends_of", "segment_method", "evaluate_segment_sequence", "hdr_sequence",
    "evaluate_hdr_sequence", "evaluate_hdr_clip", "hdr_clip_rng", "hdr_summary", "HDR_SAT_LEVEL",
]

SCHEDULES = ("online", "nearest", "blend")
#: Distance-to-key-frame bins (inclusive ranges) for the "as a function of distance" tables.
DISTANCE_BINS: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (3, 4), (5, 7), (8, 10), (11, 15),
                                              (16, 20), (21, 30), (31, 40))
#: HDR: an LDR pixel is saturated when its largest channel reaches this level.
HDR_SAT_LEVEL = colour.CLIP_LEVEL


# ----------------------------------------------------------------------------------------
# pure helpers: schedules, distance bins, tables
# ----------------------------------------------------------------------------------------
def key_frames(n: int, K: int) -> list[int]:
    """Key-frame indices of an ``n``-frame clip with a key-frame every ``K`` frames."""
    if K < 1 or n < 1:
        raise ValueError(f"need n >= 1 and K >= 1, got n={n}, K={K}")
    return list(range(0, n, K))


def assign_keys(n: int, K: int, schedule: str, frames: Iterable[int] | None = None) -> dict[int, Any]:
    """Key-frames of the non-key frames among ``frames`` (default all) under ``schedule``,
    key-frames every K frames from 0: {frame: key} for 'online' and 'nearest', {frame:
    ((key, weight), ...)} for 'blend' (one or two keys, :func:`tpn_cli.keyframes.plan`)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {SCHEDULES}")
    keys = key_frames(n, K)
    keyset = set(keys)
    wanted = set(range(n)) if frames is None else {int(t) for t in frames if 0 <= int(t) < n}
    out = {}
    for a in plan(n, keys, schedule):
        if a.frame in wanted and a.frame not in keyset:
            out[a.frame] = a.sources if schedule == "blend" else a.key
    return out


def _keys_of(assigned: Any) -> list[int]:
    return [k for k, _ in assigned] if isinstance(assigned, tuple) else [assigned]


def colour_pairs(n: int, Ks: Sequence[int], schedules: Sequence[str] = SCHEDULES,
                 stride: int = 1) -> tuple[dict[tuple[int, str], dict[int, Any]], list[tuple[int, int]]]:
    """Evaluated frames (every ``stride``-th, from 0) for each (K, schedule), and the sorted
    distinct (frame, key) pairs they need."""
    frames = range(0, n, stride)
    per = {(K, s): assign_keys(n, K, s, frames) for K in Ks for s in schedules}
    pairs = sorted({(t, k) for a in per.values() for t, v in a.items() for k in _keys_of(v)})
    return per, pairs


def blends_of(per: Mapping[tuple[int, str], Mapping[int, Any]]) -> dict[int, set]:
    """{frame: {((key, weight), (key, weight)), ...}}: the two-key blends of the plans."""
    out: dict[int, set] = defaultdict(set)
    for (_, s), a in per.items():
        for t, v in a.items():
            if s == "blend" and len(v) == 2:
                out[t].add(v)
    return dict(out)


def distance_bin(d: int, bins: Sequence[tuple[int, int]] = DISTANCE_BINS) -> str | None:
    """Label ('3–4', '1') of the bin holding distance ``d``, None if none does."""
    for lo, hi in bins:
        if lo <= d <= hi:
            return str(lo) if lo == hi else f"{lo}–{hi}"
    return None


def bin_by_distance(items: Iterable[tuple[int, float]],
                    bins: Sequence[tuple[int, int]] = DISTANCE_BINS) -> dict[str, tuple[float, int]]:
    """(distance, value) items → {bin label: (mean of finite values, count)}, in bin order;
    empty bins are left out."""
    acc: dict[str, list[float]] = {}
    for d, v in items:
        label = distance_bin(int(d), bins)
        if label is not None:
            acc.setdefault(label, []).append(float(v))
    order = [distance_bin(lo, bins) for lo, _ in bins]
    return {b: (mean(acc[b]), len(acc[b])) for b in order if b in acc}


def mean(values: Iterable[float]) -> float:
    """Mean of the finite values (NaN when there are none)."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else float("nan")


def fmt(v: Any, digits: int = 2, signed: bool = False) -> str:
    """A table cell: numbers to ``digits`` decimals ('+' in front if ``signed``), None/NaN → 'n/a'."""
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    x = float(v)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], digits: int = 2,
                   align: str | None = None) -> str:
    """A GitHub markdown table; cells go through :func:`fmt`, white space (new lines) is
    collapsed and '|' escaped so a cell never breaks the table. ``align``: one character per
    column, 'l' or 'r' (default: first column left, the others right)."""
    headers = list(headers)
    rows = [list(r) for r in rows]
    for r in rows:
        if len(r) != len(headers):
            raise ValueError(f"row {r!r} has {len(r)} cells, expected {len(headers)}")
    align = align or ("l" + "r" * (len(headers) - 1))
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
    for r in rows:
        cells = (" ".join(fmt(c, digits).split()).replace("|", "\\|") for c in r)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# colour
# ----------------------------------------------------------------------------------------
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
    work = work_size(w, h, work_short_side)
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
    from .train import sources
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
        ks = _keys_of(v)
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


# ----------------------------------------------------------------------------------------
# segmentation
# ----------------------------------------------------------------------------------------
def segment_method(spec: str):
    """A model (first-frame propagation) for ``PATH``, or a MaskPropagator for
    ``chain:PATH[:k=v,...]`` (``chain:none``: no TPN; MaskPropagator options as k=v, e.g.
    ``appearance=0,anchor=0,specks=0,refine=0`` for plain flow chaining)."""
    from .models.segment import MaskPropagator
    if not spec.startswith("chain:"):
        return load_model(spec)
    path, _, opts = spec[len("chain:"):].partition(":")
    kw: dict[str, Any] = {}
    for item in filter(None, opts.split(",")):
        k, _, v = item.partition("=")
        kw[k] = v if k == "preset" else float(v)
    return MaskPropagator(None if path == "none" else load_model(path), **kw)


def _rgb01(clip, i) -> torch.Tensor:
    return torch.from_numpy(clip.read(i)).permute(2, 0, 1).float() / 255.0


@torch.no_grad()
def evaluate_segment_sequence(name: str, methods: Mapping[str, Any], stride: int = 1) -> dict:
    """Copy-first-mask, flow from the first frame, flow-chained and each method on one
    DAVIS sequence.

    ``methods``: name → a segment TPN (predicts every frame from the first) or a
    :class:`~tpn_cli.models.segment.MaskPropagator` (frame to frame). With ``stride`` > 1
    only every stride-th frame is used (a faster, harder clip). Returns {'scores': {method:
    DavisSequenceResult}, 'ms': {method: ms per frame}, 'frames': count}.
    """
    from .models.segment import MaskPropagator
    from .train import sources
    clip = sources.davis_clip(name, with_masks=True)
    idx = list(range(0, len(clip), stride))
    n = len(idx)
    gt = np.stack([clip.read_mask(i) for i in idx])
    v0 = _rgb01(clip, idx[0])
    u0 = torch.from_numpy(np.stack([gt[0] == 0, gt[0] > 0]).astype(np.float32))
    preds = {m: [gt[0]] for m in ["copy", "flow_first", "flow_chain", *methods]}
    times = {m: 0.0 for m in preds}
    g0 = guide_to_gray(v0)
    chain, v_prev = u0.permute(1, 2, 0).numpy(), v0
    first_frame = {}  # a TPN from the first frame: predicted as `tpn colorize` predicts
    for m, method in methods.items():
        if isinstance(method, MaskPropagator):
            method.start(v0, u0)
        else:
            first_frame[m] = KeyPropagator(None, method)
    for i in idx[1:]:
        v_t = _rgb01(clip, i)
        preds["copy"].append(gt[0])
        g_t = guide_to_gray(v_t)
        t0 = time.perf_counter()
        first = warp(u0.permute(1, 2, 0).numpy(), dis_flow(g_t, g0))
        times["flow_first"] += time.perf_counter() - t0
        preds["flow_first"].append(first.argmax(-1).astype(np.uint8))
        t0 = time.perf_counter()
        chain = warp(chain, dis_flow(g_t, guide_to_gray(v_prev)))
        times["flow_chain"] += time.perf_counter() - t0
        preds["flow_chain"].append(chain.argmax(-1).astype(np.uint8))
        for m, method in methods.items():
            t0 = time.perf_counter()
            if isinstance(method, MaskPropagator):
                out = method.step(v_t)[None]
            else:
                out = first_frame[m].propagate(u0[None], v0[None], v_t[None])
            times[m] += time.perf_counter() - t0
            preds[m].append(out[0].argmax(0).numpy().astype(np.uint8))
        v_prev = v_t
    scores = {m: metrics.evaluate_davis_sequence(np.stack(p), gt, n_objects=1) for m, p in preds.items()}
    return {"scores": scores, "ms": {m: 1000 * s / max(1, n - 1) for m, s in times.items()},
            "frames": n}


# ----------------------------------------------------------------------------------------
# HDR pseudo-video
# ----------------------------------------------------------------------------------------
def hdr_sequence(rng: np.random.Generator, img: np.ndarray, n_frames: int = 41, size: int = 256,
                 max_speed: float = 3.0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A virtual camera moving smoothly over the HDR still ``img`` for ``n_frames``.

    The camera pans in a straight line at up to ``max_speed`` output pixels per frame,
    zooms by up to ±15 % and rolls by up to ±6° over the clip. One exposure (5–15 % of the
    first frame's values clip, radiance scaled so 1.0 is the clip level), one random
    HDRCNN camera curve, noise and 8-bit quantisation for the whole clip. Returns
    (radiance frames, LDR frames), each (size, size, 3) float32.
    """
    from .train.hdr_video import _view
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
        views.append(_view(img, c0 + s * (c1 - c0), zoom * math.exp(dz * s), a0 + da * s, size))
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
    work = work_size(w, h, HdrAdapter.default_work_size)
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
            thr = float(colour.percentile_threshold(H_k[0], 0.95))
            preds["tpn_paper"] = colour.hdr_blend(radiance, D_t.double(), thr)
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
