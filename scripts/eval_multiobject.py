"""Segmentation check on the multi-object clips of ../shared/data/multiobject (footage the
segment TPN was not trained on): caps (87 frames, masks at 0/14/33/43/66; object 2
appears at 33) and cutie/judo (16 frames, masks at 0/5/8/13, each holding only the
object that appears there, as YouTube-VOS / Cutie annotations do).

Each object is propagated from the first mask that holds it (the chain started there with
that whole mask, as `tpn segment --masks` restarts) and scored on the later annotated
frames that hold it: J, F (:func:`tpn_cli.metrics.evaluate_davis_sequence`, no frame
excluded), J&F the mean over the (clip, object) tracks. Objects never annotated again
(judo's) cannot be scored and are listed as such. Methods as scripts/eval_segment.py
(``chain:none``, ``chain:MODEL.tpn[:k=v,...]``):

    python scripts/eval_multiobject.py chain:none chain:weights/segment-v1.tpn [--clips caps,judo]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tpn_cli import metrics  # noqa: E402
from tpn_eval import segment_method  # noqa: E402
from tpn_cli.media.masks import read_mask  # noqa: E402
from tpn_cli.train.sources import DATA_ROOT  # noqa: E402

ROOT = DATA_ROOT / "multiobject"
#: clip → (frames folder, masks folder)
CLIPS = {"caps": (ROOT / "caps" / "JPEGImages", ROOT / "caps" / "Annotations"),
         "judo": (ROOT / "cutie" / "images" / "judo", ROOT / "cutie" / "masks" / "judo")}


def load_clip(name: str) -> tuple[list[Path], dict[int, np.ndarray]]:
    """Frame paths in order and {frame index: id map} of the clip's annotated frames."""
    img_dir, mask_dir = CLIPS[name]
    frames = sorted(img_dir.glob("*.jpg"))
    index = {p.stem: i for i, p in enumerate(frames)}
    masks = {index[p.stem]: read_mask(p).ids for p in sorted(mask_dir.glob("*.png"))}
    return frames, masks


def runs(masks: dict[int, np.ndarray]) -> list[tuple[int, list[int], list[int]]]:
    """(start frame, objects first annotated there, later annotated frames holding one of
    them) for every mask that introduces an object scored later."""
    out, seen = [], set()
    for s in sorted(masks):
        new = sorted(set(np.unique(masks[s]).tolist()) - {0} - seen)
        seen |= set(new)
        later = [t for t in sorted(masks) if t > s and any((masks[t] == o).any() for o in new)]
        if new and later:
            out.append((s, new, later))
    return out


def _rgb01(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float() / 255.0


@torch.no_grad()
def evaluate_clip(name: str, methods: dict) -> dict:
    """{'scores': {method: [DavisSequenceResult per scored object]}, 'ms': {method: ms a
    frame}, 'unscored': objects never annotated again}."""
    frames, masks = load_clip(name)
    scores = {m: [] for m in methods}
    secs, steps = {m: 0.0 for m in methods}, 0
    for s, objects, later in runs(masks):
        ids0 = masks[s]
        u0 = torch.from_numpy(np.stack([ids0 == k for k in range(int(ids0.max()) + 1)]).astype(np.float32))
        preds = {m: {} for m in methods}
        for m, prop in methods.items():
            prop.start(_rgb01(frames[s]), u0)
        for t in range(s + 1, later[-1] + 1):
            rgb = _rgb01(frames[t])
            steps += 1
            for m, prop in methods.items():
                t0 = time.perf_counter()
                out = prop.step(rgb)
                secs[m] += time.perf_counter() - t0
                if t in later:
                    preds[m][t] = out.argmax(0).numpy()
        for o in objects:
            ts = [t for t in later if (masks[t] == o).any()]
            gt = np.stack([masks[t] == o for t in ts]).astype(np.uint8)
            for m in methods:
                p = np.stack([preds[m][t] == o for t in ts]).astype(np.uint8)
                scores[m].append(metrics.evaluate_davis_sequence(p, gt, n_objects=1, exclude_first_last=False))
    unscored = sorted(set().union(*(set(np.unique(v).tolist()) for v in masks.values())) - {0}
                      - {o for _, objs, _ in runs(masks) for o in objs})
    return {"scores": scores, "ms": {m: 1000 * v / max(1, steps) for m, v in secs.items()},
            "unscored": unscored}


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="+", help="chain:none, chain:MODEL.tpn[:k=v,...]")
    p.add_argument("--clips", default=",".join(CLIPS))
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    methods = {spec: segment_method(spec) for spec in a.models}
    per_method: dict[str, list] = {m: [] for m in methods}
    for name in a.clips.split(","):
        res = evaluate_clip(name, methods)
        for m, rs in res["scores"].items():
            per_method[m] += rs
            print(name, m, "J&F per object:", " ".join(f"{r.JF:.3f}" for r in rs),
                  f"ms={res['ms'][m]:.0f}", flush=True)
        if res["unscored"]:
            print(name, "objects never annotated after their first mask (not scored):", res["unscored"])
    print("ALL:")
    for m, rs in per_method.items():
        if rs:
            s = metrics.davis_summary(rs)
            print(f"  {m}: J&F {s['J&F-Mean']:.3f}  J {s['J-Mean']:.3f}  F {s['F-Mean']:.3f}  ({len(rs)} objects)")


if __name__ == "__main__":
    main()
