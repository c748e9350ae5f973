"""Time, in one run on the same frames, the two-key flow baseline's prediction step
(two DIS MEDIUM flows at full size, warps, weights) against candidate methods of
scripts/candidates_colour.py; interleaved, so load from other jobs hits them alike.

    python scripts/bench_colour_fill.py [--seq goat] [--frames 8] [--threads 2] [--cands ncfill,ncfill_avg]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import baselines_colour as bc  # noqa: E402
import candidates_colour as cc  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--seq", default="goat")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cands", default="ncfill,ncfill_avg")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(a.threads)
    folder = Path("/work/shared/data/davis16/JPEGImages/480p") / a.seq
    rgb = [cv2.cvtColor(cv2.imread(str(folder / f"{i:05d}.jpg")), cv2.COLOR_BGR2RGB) for i in range(0, 21)]
    keys = [(0, bc.Frame(rgb[0])), (20, bc.Frame(rgb[20]))]
    preds = {"baseline": lambda tgt, t, ks: bc.two_key(tgt, t, ks)}
    import candidates_colour
    for c in a.cands.split(","):
        fn = candidates_colour.CANDIDATES[c][0]
        # the candidates' predict function sits in the closure of _frames_of's caller
        preds[c] = fn.__closure__[0].cell_contents
    times = {m: [] for m in preds}
    for t in range(2, 2 + a.frames):
        tgt = bc.Frame(rgb[t])
        for m, f in preds.items():
            t0 = time.perf_counter()
            f(tgt, t, keys)
            times[m].append(time.perf_counter() - t0)
    for m, v in times.items():
        print(f"{m}: {1000 * np.median(v):.0f} ms/frame (median of {len(v)}), "
              f"{np.median(v) / np.median(times['baseline']):.2f}× the baseline")


if __name__ == "__main__":
    main()
