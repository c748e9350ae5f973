"""HDR on pseudo-video: every method's log-RMSE (whole frame, saturated, unsaturated pixels)
and PU21-PSNR, the numbers of docs/RESULTS.md's HDR section, quicker and with more detail.

    python scripts/eval_hdr.py [MODEL.tpn] [--Ks 10,20] [--seeds 3] [--images val|train|NAME,...]

The clips are those of scripts/make_results.py (same seeds); ``--images train`` runs on
stills the model was trained on (to check that what helps is not specific to the held-out
two). The evaluation is tpn_eval (evaluate_hdr_clip).
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tpn_eval as ev  # noqa: E402
from tpn_cli import weights  # noqa: E402
from tpn_cli.models import load_model  # noqa: E402


def main(argv=None) -> None:
    from tpn_cli.train.hdr_video import hdr_images

    p = argparse.ArgumentParser()
    p.add_argument("model", nargs="?", help="HDR model file (default: the shipped one)")
    p.add_argument("--Ks", default="10,20")
    p.add_argument("--seeds", type=int, default=3, help="pseudo-videos per image")
    p.add_argument("--images", default="val", help="'val', 'train' or still names, comma-separated")
    p.add_argument("--frames", type=int, default=41)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    Ks = [int(k) for k in a.Ks.split(",")]
    model = load_model(str(a.model or weights.resolve(None, "hdr"))).eval()
    split = a.images if a.images in ("val", "train") else "all"
    images = hdr_images("val") if split == "val" else {**hdr_images("train"), **hdr_images("val")}
    names = sorted(images) if split != "all" else a.images.split(",")
    clips, times = [], defaultdict(float)
    for name in names:
        for seed in range(a.seeds):
            hdr, ldr = ev.hdr_sequence(ev.hdr_clip_rng(name, seed), images[name], a.frames, a.size)
            clips.append(ev.evaluate_hdr_clip(hdr, ldr, Ks, model, times))
            sat = np.mean([(x.max(-1) >= ev.HDR_SAT_LEVEL).mean() for x in ldr])
            print(f"{name} seed {seed}: saturated {100 * sat:.1f} %", flush=True)
    for K in Ks:
        summ = ev.hdr_summary(clips, K)
        rows = [[m, s["log_rmse"], s["log_rmse_sat"], s["log_rmse_unsat"], s["pu21"]] for m, s in summ.items()]
        print(f"\nK = {K} ({', '.join(names)}; {a.seeds} clip(s) each)")
        print(ev.markdown_table(["method", "log-RMSE", "saturated", "unsaturated", "PU21-PSNR"], rows, digits=4))


if __name__ == "__main__":
    main()
