"""Segmentation on held-out DAVIS sequences (first-frame mask only): copy, DIS flow
(direct and chained), a TPN from the first frame, the mask chain; see :mod:`tpn_eval`."""
from __future__ import annotations

import time
from typing import Any, Mapping

import numpy as np
import torch

from tpn_cli import metrics
from tpn_cli.flow import dis_flow, warp
from tpn_cli.models import load_model
from tpn_cli.models.infer import guide_to_gray
from tpn_cli.propagator import KeyPropagator

__all__ = ["segment_method", "evaluate_segment_sequence"]


def segment_method(spec: str):
    """A model (first-frame propagation) for ``PATH``, or a MaskPropagator for
    ``chain:PATH[:k=v,...]`` (``chain:none``: no TPN; MaskPropagator options as k=v, e.g.
    ``appearance=0,anchor=0,specks=0,refine=0`` for plain flow chaining)."""
    from tpn_cli.mask_tracker import MaskPropagator
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
    :class:`~tpn_cli.mask_tracker.MaskPropagator` (frame to frame). With ``stride`` > 1
    only every stride-th frame is used (a faster, harder clip). Returns {'scores': {method:
    DavisSequenceResult}, 'ms': {method: ms per frame}, 'frames': count}.
    """
    from tpn_cli.mask_tracker import MaskPropagator
    from tpn_cli.train import sources
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
