"""Issue 19 (colour): `tpn colorize` against the two-key flow baseline on a declared split.

Used by scripts/eval_colour_split.py (a CLI over :func:`evaluate_clip`),
scripts/summarise_colour_split.py (:func:`summarise`) and scripts/make_results.py.

The split is declared here (:data:`SPLITS`) and was fixed before anything was measured:
``tune`` = the DAVIS sequences the colour work was tuned on so far plus two more;
``heldout`` = four other DAVIS sequences and the four ProPainter clips of
shared/data/video, never used for colour training or tuning. Key-frames every K frames
from 0 (the ground truth's colour).

Frames evaluated (the same for every method at a given K; the first :data:`MAX_FRAMES`
frames of each clip): the pairs (t, t+1) with t ≡ 0 (mod :data:`STRIDE`), and (at
K ≥ :data:`SWITCH_FROM`) every pair (t, t+1) where the key-frames feeding the frame change
under the nearest or the blend schedule (a key-frame itself is fed by itself). PSNR: mean
over the evaluated non-key frames, on 8-bit RGB with the frame's own L. Temporal warping
error of a pair: the output's ab at t warped into t+1 by DIS flow of the ground truth
(t+1 → t, forward-backward consistent pixels only), mean |Δab| there; the ratio is
Σ over pairs of the output's / Σ of the ground truth's, over all pairs, over the pairs
where the method's own feeding keys change ("switch") and over the others.

Methods (:func:`method`): ``baseline`` (:func:`two_key`, the issue's baseline: both
neighbouring key-frames warped by OpenCV DIS flow, preset MEDIUM, at the frame's full
resolution on the 8-bit L, each weighted per pixel by exp(−e/8) / (|t − k| + 1), e the
9×9 box mean of |warped key L − frame L| in 8-bit L; one key alone where there is one);
``baseline:ycc`` (the same, carrying the keys' video chroma (BT.601 Cb, Cr) instead of
their ab and rebuilding the frame from its own luma, as `tpn colorize` does since session
12: the strongest simple alternative we know);
``product:MODE[:tpn|:notpn][:mix=M]`` (:func:`run_product`: what
`tpn colorize --mode MODE [--tpn|--no-tpn]` runs, through the CLI's own
:meth:`tpn_cli.tasks.colour.ColourTask.adapter`, its defaults, the shipped weights and
batch size; no shot detection: the clips are single shots; ``mix`` overrides the flow
part's share, 1.0 = no network).
"""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from tpn_cli import colour, engine, weights
from tpn_cli.flow import dis_flow, warp
from tpn_cli.keyframes import plan
from tpn_cli.media.video import Frame as VideoFrame, VideoReader
from tpn_cli.propagator import KeyPropagator

__all__ = ["SPLITS", "STRIDE", "MAX_FRAMES", "SWITCH_FROM", "BOX", "SCALE", "Frame", "gray_L", "warp_key",
           "photometric_error", "two_key", "rgb_of", "load_clip", "feeders", "evaluated_pairs",
           "run_baseline", "run_product", "cli_default", "method", "psnr", "gt_motion", "chroma_change",
           "evaluate_clip", "group", "summarise", "clip_gains"]

SPLITS = {
    "tune": ["davis:bmx-trees", "davis:drift-chicane", "davis:goat", "davis:libby",
             "davis:breakdance", "davis:car-shadow"],
    "heldout": ["davis:camel", "davis:cows", "davis:dog", "davis:car-roundabout",
                "video:running_car", "video:tennis", "video:test-sample1", "video:test-sample2"],
}
STRIDE = 8
#: Each clip is cut to its first MAX_FRAMES frames (two intervals at K = 40), so that the
#: whole split runs in well under an hour on 2 shared cores.
MAX_FRAMES = 81
#: Key changes are evaluated at K >= SWITCH_FROM only (at K = 10 they are a third of all
#: frames; the CPU budget went to more clips instead).
SWITCH_FROM = 20


def _data_root() -> Path:
    from tpn_cli.train.sources import DATA_ROOT  # noqa: PLC0415 ($TPN_DATA, else shared/data)
    return DATA_ROOT


# ---- the two-key flow baseline -------------------------------------------------
#: The issue's confidence: 9×9 box, exp(−e / 8) with e in 8-bit L.
BOX, SCALE = 9, 8.0


def gray_L(rgb: np.ndarray) -> np.ndarray:
    """8-bit lightness (H, W) uint8 of an RGB frame: round(L × 255 / 100)."""
    L = colour.lightness_image(rgb)
    return np.clip(np.rint(L * (255.0 / 100.0)), 0, 255).astype(np.uint8)


class Frame:
    """One frame's pixels as the baseline uses them: RGB, L (float), ab (float), 8-bit L,
    and its video chroma ``cc`` (Cb, Cr, float)."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.L = colour.lightness_image(rgb)
        self.ab = colour.ab_image(rgb)
        self.cc = colour.chroma_image(rgb)
        self.gray = np.clip(np.rint(self.L * (255.0 / 100.0)), 0, 255).astype(np.uint8)


def warp_key(target: Frame, key: Frame, preset: str = "medium", space: str = "lab") -> tuple[np.ndarray, np.ndarray]:
    """The key-frame's colour (H, W, 2: its ab, or its chroma for ``space="ycc"``) and 8-bit
    L (H, W, float32) moved into ``target`` by DIS flow at full resolution (target → key)."""
    flow = dis_flow(target.gray, key.gray, preset)
    both = np.concatenate([key.ab if space == "lab" else key.cc, key.gray[..., None].astype(np.float32)], axis=2)
    out = warp(both, flow)
    return out[..., :2], out[..., 2]


def photometric_error(warped_gray: np.ndarray, target_gray: np.ndarray, box: int = BOX) -> np.ndarray:
    """e: the ``box``×``box`` mean of |warped key L − frame L| (8-bit L), (H, W) float32."""
    d = np.abs(warped_gray.astype(np.float32) - target_gray.astype(np.float32))
    return cv2.blur(d, (box, box), borderType=cv2.BORDER_REPLICATE)


def two_key(target: Frame, t: int, keys: Sequence[tuple[int, Frame]], space: str = "lab") -> np.ndarray:
    """The issue-19 two-key flow baseline: ab (H, W, 2) of frame ``t`` from its one or two
    neighbouring key-frames ``keys`` [(k, Frame), ...] (chroma with ``space="ycc"``)."""
    num = np.zeros((*target.L.shape, 2), np.float32)
    den = np.zeros(target.L.shape, np.float32)
    for k, key in keys:
        ab, g = warp_key(target, key, space=space)
        w = np.exp(-photometric_error(g, target.gray) / SCALE) / (abs(t - k) + 1.0)
        num += w[..., None] * ab
        den += w
    return num / np.maximum(den, 1e-12)[..., None]


def rgb_of(target: Frame, ab: np.ndarray, space: str = "lab") -> np.ndarray:
    """8-bit RGB of the frame's own L with the predicted ``ab`` (or of its own luma with the
    predicted chroma, ``space="ycc"``)."""
    if space == "ycc":
        return colour.chroma_image_to_rgb(colour.luma_image(target.rgb), ab.astype(np.float32), np.uint8)
    return colour.lab_image_to_rgb(target.L, ab.astype(np.float32), np.uint8)


# ---- clips and frames ------------------------------------------------------------------
def load_clip(name: str, max_frames: int = MAX_FRAMES) -> list[np.ndarray]:
    """The first ``max_frames`` frames of a clip ('davis:NAME' or 'video:NAME') as uint8 RGB."""
    kind, clip = name.split(":")
    if kind == "davis":
        folder = _data_root() / "davis16/JPEGImages/480p" / clip
        return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
                for p in sorted(folder.glob("*.jpg"))[:max_frames]]
    reader = VideoReader(_data_root() / "video" / f"{clip}.mp4", depth=8)
    return [f.image for f in reader.frames(0, max_frames)]


def feeders(n: int, keys: list[int], mode: str) -> dict[int, frozenset]:
    """{frame: the set of key-frames feeding it} (a key-frame feeds itself)."""
    ks = set(keys)
    return {a.frame: frozenset([a.frame]) if a.frame in ks else frozenset(k for k, _ in a.sources)
            for a in plan(n, keys, mode)}


def evaluated_pairs(n: int, keys: list[int], K: int) -> list[int]:
    """Start frames t of the evaluated pairs (t, t+1)."""
    out = {t for t in range(0, n - 1, STRIDE)}
    for mode in (("nearest", "blend") if K >= SWITCH_FROM else ()):
        f = feeders(n, keys, mode)
        out |= {t for t in range(n - 1) if f[t] != f[t + 1]}
    return sorted(out)


# ---- methods ---------------------------------------------------------------------------
def run_baseline(frames, n, keys, wanted, space: str = "lab"):
    """The two-key baseline's RGB of the ``wanted`` frames (key-frames: their own);
    ``space``: what it carries, "lab" (the issue's ab) or "ycc" (video chroma)."""
    f = {}
    for a in plan(n, keys, "blend"):
        if a.frame not in wanted:
            continue
        if a.frame in keys:
            f[a.frame] = frames[a.frame]
            continue
        tgt = Frame(frames[a.frame])
        ab = two_key(tgt, a.frame, [(k, Frame(frames[k])) for k, _ in a.sources], space)
        f[a.frame] = rgb_of(tgt, ab, space)
    return f


class _Collect:
    def __init__(self, wanted):
        self.out, self.wanted = {}, wanted

    def write(self, frame, result):
        if frame.index in self.wanted:
            self.out[frame.index] = result


def cli_default(option: str) -> Any:
    """The default of a `tpn colorize` option (its click parameter's name), or of
    :class:`tpn_cli.runs.Options` where the command does not set it."""
    from tpn_cli.cli.propagate import colorize  # noqa: PLC0415
    from tpn_cli.runs import Options  # noqa: PLC0415
    for p in colorize.params:
        if p.name == option:
            return p.default
    return Options.__dataclass_fields__[option].default


_MODEL: dict = {}


def product_model(spec: str | None = None):
    """The colour TPN (``spec``: a file or name; None the manifest's default), prepared as
    `tpn colorize --tpn` prepares it."""
    if spec not in _MODEL:
        model, _ = weights.load(spec, "colour")
        _MODEL[spec] = model.for_inference(channels_last=True, precision=cli_default("precision"))
    return _MODEL[spec]


def run_product(frames, n, keys, wanted, mode: str | None = None, tpn: bool | None = None,
                spec: str | None = None, mix: float | None = None,
                adapter_hook: Callable | None = None) -> dict[int, np.ndarray]:
    """What `tpn colorize` writes for the ``wanted`` frames (every frame up to the key-frame
    after the last wanted one is computed: colour is carried frame to frame both ways):
    the command's adapter
    (:meth:`tpn_cli.tasks.colour.ColourTask.adapter`, working size, chroma up-sampling, flow
    mix) and :func:`tpn_cli.engine.stream_from_keys` with its batch
    size. ``mode``: --mode (None: the command's default); ``tpn``: --tpn / --no-tpn (None:
    the command's default, ColourTask.USE_TPN; ``spec`` = --weights, which implies --tpn);
    ``mix``: the
    flow part's share instead of the command's (1: no network; < 1 implies the TPN)."""
    from tpn_cli.tasks.colour import ColourTask  # noqa: PLC0415
    task = ColourTask()
    mode = mode or cli_default("mode")
    if tpn is None and mix is not None:
        tpn = mix < 1.0
    use_tpn = task.uses_model(SimpleNamespace(tpn=tpn, weights=spec))
    model = product_model(spec) if use_tpn else None
    h, w = frames[0].shape[:2]
    work_size = cli_default("work_size") or task.default_work_size
    run = SimpleNamespace(work=engine.work_shape(w, h, work_size), device="cpu",
                          opts=SimpleNamespace(chroma_upsample=cli_default("chroma_upsample")))
    adapter = task.adapter(run, model)
    if mix is not None:
        adapter.flow_mix = mix
    if adapter_hook:
        adapter_hook(adapter)
    # the flow part's previous-frame candidate (ColourAdapter.RECURSIVE_SHARE)
    # and its backward pass (AHEAD_SHARE): up to the key-frame after the last wanted frame
    last = min([k for k in keys if k >= max(wanted)], default=n - 1)
    assigns = [a for a in plan(n, keys, mode) if a.frame <= last]
    vf = [VideoFrame(a.frame, frames[a.frame], None, None) for a in assigns]
    sink = _Collect(wanted)
    engine.stream_from_keys(frames=iter(vf), assignments=iter(assigns), propagator=KeyPropagator(adapter, model),
                            load_key=lambda k: frames[k], sinks=[sink], batch_size=cli_default("batch_size"),
                            quiet=True, pipeline=False)
    return sink.out


def method(name: str, spec: str | None = None) -> tuple[Callable, str]:
    """(fn(frames, n, keys, wanted) → {frame: RGB}, the schedule whose key changes count as
    "switch") of a method name (see the module doc). ``spec``: the colour TPN file the
    product uses unless the name says otherwise (None: shipped)."""
    if name == "baseline":
        return run_baseline, "blend"
    if name == "baseline:ycc":
        return (lambda fr, n, keys, wanted: run_baseline(fr, n, keys, wanted, "ycc")), "blend"
    if name.startswith("product:"):  # product:MODE[:tpn|:notpn][:mix=M]
        mode, *opts = name.split(":")[1:]
        flags = {o for o in opts if "=" not in o}
        kw = dict(o.split("=", 1) for o in opts if "=" in o)
        if flags - {"tpn", "notpn"}:
            raise ValueError(f"{name}: unknown option(s) {sorted(flags - {'tpn', 'notpn'})}")
        tpn = True if "tpn" in flags else (False if "notpn" in flags else None)
        mix = float(kw["mix"]) if "mix" in kw else None
        # the TPN file only where the TPN runs (--weights would imply --tpn)
        from tpn_cli.tasks.colour import ColourTask  # noqa: PLC0415
        sp = spec if (tpn if tpn is not None else ColourTask.USE_TPN) else None

        def fn(fr, n, keys, wanted):
            return run_product(fr, n, keys, wanted, mode, tpn=tpn, spec=sp, mix=mix)
        return fn, mode
    raise ValueError(f"unknown method {name!r}")


# ---- metrics ---------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def gt_motion(frames, t):
    """Flow t+1 → t of the ground truth (DIS MEDIUM, full size) and the mask of pixels whose
    forward-backward flows agree."""
    g0, g1 = gray_L(frames[t]), gray_L(frames[t + 1])
    f = dis_flow(g1, g0)
    b = dis_flow(g0, g1)
    back = warp(b, f)  # backward flow at the point each t+1 pixel maps to
    err = np.sum((f + back) ** 2, axis=2)
    ok = err < 0.01 * (np.sum(f ** 2, axis=2) + np.sum(back ** 2, axis=2)) + 0.5
    return f, ok


def chroma_change(rgb0, rgb1, flow, ok) -> float:
    """Mean |ab(t+1) − ab(t) warped by ``flow``| over the ``ok`` pixels."""
    a0 = colour.ab_image(rgb0)
    a1 = colour.ab_image(rgb1)
    d = np.sqrt(np.sum((a1 - warp(a0, flow)) ** 2, axis=2))
    return float(d[ok].mean()) if ok.any() else 0.0


# ---- one clip --------------------------------------------------------------------------
def evaluate_clip(clip: str, Ks: Sequence[int], methods: Sequence[str], results: dict | None = None,
                  method_fn: Callable[[str], tuple[Callable, str]] = method,
                  max_frames: int = MAX_FRAMES, log: Callable[[str], None] | None = None,
                  save: Callable[[dict], None] | None = None, frames: list | None = None) -> dict:
    """Every method on one clip at every K, added to ``results`` (returned) under
    'CLIP|K|METHOD': {'psnr': {t: dB} (non-key frames), 'we', 'gt_we': {t: chroma change}
    (the pairs), 'switch': {t: the method's feeding keys change}, 'seconds', 'frames'}.
    Entries already in ``results`` are kept (a resumed run); ``save(results)`` is called
    after each new one."""
    results = {} if results is None else results
    frames = load_clip(clip, max_frames) if frames is None else frames
    n = len(frames)
    motion: dict = {}
    for K in Ks:
        keys = list(range(0, n, K))
        pairs = evaluated_pairs(n, keys, K)
        wanted = sorted(set(pairs) | {t + 1 for t in pairs})
        todo = [m for m in methods if f"{clip}|{K}|{m}" not in results]
        if not todo:
            continue
        for t in pairs:
            if t not in motion:
                motion[t] = gt_motion(frames, t)
        gt_we = {t: chroma_change(frames[t], frames[t + 1], *motion[t]) for t in pairs}
        for m in todo:
            fn, sched = method_fn(m)
            t0 = time.perf_counter()
            out = fn(frames, n, keys, set(wanted))
            sec = time.perf_counter() - t0
            ps = {t: psnr(out[t], frames[t]) for t in wanted if t not in keys}
            fd = feeders(n, keys, sched)
            we = {t: chroma_change(out[t], out[t + 1], *motion[t]) for t in pairs}
            sw = {t: fd[t] != fd[t + 1] for t in pairs}
            results[f"{clip}|{K}|{m}"] = {"psnr": ps, "we": we, "gt_we": gt_we, "switch": sw,
                                          "seconds": sec, "frames": len(ps)}
            if log:
                log(f"{clip} K={K} {m}: PSNR {np.mean(list(ps.values())):.2f} "
                    f"WE {sum(we.values()) / max(1e-9, sum(gt_we.values())):.3f} ({sec:.0f} s, "
                    f"{len(wanted)} frames)")
            if save:
                save(results)
    return results


# ---- tables ----------------------------------------------------------------------------
def group(results: Mapping[str, dict]) -> dict[tuple[int, str], dict[str, dict]]:
    """{(K, method): {clip: record}} of :func:`evaluate_clip`'s results (also as read back
    from JSON, where frame keys are strings)."""
    by: dict = defaultdict(dict)
    for key, r in results.items():
        clip, K, m = key.split("|")
        by[(int(K), m)][clip] = r
    return dict(by)


def _mean_psnr(r: dict) -> float:
    return float(np.mean(list(r["psnr"].values())))


def summarise(results: Mapping[str, dict], base: str = "baseline") -> dict[tuple[int, str], dict]:
    """{(K, method): {'clips', 'psnr' (mean over all evaluated frames), 'gain' (mean over
    the same frames as ``base``'s, clips both have), 'worst' (the lowest per-clip gain),
    'worst_clip', 'we', 'we_switch', 'we_else' (warping-error ratios output / ground truth
    over all pairs, at the method's key changes, elsewhere; NaN where there are none),
    'excess_switch', 'excess_else' (issue 19's "no jump" as worded: the mean over pairs of
    how much the output's chroma change exceeds the ground truth's, max(0, output − truth)
    in ab units, at key changes and elsewhere), 'ms' (seconds per evaluated frame × 1000)}."""
    by = group(results)
    out = {}
    for (K, m), recs in by.items():
        ref = by.get((K, base), {})
        common = [c for c in recs if c in ref]
        pb = [v for c in common for v in ref[c]["psnr"].values()]
        pm = [v for c in common for v in recs[c]["psnr"].values()]
        d = [_mean_psnr(recs[c]) - _mean_psnr(ref[c]) for c in common]

        def ratio(sel):
            o = sum(r["we"][t] for r in recs.values() for t in r["we"] if sel(r, t))
            g = sum(r["gt_we"][t] for r in recs.values() for t in r["we"] if sel(r, t))
            return o / g if g else float("nan")

        def excess(sel):
            e = [max(0.0, r["we"][t] - r["gt_we"][t]) for r in recs.values() for t in r["we"] if sel(r, t)]
            return float(np.mean(e)) if e else float("nan")
        nfr = sum(r["frames"] for r in recs.values())
        out[(K, m)] = {
            "clips": len(recs), "frames": nfr,
            "psnr": float(np.mean([v for r in recs.values() for v in r["psnr"].values()])),
            "gain": float(np.mean(pm) - np.mean(pb)) if pb else float("nan"),
            "worst": float(min(d)) if d else float("nan"),
            "worst_clip": common[int(np.argmin(d))].split(":")[1] if d else "",
            "we": ratio(lambda r, t: True), "we_switch": ratio(lambda r, t: r["switch"][t]),
            "we_else": ratio(lambda r, t: not r["switch"][t]),
            "excess_switch": excess(lambda r, t: r["switch"][t]), "excess_else": excess(lambda r, t: not r["switch"][t]),
            "ms": 1000.0 * sum(r["seconds"] for r in recs.values()) / max(nfr, 1),
        }
    return out


def clip_gains(results: Mapping[str, dict], method_name: str, base: str = "baseline") -> dict[int, dict[str, float]]:
    """{K: {clip: mean PSNR of ``method_name`` − that of ``base`` on the clip}}."""
    by = group(results)
    out: dict[int, dict[str, float]] = {}
    for (K, m), recs in sorted(by.items()):
        if m != method_name:
            continue
        ref = by.get((K, base), {})
        out[K] = {c: _mean_psnr(recs[c]) - _mean_psnr(ref[c]) for c in recs if c in ref}
    return out
