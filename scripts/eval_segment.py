"""Quick segmentation validation on held-out DAVIS sequences, from the first-frame mask:
copy the first mask / DIS flow from the first frame / DIS flow chained frame to frame /
TPN models. DAVIS J, F, J&F (first and last frame excluded).

A model given as MODEL.tpn predicts each frame from the first frame (as the paper);
``chain:MODEL.tpn`` carries the mask frame to frame with the TPN refining each
flow-warped prediction (tpn_cli.mask_tracker.MaskPropagator, with its first-frame
colour model on by default); ``chain:none`` is the same loop without a model. Options
after a second colon: ``chain:none:appearance=0,anchor=0,specks=0,refine=0`` (plain flow
chaining), ``chain:none:classifier=0,anchor=0,specks=0,refine=0`` (the chain before the mask-frame anchor),
``chain:none:classifier=0,refine=0`` (without the guided filter on the output),
``chain:none:classifier=0`` (without the first frame's pixel classifier),
``chain:MODEL.tpn:appearance=1,classifier=1,bins=32,band=15,sharpen=2,anchor=1,anchor_sigma=1``. The evaluation is tpn_eval (shared
with scripts/make_results.py, which writes docs/RESULTS.md).

    python scripts/eval_segment.py [MODEL.tpn | chain:MODEL.tpn ...] [--seqs a,b] [--stride 1]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tpn_cli import metrics  # noqa: E402
from tpn_eval import evaluate_segment_sequence as evaluate_sequence  # noqa: E402,F401
from tpn_eval import segment_method as _method  # noqa: E402
from tpn_cli.train import sources  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="*")
    p.add_argument("--seqs", default=",".join(sources.DAVIS_VAL))
    p.add_argument("--stride", type=int, default=1, help="use every n-th frame")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = {spec: _method(spec) for spec in a.models}
    per_method: dict[str, list] = {}
    for name in a.seqs.split(","):
        res = evaluate_sequence(name, models, a.stride)
        for m, r in res["scores"].items():
            per_method.setdefault(m, []).append(r)
        print(name, " ".join(f"{m}: J={r.j_mean[0]:.3f} F={r.f_mean[0]:.3f}"
                             for m, r in res["scores"].items()),
              " ms:", " ".join(f"{m}={v:.0f}" for m, v in res["ms"].items()), flush=True)
    print("ALL:")
    for m, rs in per_method.items():
        s = metrics.davis_summary(rs)
        print(f"  {m}: J&F {s['J&F-Mean']:.3f}  J {s['J-Mean']:.3f}  F {s['F-Mean']:.3f}")


if __name__ == "__main__":
    main()
