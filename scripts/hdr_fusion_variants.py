"""HDR (issue 19, phase 3): variants of `tpn hdr`'s per-channel fusion on the pseudo-videos
of scripts/hdr_twokey.py, each key's alignment flow computed once per frame and reused.

    PYTHONPATH=. python scripts/hdr_fusion_variants.py --split tune --setting standard \
        --seeds 2 --frames 41 [--variants a,b] [--images A,B]
    PYTHONPATH=. python scripts/hdr_fusion_variants.py --split tune --setting hard \
        --seeds 1 --frames 21

Every variant warps each neighbouring key's FULL-resolution log radiance with the product's
alignment flow (DIS at the working size, tpn_cli.models.infer.alignment_flow, resized) and
fuses it with the frame's f⁻¹ as tpn_cli.hdr_fusion.fuse_keys does, with one change each
(VARIANTS). Scores: log-RMSE and PU21-PSNR (tpn_cli.metrics), mean over non-key frames;
per still the log-RMSE. Results in docs/what-we-tried.md, "HDR: keys warped at full
resolution".
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import hdr_twokey as hk  # noqa: E402
import tpn_eval as ev  # noqa: E402
from tpn_cli import camera_response, hdr_fusion, metrics  # noqa: E402
from tpn_cli.camera_response import VARIANCE_FLOOR  # noqa: E402
from tpn_cli.engine import work_shape  # noqa: E402
from tpn_cli.flow import warp_planes  # noqa: E402
from tpn_cli.models import infer  # noqa: E402
from tpn_cli.train.hdr_video import HDR_ROOT, read_hdr  # noqa: E402

#: name → fuse() keywords. outside: None (no out-of-frame handling), ("cut", m): a key
#: gets × 1e4 variance where its source is > m px outside its frame, ("soft", s):
#: × (1 + (d / s)²); frame_fallback: the frame-wide mean of a key's error where no box
#: holds unclipped values; dist: × (|t − k| + 1); clip_dist: the same only where a channel
#: clips; sharpen: each key's variance × its ratio to the two keys' mean.
VARIANTS = {
    "full_res": {},
    "cut0": {"outside": ("cut", 0)},
    "cut8": {"outside": ("cut", 8)},
    "soft8": {"outside": ("soft", 8)},
    "soft16": {"outside": ("soft", 16)},
    "frame_fallback": {"frame_fallback": True},
    "dist": {"dist": True},
    "soft8_clip_dist": {"outside": ("soft", 8), "clip_dist": True},
    "soft8_sharpen": {"outside": ("soft", 8), "sharpen": True},
    "soft8_r0_2_8": {"outside": ("soft", 8), "radii": (0, 2, 8)},
    "soft8_r1_4_16": {"outside": ("soft", 8), "radii": (1, 4, 16)},
    "soft8_r1_2_8_32": {"outside": ("soft", 8), "radii": (1, 2, 8, 32)},
    "soft8_r1_4_16_64": {"outside": ("soft", 8), "radii": (1, 4, 16, 64)},  # shipped
    "soft8_r2_8_32": {"outside": ("soft", 8), "radii": (2, 8, 32)},
    "soft8_r8_32_128": {"outside": ("soft", 8), "radii": (8, 32, 128)},
}


def planes(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x).transpose(2, 0, 1))


def key_variance(u_key, u_table, vt, unclipped, counts, frame_fallback: bool) -> np.ndarray:
    """tpn_cli.hdr_fusion.key_variance, optionally with the frame-wide mean as the last
    fallback (instead of the widest box, which may hold no unclipped value)."""
    d = (u_key - u_table) ** 2 - vt
    d *= unclipped
    d2 = d[0] + d[1] + d[2]
    out = None
    if frame_fallback and unclipped.sum() > 0:
        out = np.full(d2.shape, max(float(d2.sum()) / float(unclipped.sum()), VARIANCE_FLOOR), np.float32)
    for r in sorted(counts, reverse=True):
        v = hdr_fusion._box(d2, r) / np.maximum(counts[r], 1e-3)
        np.maximum(v, VARIANCE_FLOOR, out=v)
        out = v if out is None else np.where(counts[r] > 0.5, v, out)
    return out


def fuse(levels, u_table, var_table, floor, u_keys, outside, dists, radii=(4, 16, 64),
         outside_rule=None, frame_fallback=False, dist=False, clip_dist=False, sharpen=False):
    """tpn_cli.hdr_fusion.fuse_keys with the variant's change (VARIANTS)."""
    clipped = levels >= 255
    vt = np.where(clipped, np.float32(hdr_fusion.NO_WEIGHT), var_table).astype(np.float32)
    unclipped = (levels < hdr_fusion.UNCLIPPED_CODE).astype(np.float32)
    counts = {r: hdr_fusion._box(unclipped.sum(0), r) for r in radii}
    any_clip = clipped.any(0)
    vs = []
    for u_k, o, d in zip(u_keys, outside, dists):
        v = key_variance(u_k, u_table, vt, unclipped, counts, frame_fallback)
        if dist:
            v = v * d
        if clip_dist:
            v = np.where(any_clip, v * d, v)
        if outside_rule is not None:
            kind, s = outside_rule
            v = np.where(o > s, v * 1e4, v) if kind == "cut" else v * (1 + (o / s) ** 2)
        vs.append(v)
    if sharpen and len(vs) == 2:
        m = (vs[0] + vs[1]) / 2
        vs = [v * v / m for v in vs]
    num, den = u_table / vt, 1.0 / vt
    for u_k, v in zip(u_keys, vs):
        num, den = num + u_k / v, den + 1 / v
    u = num / den
    return np.where(clipped, np.maximum(u, floor[:, None, None]), u)


def run(split: str, setting: str, seeds: int, frames: int, variants: dict, images=None, log=print):
    acc: dict = {}
    for name, rel in hk.SPLIT[split].items():
        if images and name not in images:
            continue
        image = read_hdr(HDR_ROOT / rel)
        for seed in range(seeds):
            t0 = time.time()
            clip = hk.Clip(*hk.make_clip(name, seed, frames, image, setting))
            H, W = clip.codes[0].shape[:2]
            work = work_shape(W, H, 480)
            # the product's alignment gray: the 8-bit frame at the working size (HdrAdapter.guide)
            from tpn_cli.adapters import HdrAdapter
            guide = HdrAdapter(work, "cpu").guide
            grays = [infer.guide_to_gray(guide(c)) for c in clip.codes]
            flows: dict = {}
            for K in (10, 20):
                keys = ev.key_frames(frames, K)
                r = camera_response.fit((clip.codes[k], clip.hdr[k]) for k in keys)
                u_full = {k: np.log(planes(clip.hdr[k]) + 0.01).astype(np.float32) for k in keys}
                for t in range(frames):
                    if t in keys:
                        continue
                    ks, code = hk.neighbours(t, keys), clip.codes[t]
                    lv, ut, vt = planes(camera_response.levels(code)), planes(r.log_radiance(code)), planes(r.variance(code))
                    u_keys, outside = [], []
                    for k in ks:
                        if (t, k) not in flows:
                            flows[(t, k)] = infer.alignment_flow(grays[t], grays[k])
                        u, o = warp_planes(u_full[k], flows[(t, k)])
                        u_keys.append(u)
                        outside.append(o)
                    dists = [abs(t - k) + 1 for k in ks]
                    gt = torch.from_numpy(clip.hdr[t].transpose(2, 0, 1))[None].double()
                    for vn, kw in variants.items():
                        kw = dict(kw)
                        rule = kw.pop("outside", None)
                        u = fuse(lv, ut, vt, r.log_table[:, 254], u_keys, outside, dists, outside_rule=rule, **kw)
                        p = torch.from_numpy(np.exp(u))[None].double() - 0.01
                        acc.setdefault((K, vn), []).append(
                            (float(metrics.log_rmse(p, gt)[0]), float(metrics.pu21_psnr(p, gt)[0]), name))
            log(f"{name} seed {seed}: {time.time() - t0:.0f} s")
    return acc


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--split", default="tune", choices=sorted(hk.SPLIT))
    p.add_argument("--setting", default="standard", choices=sorted(ev.HDR_SETTINGS))
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--frames", type=int, default=41)
    p.add_argument("--variants", default=None, help="comma-separated names of VARIANTS (default all)")
    p.add_argument("--images", default=None)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    variants = {k: v for k, v in VARIANTS.items() if not a.variants or k in a.variants.split(",")}
    acc = run(a.split, a.setting, a.seeds, a.frames, variants, a.images.split(",") if a.images else None)
    print(f"\n{a.split}, setting {a.setting}, {a.seeds} seed(s), {a.frames} frames: log-RMSE / PU21-PSNR; per still log-RMSE")
    for (K, vn), v in sorted(acc.items()):
        per: dict = {}
        for lr, _, n in v:
            per.setdefault(n, []).append(lr)
        print(f"K={K} {vn:18s} {np.mean([x[0] for x in v]):.4f} / {np.mean([x[1] for x in v]):.2f}  "
              + " ".join(f"{n}={np.mean(x):.4f}" for n, x in per.items()))


if __name__ == "__main__":
    main()
