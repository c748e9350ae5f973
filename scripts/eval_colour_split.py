"""Issue 19 (colour): `tpn colorize` against the two-key flow baseline on a declared split.

    python scripts/eval_colour_split.py --set tune|heldout [--K 10,20,30,40]
        [--methods baseline,product:nearest,product:blend] [--clips a,b] --out FILE.json

The split is declared here (SPLITS) and was fixed before anything was measured:
TUNING = the DAVIS sequences the colour work was tuned on so far plus two more; HELD-OUT =
four other DAVIS sequences and the four ProPainter clips of shared/data/video, never used
for colour training or tuning. Key-frames every K frames from 0 (the ground truth's colour).

Frames evaluated (the same for every method at a given K; the first MAX_FRAMES = 81 frames
of each clip): the pairs (t, t+1) with
t ≡ 0 (mod STRIDE), and (at K >= 20) every pair (t, t+1) where the key-frames feeding the frame change
under the nearest or the blend schedule (a key-frame itself is fed by itself). PSNR: mean
over the evaluated non-key frames, on 8-bit RGB with the frame's own L (as docs/RESULTS.md).
Temporal warping error of a pair: the output's ab at t warped into t+1 by DIS flow of the
ground truth (t+1 → t, forward-backward consistent pixels only), mean |Δab| there; the
ratio is Σ over pairs of the output's / Σ of the ground truth's, over all pairs, over the
pairs where the method's own feeding keys change ("switch") and over the others.

Methods: ``baseline`` (scripts/baselines_colour.two_key, the issue's baseline),
``product:MODE`` (exactly what `tpn colorize --mode MODE` runs: tpn_cli.engine.stream_from_keys with
the CLI's adapter, flow mix, weights and batch size; no shot detection: the clips are
single shots), and candidates registered in scripts/candidates_colour.py as ``cand:NAME``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import baselines_colour as bc  # noqa: E402
from tpn_cli import colour_fusion, engine, weights  # noqa: E402
from tpn_cli.adapters import ColourAdapter  # noqa: E402
from tpn_cli.flow import dis_flow, warp  # noqa: E402
from tpn_cli.keyframes import plan  # noqa: E402
from tpn_cli.media.video import Frame as VideoFrame, VideoReader  # noqa: E402
from tpn_cli.models import infer  # noqa: E402
from tpn_cli.propagator import KeyPropagator  # noqa: E402

DATA = Path("/work/shared/data")
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


def load_clip(name: str, max_frames: int = MAX_FRAMES) -> list[np.ndarray]:
    """The first ``max_frames`` frames of a clip as uint8 RGB."""
    kind, clip = name.split(":")
    if kind == "davis":
        folder = DATA / "davis16/JPEGImages/480p" / clip
        return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
                for p in sorted(folder.glob("*.jpg"))[:max_frames]]
    reader = VideoReader(DATA / "video" / f"{clip}.mp4", depth=8)
    return [f.image for f in reader.frames(0, max_frames)]


def feeders(n: int, keys: list[int], mode: str) -> dict[int, frozenset]:
    """{frame: the set of key-frames feeding it} (a key-frame feeds itself)."""
    ks = set(keys)
    return {a.frame: frozenset([a.frame]) if a.frame in ks else frozenset(k for k, _ in a.sources)
            for a in plan(n, keys, mode)}


#: Key changes are evaluated at K >= SWITCH_FROM only (at K = 10 they are a third of all
#: frames; the CPU budget went to more clips instead).
SWITCH_FROM = 20


def evaluated_pairs(n: int, keys: list[int], K: int) -> list[int]:
    """Start frames t of the evaluated pairs (t, t+1)."""
    out = {t for t in range(0, n - 1, STRIDE)}
    for mode in (("nearest", "blend") if K >= SWITCH_FROM else ()):
        f = feeders(n, keys, mode)
        out |= {t for t in range(n - 1) if f[t] != f[t + 1]}
    return sorted(out)


# ---- methods ---------------------------------------------------------------------------
def run_baseline(frames, n, keys, wanted):
    f = {}
    for a in plan(n, keys, "blend"):
        if a.frame not in wanted:
            continue
        tgt = bc.Frame(frames[a.frame])
        if a.frame in keys:
            f[a.frame] = frames[a.frame]
            continue
        ab = bc.two_key(tgt, a.frame, [(k, bc.Frame(frames[k])) for k, _ in a.sources])
        f[a.frame] = bc.rgb_of(tgt, ab)
    return f


class _Collect:
    def __init__(self):
        self.out = {}

    def write(self, frame, result):
        self.out[frame.index] = result


_MODEL = {}


def product_model(spec=None):
    """The CLI's default colour model, prepared as `tpn colorize` prepares it."""
    if spec not in _MODEL:
        model, _ = weights.load(spec, "colour")
        _MODEL[spec] = model.for_inference(channels_last=True, precision="fp32")
    return _MODEL[spec]


def run_product(frames, n, keys, wanted, mode, spec=None, adapter_hook=None, mix=None, fusion=None):
    """Exactly the CLI's prediction path (tpn_cli.runs: ColourAdapter at work size 240 with
    the flow mix and the shipped key fusion, engine.stream_from_keys with batch 4), on the
    wanted frames only (frames are independent given their key-frames, so leaving others
    out changes nothing). ``mix``: the flow part's share instead of the CLI's (1: no
    network runs); ``fusion``: a key-fusion file instead of the shipped one."""
    h, w = frames[0].shape[:2]
    model = None if mix == 1.0 else product_model(spec)
    net = colour_fusion.load_fusion(fusion) if fusion else colour_fusion.load_shipped()
    adapter = ColourAdapter(engine.work_shape(w, h, ColourAdapter.default_work_size), "cpu", "guided",
                            fusion=net)
    if model is None or infer.wants_alignment(model):
        adapter.flow_mix = ColourAdapter.FLOW_MIX if mix is None else mix
    if adapter_hook:
        adapter_hook(adapter)
    assigns = [a for a in plan(n, keys, mode) if a.frame in wanted]
    vf = [VideoFrame(a.frame, frames[a.frame], None, None) for a in assigns]
    sink = _Collect()
    engine.stream_from_keys(frames=iter(vf), assignments=iter(assigns), propagator=KeyPropagator(adapter, model),
               load_key=lambda k: frames[k], sinks=[sink], batch_size=4, quiet=True, pipeline=False)
    return sink.out


def method_fn(name):
    if name == "baseline":
        return run_baseline, "blend"
    if name.startswith("product:"):  # product:MODE[:mix=M][:fusion=PATH]
        mode, *opts = name.split(":")[1:]
        kw = dict(o.split("=", 1) for o in opts)
        mix = float(kw["mix"]) if "mix" in kw else None
        return (lambda fr, n, keys, wanted: run_product(fr, n, keys, wanted, mode, mix=mix,
                                                        fusion=kw.get("fusion"))), mode
    if name.startswith("cand:"):
        import candidates_colour as cc
        return cc.CANDIDATES[name[5:]]
    raise ValueError(name)


# ---- metrics ---------------------------------------------------------------------------
def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def gt_motion(frames, t):
    """Flow t+1 → t of the ground truth (DIS MEDIUM, full size) and the mask of pixels whose
    forward-backward flows agree."""
    g0, g1 = bc.gray_L(frames[t]), bc.gray_L(frames[t + 1])
    f = dis_flow(g1, g0)
    b = dis_flow(g0, g1)
    back = warp(b, f)  # backward flow at the point each t+1 pixel maps to
    err = np.sum((f + back) ** 2, axis=2)
    ok = err < 0.01 * (np.sum(f ** 2, axis=2) + np.sum(back ** 2, axis=2)) + 0.5
    return f, ok


def chroma_change(rgb0, rgb1, flow, ok):
    a0 = bc.colour.ab_image(rgb0)
    a1 = bc.colour.ab_image(rgb1)
    d = np.sqrt(np.sum((a1 - warp(a0, flow)) ** 2, axis=2))
    return float(d[ok].mean()) if ok.any() else 0.0


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--set", choices=SPLITS, required=True)
    p.add_argument("--clips", help="comma-separated subset of the set's clips (names after ':')")
    p.add_argument("--K", default="10,20,30,40")
    p.add_argument("--methods", default="baseline,product:nearest,product:blend")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    Ks = [int(k) for k in a.K.split(",")]
    methods = a.methods.split(",")
    clips = SPLITS[a.set]
    if a.clips:
        clips = [c for c in clips if c.split(":")[1] in a.clips.split(",")]
    results = json.loads(Path(a.out).read_text()) if Path(a.out).exists() else {}
    for clip in clips:
        frames = load_clip(clip)
        n = len(frames)
        motion = {}
        for K in Ks:
            keys = list(range(0, n, K))
            pairs = evaluated_pairs(n, keys, K)
            wanted = sorted(set(pairs) | {t + 1 for t in pairs})
            for t in pairs:
                if t not in motion:
                    motion[t] = gt_motion(frames, t)
            gt_we = {t: chroma_change(frames[t], frames[t + 1], *motion[t]) for t in pairs}
            for m in methods:
                key = f"{clip}|{K}|{m}"
                if key in results:
                    continue
                fn, sched = method_fn(m)
                t0 = time.perf_counter()
                out = fn(frames, n, keys, set(wanted))
                sec = time.perf_counter() - t0
                ps = {t: psnr(out[t], frames[t]) for t in wanted if t not in keys}
                fd = feeders(n, keys, sched)
                we = {t: chroma_change(out[t], out[t + 1], *motion[t]) for t in pairs}
                sw = {t: fd[t] != fd[t + 1] for t in pairs}
                results[key] = {"psnr": ps, "we": we, "gt_we": gt_we, "switch": sw,
                                "seconds": sec, "frames": len(ps)}
                print(f"{clip} K={K} {m}: PSNR {np.mean(list(ps.values())):.2f} "
                      f"WE {sum(we.values()) / max(1e-9, sum(gt_we.values())):.3f} ({sec:.0f}s)", flush=True)
                Path(a.out).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
