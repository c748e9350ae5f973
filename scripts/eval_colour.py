"""Quick colour validation on whole DAVIS sequences: copy / DIS-flow / TPN models.

    python scripts/eval_colour.py MODEL.tpn [MODEL2.tpn ...] [--seqs a,b] [--K 10] [--stride 1]

Key-frames every K frames; each other frame takes its nearest key-frame (the paper's
offline schedule); PSNR on 8-bit RGB rebuilt with the frame's own L, averaged over
non-key frames (per sequence, then over all frames). Models whose config says
extra.align=True get the flow-aligned key-frame (same flow as the flow baseline).
"""
from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import numpy as np
import torch

from tpn_cli import colour
from tpn_cli.flow import dis_flow, warp
from tpn_cli.models import load_model, tasks
from tpn_cli.models.infer import guide_to_gray
from tpn_cli.train import sources
from tpn_cli.train.validate import _colour_rgb, _psnr_u8


def _lab(rgb: np.ndarray) -> torch.Tensor:
    return colour.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255.0)


def nearest_key(t: int, K: int, n: int) -> int:
    """The key-frame (multiple of K, inside the clip) nearest to t; ties go to the earlier."""
    lo = (t // K) * K
    hi = lo + K
    return lo if (t - lo <= hi - t or hi >= n) else hi


@torch.no_grad()
def evaluate_sequence(name: str, models: dict, K: int, stride: int = 1) -> dict:
    """Per-method lists of (distance, PSNR) over the non-key frames of one sequence."""
    clip = sources.davis_clip(name)
    n = len(clip)
    out = defaultdict(list)
    times = defaultdict(float)
    for t in range(0, n, stride):
        k = nearest_key(t, K, n)
        if k == t:
            continue
        rgb_t, rgb_k = clip.read(t), clip.read(k)
        lab_t, lab_k = _lab(rgb_t), _lab(rgb_k)
        truth = torch.from_numpy(rgb_t).permute(2, 0, 1)[None]
        v_t = tasks.colour_guide(lab_t[:, :1])
        u_k, v_k = tasks.colour_prop(lab_k[:, 1:]), tasks.colour_guide(lab_k[:, :1])
        d = abs(t - k)
        out["copy"].append((d, _psnr_u8(_colour_rgb(v_t, u_k), truth)))
        t0 = time.time()
        # flow from L only: all a grayscale input offers (baseline and models alike)
        flow = dis_flow(guide_to_gray(v_t[0]), guide_to_gray(v_k[0]))
        lab_w = torch.from_numpy(warp(lab_k[0].permute(1, 2, 0).numpy(), flow)).permute(2, 0, 1)[None]
        times["flow"] += time.time() - t0
        u_w, v_w = tasks.colour_prop(lab_w[:, 1:]), tasks.colour_guide(lab_w[:, :1])
        out["flow"].append((d, _psnr_u8(_colour_rgb(v_t, u_w), truth)))
        for mname, model in models.items():
            aligned = model.config.extra.get("align", False)
            t0 = time.time()
            pred = model(u_w, v_w, v_t) if aligned else model(u_k, v_k, v_t)
            times[mname] += time.time() - t0
            out[mname].append((d, _psnr_u8(_colour_rgb(v_t, pred), truth)))
    count = max(1, len(out["copy"]))
    return {"psnr": dict(out), "ms_per_frame": {m: 1000 * s / count for m, s in times.items()}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="*")
    p.add_argument("--seqs", default="drift-chicane,goat,libby,bmx-trees")
    p.add_argument("--K", type=int, default=10)
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write the per-frame numbers here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = {path: load_model(path) for path in a.models}
    allres = {}
    totals = defaultdict(list)
    for name in a.seqs.split(","):
        res = evaluate_sequence(name, models, a.K, a.stride)
        allres[name] = res
        means = {m: np.mean([v for _, v in vals]) for m, vals in res["psnr"].items()}
        for m, vals in res["psnr"].items():
            totals[m] += vals
        print(name, " ".join(f"{m}={v:.2f}" for m, v in means.items()),
              " ms:", " ".join(f"{m}={v:.0f}" for m, v in res["ms_per_frame"].items()), flush=True)
    print(f"ALL (K={a.K}, nearest, mean over frames):")
    for m, vals in totals.items():
        by_d = defaultdict(list)
        for d, v in vals:
            by_d[d].append(v)
        print(f"  {m}: {np.mean([v for _, v in vals]):.2f} dB   by distance: "
              + " ".join(f"{d}:{np.mean(v):.2f}" for d, v in sorted(by_d.items())))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(allres, f)


if __name__ == "__main__":
    main()
