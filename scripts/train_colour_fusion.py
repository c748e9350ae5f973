"""Train the colour key fusion (tpn_cli/colour_fusion.py) on frames of real clips.

    python scripts/train_colour_fusion.py --work runs/fusion [--samples 120] [--epochs 40]
        [--out weights/colour-fusion-v1.tpn]

1. Samples (cached per clip in WORK/samples_{train,val}_CLIP.npz; delete to rebuild): for each clip (train
   clips read at a random frame stride of TRAIN_STRIDES), random key-frame pairs k0 < k1 at a distance K drawn from DISTANCES and a frame t between them
   (a share ONE_KEY_SHARE of samples has one key only, t beyond it); both keys warped into
   t exactly as `tpn colorize` does (flow.key_flow on the 8-bit L, the key's Lab warped),
   the fusion's features at the feature size, and at that size the ground-truth ab, the
   two warped keys' ab and the fill of the issue's baseline blend (the colour the fusion
   falls back on where it is not confident). PIXELS random pixels of each sample are kept
   (the network is per pixel; its features hold the spatial context).
2. Training: mean squared ab error of c·(w0·ab0 + (1 − w0)·ab1) + (1 − c)·fill, Adam;
   a checkpoint after every epoch (WORK/checkpoint.pt, resumed from), the log in
   WORK/train.log, the best epoch on the validation clips written to --out.

Train clips: the permissive ones of shared/data/video (as colour-v1); validation: the
issue-19 tuning clips (DAVIS). The held-out clips of scripts/eval_colour_split.py are
never read here.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tpn_cli import colour, fill, flow  # noqa: E402
from tpn_cli import colour_fusion as cf  # noqa: E402
import eval_colour_split as ev  # noqa: E402

TRAIN = ["01_dog", "02_cups", "03_blocks", "04_coffee", "05_default_juggle", "bedroom", "ferris", "v39"]
VAL = [c.split(":")[1] for c in ev.SPLITS["tune"]]
DISTANCES = (5, 10, 15, 20, 30, 40, 60)
ONE_KEY_SHARE = 0.15
PIXELS = 20000
SHORT_SIDE = 480  # frames are shrunk to it: the key flows run at most at this size anyway


def clip_frames(name: str) -> list[np.ndarray]:
    if name in VAL:
        frames = ev.load_clip(f"davis:{name}", max_frames=10_000)
    else:
        frames = ev.load_clip(f"video:{name}", max_frames=10_000)
    h, w = frames[0].shape[:2]
    s = SHORT_SIDE / min(h, w)
    if s < 1:
        size = (round(w * s), round(h * s))
        frames = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames]
    return frames


class Lab:
    """A frame's L (0..100), ab (2, H, W), 8-bit L, as the colour adapter has them."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.L = colour.lightness_image(rgb)
        self.ab = colour.ab_image(rgb).transpose(2, 0, 1).copy()
        self.gray = np.clip(np.rint(self.L * 2.55), 0, 255).astype(np.uint8)
        self.lab = np.concatenate([self.L[..., None], self.ab.transpose(1, 2, 0)], axis=2)


def warp_key(tgt: Lab, key: Lab, distance: float) -> cf.KeyWarp:
    """``key`` moved into ``tgt`` as ColourAdapter.flow_prediction moves it."""
    f = flow.key_flow(tgt.gray, key.gray)
    w = flow.warp(key.lab, f)
    return cf.KeyWarp(w[..., 1:3].transpose(2, 0, 1).copy(), w[..., 0] * 2.55, f, distance)


def baseline_fill(tgt: Lab, t: int, keys: list[tuple[int, cf.KeyWarp]]) -> np.ndarray:
    """The issue's blend of the warped keys (fit / (|t − k| + 1)), filled where no key
    fits (the flow part `tpn colorize` shipped before the fusion): (2, H, W)."""
    g = tgt.gray.astype(np.float32)
    fits = [np.exp(-cv2.blur(np.abs(k.gray - g), (9, 9), borderType=cv2.BORDER_REPLICATE) / 8.0)
            for _, k in keys]
    raw = [f / (abs(t - i) + 1.0) for f, (i, _) in zip(fits, keys)]
    ab = sum(r[None] * k.ab for r, (_, k) in zip(raw, keys)) / np.maximum(sum(raw), 1e-12)[None]
    best = np.max(np.stack(fits), axis=0)
    out = fill.fill_unfit(torch.from_numpy(ab.astype(np.float32)), torch.from_numpy(best),
                          torch.from_numpy(tgt.L))
    return out.numpy()


def sample(frames: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """One sample: (C, PIXELS) float16, channels f0, f1, shared, ab0, ab1, fill, truth."""
    n = len(frames)
    K = int(rng.choice([d for d in DISTANCES if d < n - 1] or [n - 2]))
    if rng.random() < ONE_KEY_SHARE:
        k = int(rng.integers(0, n))
        d = int(rng.integers(1, K + 1))
        t = k + d if k + d < n else k - d
        if not 0 <= t < n:
            t = min(n - 1, max(0, k + 1 if k + 1 < n else k - 1))
        pairs = [k]
    else:
        k0 = int(rng.integers(0, n - K))
        t = int(rng.integers(k0 + 1, k0 + K))
        pairs = [k0, k0 + K]
    tgt = Lab(frames[t])
    keys = [(k, warp_key(tgt, Lab(frames[k]), abs(t - k))) for k in pairs]
    H, W = tgt.L.shape
    size = cf.feature_size(H, W)
    g = tgt.gray.astype(np.float32)
    warps = [k for _, k in keys]
    f0 = cf.key_features(g, warps[0], size)
    f1 = cf.key_features(g, warps[1], size) if len(warps) == 2 else np.zeros_like(f0)
    sh = cf.shared_features(g, warps, size)

    def small(ab):  # (2, H, W) → (2, h, w)
        return cf._shrink(ab.transpose(1, 2, 0), size).transpose(2, 0, 1)

    ab0 = small(warps[0].ab)
    ab1 = small(warps[1].ab) if len(warps) == 2 else np.zeros_like(ab0)
    planes = np.concatenate([f0, f1, sh, ab0, ab1, small(baseline_fill(tgt, t, keys)), small(tgt.ab)])
    flat = planes.reshape(planes.shape[0], -1)
    pick = rng.choice(flat.shape[1], size=min(PIXELS, flat.shape[1]), replace=False)
    return flat[:, pick].astype(np.float16)


#: Training clips are read at a frame stride drawn from these: the permissive clips move
#: slowly, and at stride 1 choosing between two warped keys barely matters there (the
#: per-pixel oracle choice is 2 % below the baseline's error on them, 30 % on the DAVIS
#: validation clips); every 2nd to 4th frame makes their motion that of real footage.
TRAIN_STRIDES = (1, 2, 3, 4)


def clip_samples(job: tuple) -> np.ndarray:
    """``per_clip`` samples of one clip, cached in ``path`` (a restart reuses it)."""
    clip, per_clip, seed, strides, path = job
    if path.exists():
        return np.load(path)["data"]
    rng = np.random.default_rng([seed, sum(map(ord, clip))])
    frames = clip_frames(clip)
    out = []
    for _ in range(per_clip):
        s = int(rng.choice(strides))
        start = int(rng.integers(0, s))
        out.append(sample(frames[start::s], rng))
    data = np.concatenate(out, axis=1)
    tmp = path.with_name(path.stem + ".part.npz")
    np.savez(tmp, data=data)
    tmp.replace(path)
    return data


def build(clips: list[str], per_clip: int, seed: int, log, strides, work: Path, name: str,
          processes: int) -> np.ndarray:
    """The samples of ``clips``, a clip per process (each clip's cached in ``work``)."""
    from multiprocessing import get_context

    jobs = [(c, per_clip, seed, strides, work / f"samples_{name}_{c}.npz") for c in clips]
    t0 = time.time()
    with get_context("spawn").Pool(processes) as pool:
        parts = []
        for clip, data in zip(clips, pool.imap(clip_samples, jobs)):
            parts.append(data)
            log(f"samples {name} {clip}: {data.shape[1]} pixels ({time.time() - t0:.0f} s)")
    return np.concatenate(parts, axis=1)


KF, SF = cf.KEY_FEATURES, cf.SHARED_FEATURES


def split(data: torch.Tensor):
    """(N, C) → f0, f1, shared (N, C_part) and ab0, ab1, fill, truth (N, 2)."""
    x = data.float()
    return x.split([KF, KF, SF, 2, 2, 2, 2], dim=1)


def loss_of(net, data: torch.Tensor) -> torch.Tensor:
    f0, f1, sh, ab0, ab1, fl, truth = split(data)
    w0, c = net(f0, f1, sh)
    pred = c * (w0 * ab0 + (1 - w0) * ab1) + (1 - c) * fl
    return ((pred - truth) ** 2).sum(1).mean()


def baseline_mse(data: torch.Tensor) -> float:
    *_, fl, truth = split(data)
    return float(((fl - truth) ** 2).sum(1).mean())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("runs/fusion"))
    p.add_argument("--samples", type=int, default=120, help="per train clip (val: a quarter)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch", type=int, default=16384)
    p.add_argument("--epoch-pixels", type=int, default=3_000_000,
                   help="pixels drawn (without replacement) for each epoch")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--processes", type=int, default=2, help="clips sampled in parallel")
    p.add_argument("--out", type=Path, default=Path("weights/colour-fusion-v1.tpn"))
    a = p.parse_args(argv)
    a.work.mkdir(parents=True, exist_ok=True)
    logf = open(a.work / "train.log", "a")

    def log(msg):
        line = f"{time.strftime('%H:%M:%S')} {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    sets = {}
    for name, clips, per, seed, strides in (("train", TRAIN, a.samples, 1, TRAIN_STRIDES),
                                            ("val", VAL, max(8, a.samples // 4), 2, (1,))):
        data = build(clips, per, seed, log, strides, a.work, name, a.processes)
        sets[name] = torch.from_numpy(np.ascontiguousarray(data.T))  # (pixels, C)
        log(f"{name}: {sets[name].shape[0]} pixels")
    train, val = sets["train"], sets["val"]
    torch.manual_seed(0)
    net = cf.FusionNet(a.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs)
    ckpt = a.work / "checkpoint.pt"
    start, best = 0, (float("inf"), -1)
    if ckpt.exists():
        s = torch.load(ckpt, weights_only=False)
        net.load_state_dict(s["net"]), opt.load_state_dict(s["opt"]), sched.load_state_dict(s["sched"])
        start, best = s["epoch"] + 1, tuple(s["best"])
        log(f"resumed after epoch {s['epoch']}")
    log(f"val mse of the baseline fill: {baseline_mse(val):.3f}")
    n = train.shape[0]
    for epoch in range(start, a.epochs):
        net.train()
        perm = torch.randperm(n)[:a.epoch_pixels]
        m = len(perm)
        total = 0.0
        for i in range(0, m, a.batch):
            loss = loss_of(net, train[perm[i:i + a.batch]])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * min(a.batch, m - i)
        sched.step()
        net.eval()
        with torch.no_grad():
            v = float(sum(loss_of(net, val[j:j + 65536]) * min(65536, val.shape[0] - j)
                          for j in range(0, val.shape[0], 65536)) / val.shape[0])
        if v < best[0]:
            best = (v, epoch)
            cf.save_fusion(net, a.out, meta={
                "epoch": epoch, "val_mse": round(v, 4), "train_clips": TRAIN, "val_clips": VAL,
                "distances": DISTANCES, "samples_per_clip": a.samples})
        torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "epoch": epoch, "best": list(best)}, ckpt)
        log(f"epoch {epoch}: train mse {total / m:.3f} val mse {v:.3f} (best {best[0]:.3f} @ {best[1]})")
    log(json.dumps({"best_val_mse": best[0], "epoch": best[1], "out": str(a.out)}))


if __name__ == "__main__":
    main()
