"""Key-frames with partial colour, measured on the held-out DAVIS sequences.

    python scripts/eval_partial.py [--seqs a,b] [--K 20] [--weights weights/colour-v1.tpn]
        [--configs full,object,...] [--coverage-gain 2] [--extend 4] [--json out.json]

Each sequence is turned black and white (its own L, ab = 0) and coloured by the engine
exactly as `tpn colorize` runs it (:func:`tpn_cli.engine.stream_from_keys`, the shipped model, its
working size and flow mix), from key-frames every K frames that carry the true colour,
painted as a configuration says (alpha 255 = painted, 0 = unpainted):

* ``full``: RGB keys (the reference), ``--mode nearest``;
* ``object``: only the object (the DAVIS annotation of the key's frame), nearest;
* ``background``: only the rest of the frame, nearest;
* ``full-blend``: RGB keys, ``--mode blend``;
* ``alternate``: keys painted object, background, object, ... (each pair of neighbours
  complements each other), ``--mode blend``;
* ``alternate-plain``: as ``alternate``, without the paint weights (blend weights only,
  for the record: what the alpha buys);
* ``object-nocover``, ``background-nocover``: as ``object`` and ``background``, without
  the coverage step (:meth:`tpn_cli.adapters.ColourAdapter.keep_own_colour`): for the
  record, what it buys.

Scores per non-key frame between the first and the last key (the frames that have a key
on both sides, so the blends always see both paints), averaged over all frames of all
sequences: colour PSNR (8-bit RGB, as tpn_eval) over the whole frame, inside the
object (the annotation of the frame itself: where the object's paint should have gone),
inside it away from its edge (eroded by 8 px) and in the background; and the mean chroma
√(a² + b²) of the output in the unpainted part of the frame, away from the object's edge
(the annotation eroded / dilated by 8 px), next to the truth's chroma there: 0 means the
unpainted part stayed gray.

``--coverage-gain`` and ``--extend`` set :data:`ColourAdapter.COVERAGE_GAIN` and
:data:`ColourAdapter.PAINT_EXTEND` for the run (their measurements).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tpn_cli import colour, engine, keyframes  # noqa: E402
import tpn_eval as ev  # noqa: E402
from tpn_cli.adapters import ColourAdapter  # noqa: E402
from tpn_cli.propagator import KeyPropagator  # noqa: E402
from tpn_cli.media.video import Frame  # noqa: E402
from tpn_cli.models import infer, load_model  # noqa: E402

#: configuration → (schedule, paint of the i-th key: "all", "object" or "background",
#: ablation: None, "no-paint-weights" or "no-coverage")
CONFIGS = {
    "full": ("nearest", lambda i: "all", None),
    "object": ("nearest", lambda i: "object", None),
    "object-nocover": ("nearest", lambda i: "object", "no-coverage"),
    "background": ("nearest", lambda i: "background", None),
    "background-nocover": ("nearest", lambda i: "background", "no-coverage"),
    "full-blend": ("blend", lambda i: "all", None),
    "alternate": ("blend", lambda i: "object" if i % 2 == 0 else "background", None),
    "alternate-plain": ("blend", lambda i: "object" if i % 2 == 0 else "background", "no-paint-weights"),
}
EDGE_PX = 8  # the unpainted part's chroma is measured this far from the object's edge


def gray_frame(rgb: np.ndarray) -> np.ndarray:
    """The black-and-white film of a colour frame: its own L, ab = 0."""
    L = colour.lightness_image(rgb)
    return colour.lab_image_to_rgb(L, np.zeros((*L.shape, 2), np.float32), np.uint8)


def painted_key(rgb: np.ndarray, obj: np.ndarray, paint: str) -> np.ndarray:
    """The key image: RGB when all is painted, else RGBA with alpha on ``paint``."""
    if paint == "all":
        return rgb
    alpha = obj if paint == "object" else ~obj
    return np.dstack([rgb, np.where(alpha, 255, 0).astype(np.uint8)])


class Collect:
    """A sink that keeps the output frames in memory."""

    def __init__(self) -> None:
        self.frames: dict[int, np.ndarray] = {}

    def write(self, frame: Frame, result: np.ndarray) -> None:
        self.frames[frame.index] = result


def psnr_in(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Colour PSNR (8-bit) over the pixels of ``mask`` (NaN when it is empty)."""
    if not mask.any():
        return float("nan")
    d = a[mask].astype(np.float64) - b[mask]
    return float(10 * np.log10(255.0**2 / max(np.mean(d * d), 1e-10)))


def chroma(rgb: np.ndarray) -> np.ndarray:
    """√(a² + b²) per pixel (H, W)."""
    lab = colour.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1).float()[None] / 255.0)[0]
    return lab[1:].pow(2).sum(0).sqrt().numpy()


def shrink(mask: np.ndarray, px: int) -> np.ndarray:
    """``mask`` eroded by ``px`` (a box): the part of it away from its edge."""
    import cv2

    k = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), k).astype(bool)


def run_config(truth, objs, model, K: int, config: str) -> dict[int, np.ndarray]:
    """Output frames of one configuration (the engine, as `tpn colorize` runs it)."""
    schedule, paint_of, _ = CONFIGS[config]
    n = len(truth)
    keys = ev.key_frames(n, K)
    images = {k: painted_key(truth[k], objs[k], paint_of(i)) for i, k in enumerate(keys)}
    gray = [gray_frame(f) for f in truth]
    frames = [Frame(index=i, image=g, pts=i, time=i / 25) for i, g in enumerate(gray)]
    h, w = truth[0].shape[:2]
    adapter = ColourAdapter(engine.work_shape(w, h, ColourAdapter.default_work_size), "cpu",
                            flow_mix=ColourAdapter.FLOW_MIX if infer.wants_alignment(model) else 0.0,
                            partial_keys=True)
    sink = Collect()
    with ablated(CONFIGS[config][2]):
        engine.stream_from_keys(frames=frames, assignments=keyframes.iter_plan(n, keys, schedule),
                   propagator=KeyPropagator(adapter, model), load_key=images.__getitem__, sinks=[sink],
                   key_feed=engine.KeyFrameFeed(lambda: iter(frames)), quiet=True, pipeline=False)
    return sink.frames


@contextlib.contextmanager
def ablated(what: str | None):
    """Turn one step of partial colour off for a run (the record of what it buys):
    "no-paint-weights" blends by the blend weights alone, "no-coverage" keeps the
    propagated colour outside the paint's coverage."""
    saved = infer.paint_weights, ColourAdapter.__dict__["keep_own_colour"]
    if what == "no-paint-weights":
        infer.paint_weights = lambda weights, alphas: list(weights)
    elif what == "no-coverage":
        ColourAdapter.keep_own_colour = staticmethod(lambda ab, rgb, coverage: ab)
    try:
        yield
    finally:
        infer.paint_weights, ColourAdapter.keep_own_colour = saved


def score(out: dict[int, np.ndarray], truth, objs, K: int, config: str) -> dict[str, list[float]]:
    """Per-frame scores of one configuration's outputs (non-key frames)."""
    schedule, paint_of, _ = CONFIGS[config]
    n = len(truth)
    keys = ev.key_frames(n, K)
    s: dict[str, list[float]] = defaultdict(list)
    for t in range(n):
        if t in keys or t > keys[-1]:  # key-frames are exact; after the last, one key only
            continue
        obj = objs[t]
        s["psnr"].append(psnr_in(out[t], truth[t], np.ones_like(obj)))
        s["psnr_object"].append(psnr_in(out[t], truth[t], obj))
        s["psnr_background"].append(psnr_in(out[t], truth[t], ~obj))
        s["psnr_object_inner"].append(psnr_in(out[t], truth[t], shrink(obj, EDGE_PX)))
        s["psnr_gray"].append(psnr_in(gray_frame(truth[t]), truth[t], np.ones_like(obj)))
        # unpainted part of the nearest key's paint, away from the object's edge
        nearest = min(range(len(keys)), key=lambda i: (abs(keys[i] - t), keys[i]))
        paint = paint_of(nearest)
        if schedule == "nearest" and paint != "all":
            away = shrink(~obj, EDGE_PX) if paint == "object" else shrink(obj, EDGE_PX)
            if away.any():
                s["chroma_unpainted"].append(float(chroma(out[t])[away].mean()))
                s["chroma_unpainted_truth"].append(float(chroma(truth[t])[away].mean()))
    return s


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seqs", default="bmx-trees,drift-chicane,goat,libby")
    p.add_argument("--K", type=int, default=20)
    p.add_argument("--weights", default=str(Path(__file__).resolve().parent.parent / "weights" / "colour-v1.tpn"))
    p.add_argument("--configs", default=",".join(CONFIGS))
    p.add_argument("--extend", type=int, default=ColourAdapter.PAINT_EXTEND)
    p.add_argument("--coverage-gain", type=float, default=ColourAdapter.COVERAGE_GAIN)
    p.add_argument("--json", help="write the per-frame numbers here")
    a = p.parse_args(argv)
    ColourAdapter.COVERAGE_GAIN = a.coverage_gain
    ColourAdapter.PAINT_EXTEND = a.extend
    torch.set_num_threads(1)
    from tpn_cli.train import sources

    model = load_model(a.weights)
    model.for_inference(channels_last=True)
    configs = a.configs.split(",")
    pooled: dict[str, dict[str, list[float]]] = {c: defaultdict(list) for c in configs}
    per_seq: dict[str, dict] = {}
    for name in a.seqs.split(","):
        clip = sources.davis_clip(name, with_masks=True)
        truth = [clip.read(i) for i in range(len(clip))]
        objs = [clip.read_mask(i) > 0 for i in range(len(clip))]
        per_seq[name] = {}
        for c in configs:
            with torch.inference_mode():
                s = score(run_config(truth, objs, model, a.K, c), truth, objs, a.K, c)
            per_seq[name][c] = s
            for q, v in s.items():
                pooled[c][q] += v
            print(name, c, " ".join(f"{q}={ev.mean(v):.2f}" for q, v in s.items()), flush=True)
    rows = [[c] + [ev.mean(pooled[c].get(q, [])) for q in
                   ("psnr", "psnr_object", "psnr_object_inner", "psnr_background", "chroma_unpainted",
                    "chroma_unpainted_truth")]
            for c in configs]
    print(f"\nALL ({a.seqs}, K={a.K}, mean over the non-key frames between the first and last key; gray input "
          f"{ev.mean(pooled[configs[0]]['psnr_gray']):.2f} dB):")
    print(ev.markdown_table(["keys", "PSNR all", "PSNR object", f"object > {EDGE_PX} px from its edge",
                             "PSNR background",
                             "chroma unpainted", "truth chroma there"], rows))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(per_seq, f)


if __name__ == "__main__":
    main()
