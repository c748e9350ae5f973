"""Quick colour validation on whole DAVIS sequences: copy / DIS-flow / TPN models.

    python scripts/eval_colour.py MODEL.tpn [MODEL2.tpn ...] [--seqs a,b] [--K 10] [--stride 1]
        [--schedule nearest|online|blend]

Key-frames every K frames; each other frame takes its nearest key-frame (the paper's
offline schedule; ``--schedule online`` for the preceding one, ``blend`` both neighbours
weighted by distance and per-pixel fit, as ``--mode blend``); PSNR on 8-bit RGB rebuilt
with the frame's own L, averaged over non-key frames (per sequence, then over all frames).
Models run as `tpn colorize` runs them (its working size, the key-frame flow-aligned when
the model's config says extra.align=True). The evaluation is tpn_eval (shared with scripts/make_results.py,
which writes docs/RESULTS.md).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tpn_eval as ev  # noqa: E402
from tpn_cli.models import load_model  # noqa: E402


def evaluate_sequence(name: str, models: dict, K: int, stride: int = 1, schedule: str = "nearest") -> dict:
    """Per-method lists of (distance to the nearest key, PSNR) over the non-key frames of
    one sequence."""
    res = ev.evaluate_colour_sequence(name, models, (K,), (schedule,), stride)
    out = defaultdict(list)
    for t, (d, psnr) in sorted(ev.colour_frame_values(res, K, schedule).items()):
        for m, v in psnr.items():
            out[m].append((d, v))
    ms = {m: 1000 * s / max(1, res["count"].get(m, 1)) for m, s in res["seconds"].items()
          if not m.endswith("+flow")}
    return {"psnr": dict(out), "ms_per_frame": ms}


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="*")
    p.add_argument("--seqs", default="drift-chicane,goat,libby,bmx-trees")
    p.add_argument("--K", type=int, default=10)
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--schedule", default="nearest", choices=ev.SCHEDULES)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="write the per-frame numbers here")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = {path: load_model(path) for path in a.models}
    allres = {}
    totals = defaultdict(list)
    for name in a.seqs.split(","):
        res = evaluate_sequence(name, models, a.K, a.stride, a.schedule)
        allres[name] = res
        means = {m: np.mean([v for _, v in vals]) for m, vals in res["psnr"].items()}
        for m, vals in res["psnr"].items():
            totals[m] += vals
        print(name, " ".join(f"{m}={v:.2f}" for m, v in means.items()),
              " ms:", " ".join(f"{m}={v:.0f}" for m, v in res["ms_per_frame"].items()), flush=True)
    print(f"ALL (K={a.K}, {a.schedule}, mean over frames):")
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
