"""Quick segmentation validation on held-out DAVIS sequences, from the first-frame mask:
copy the first mask / DIS flow chained frame to frame / TPN models. DAVIS J, F, J&F
(first and last frame excluded).

A model given as MODEL.tpn predicts each frame from the first frame (as the paper);
``chain:MODEL.tpn`` carries the mask frame to frame with the TPN refining each
flow-warped prediction (tpn_cli.models.segment.MaskPropagator); ``chain:none`` is the
same loop without a model (flow chaining through the propagator). Options after a
second colon: ``chain:MODEL.tpn:sharpen=2``.

    python scripts/eval_segment.py [MODEL.tpn | chain:MODEL.tpn ...] [--seqs a,b]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from tpn_cli import metrics
from tpn_cli.flow import dis_flow, warp
from tpn_cli.models import load_model, predict
from tpn_cli.models.infer import guide_to_gray
from tpn_cli.models.segment import MaskPropagator
from tpn_cli.train import sources


def _rgb(clip, i) -> torch.Tensor:
    return torch.from_numpy(clip.read(i)).permute(2, 0, 1).float() / 255.0


@torch.no_grad()
def evaluate_sequence(name: str, models: dict) -> dict:
    """Per-method predicted id maps (T, H, W) and ms per frame for one sequence."""
    clip = sources.davis_clip(name, with_masks=True)
    n = len(clip)
    gt = np.stack([clip.read_mask(i) for i in range(n)])
    v0 = _rgb(clip, 0)
    u0 = torch.from_numpy(np.stack([gt[0] == 0, gt[0] > 0]).astype(np.float32))
    preds = {m: [gt[0]] for m in ["copy", "flow_chain", *models]}
    times = {m: 0.0 for m in preds}
    chain, v_prev = u0.permute(1, 2, 0).numpy(), v0
    props = {}
    for m, model in models.items():
        if isinstance(model, MaskPropagator):
            props[m] = model
            model.start(v0, u0)
    for t in range(1, n):
        v_t = _rgb(clip, t)
        preds["copy"].append(gt[0])
        t0 = time.time()
        chain = warp(chain, dis_flow(guide_to_gray(v_t), guide_to_gray(v_prev)))
        times["flow_chain"] += time.time() - t0
        preds["flow_chain"].append(chain.argmax(-1).astype(np.uint8))
        for m, model in models.items():
            t0 = time.time()
            if m in props:
                out = props[m].step(v_t)[None]
            else:
                out = predict(model, u0[None], v0[None], v_t[None])
            times[m] += time.time() - t0
            preds[m].append(out[0].argmax(0).numpy().astype(np.uint8))
        v_prev = v_t
    scores = {m: metrics.evaluate_davis_sequence(np.stack(p), gt, n_objects=1) for m, p in preds.items()}
    return {"scores": scores, "ms": {m: 1000 * s / (n - 1) for m, s in times.items()}}


def _method(spec: str):
    """A model (first-frame propagation) or a MaskPropagator for ``chain:PATH[:k=v,...]``."""
    if not spec.startswith("chain:"):
        return load_model(spec)
    path, _, opts = spec[len("chain:"):].partition(":")
    kw = {}
    for item in filter(None, opts.split(",")):
        k, _, v = item.partition("=")
        kw[k] = v if k == "preset" else float(v)
    return MaskPropagator(None if path == "none" else load_model(path), **kw)


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="*")
    p.add_argument("--seqs", default=",".join(sources.DAVIS_VAL))
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = {spec: _method(spec) for spec in a.models}
    per_method: dict[str, list] = {}
    for name in a.seqs.split(","):
        res = evaluate_sequence(name, models)
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
