"""Chroma up-sampling: plain bilinear vs the L-guided up-sampler, on real colour frames.

    OMP_NUM_THREADS=1 nice python scripts/eval_upsample.py --sweep          # ~15 min
    OMP_NUM_THREADS=1 nice python scripts/eval_upsample.py --timing-only
    OMP_NUM_THREADS=1 nice python scripts/eval_upsample.py --e2e 02_cups,01_dog
    OMP_NUM_THREADS=1 nice python scripts/eval_upsample.py --e2e 02_cups,01_dog \
        --e2e-halved --e2e-work 240,180

Static test: for each real frame (the Apache-2.0/MIT clips of ../shared/data/video, 3
frames each, and one frame of each DAVIS-2016 480p sequence), the true ab is taken at the
working size exactly as the network sees and outputs it (Lab of the frame shrunk by each
``--factors`` full/work), up-sampled back with each method, recombined with the frame's
own full-resolution L and compared with the frame (PSNR on 8-bit RGB, mean over frames),
over the whole frame and over the edge region (within 1 px of the 5 % strongest L
gradients of the frame). Frames are scored as decoded (4:2:0: their "true" chroma is
itself half-resolution, which bounds any method's gain) and halved (2× smaller, so the
chroma is full-resolution: the fair test). ``--sweep`` adds the radius/eps grid, the
guide computed from the shrunk frame instead of shrunk L, the residual variant and the
textbook fast guided filter output A·L + B. The last table is the up-sampling time of
one frame on one thread.

``--e2e``: `tpn colorize` (bundled weights) on the first 41 frames of real clips, made grey
with the clip's own luminance (as examples/make_example.py), key-frames 0/20/40 from the
colour original, bilinear vs guided, PSNR of the non-key frames against the original.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tpn_cli import colour as C  # noqa: E402
from tpn_cli.adapters import resize, to_float  # noqa: E402
from tpn_cli.engine import work_shape  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CLIPS = ["01_dog", "02_cups", "03_blocks", "04_coffee", "05_default_juggle", "ferris", "bedroom"]
DAVIS = ["bmx-trees", "breakdance", "camel", "car-roundabout", "car-shadow", "cows", "dog",
         "drift-chicane", "goat", "libby"]


def video_frames(path: Path, count: int, first: bool = False) -> list[np.ndarray]:
    """``count`` frames spread over the clip (never the first: it is often a fade), or
    the first ``count`` frames."""
    with av.open(str(path)) as c:
        n = c.streams.video[0].frames
        want = set(range(count)) if first else {int(n * (i + 1) / (count + 1)) for i in range(count)}
        out = []
        for i, f in enumerate(c.decode(video=0)):
            if i in want:
                out.append(f.to_ndarray(format="rgb24"))
            if len(out) == len(want):
                break
    return out


def halve(rgb: np.ndarray) -> np.ndarray:
    """2× down-scaled (antialiased): a 4:2:0 frame becomes one with full-resolution chroma."""
    t = resize(to_float(rgb), (rgb.shape[0] // 2, rgb.shape[1] // 2))
    return (t.clamp(0, 1) * 255).round().permute(1, 2, 0).numpy().astype(np.uint8)


def frame_sets(count: int) -> dict[str, list[np.ndarray]]:
    """Native frames (their chroma is 4:2:0, i.e. half resolution) and the same frames
    halved (chroma at full resolution: the honest test of edge-aware up-sampling)."""
    clips, davis = [], []
    for name in CLIPS:
        clips += video_frames(DATA / "video" / f"{name}.mp4", count)
    for seq in DAVIS:
        files = sorted((DATA / "davis16" / "JPEGImages" / "480p" / seq).glob("*.jpg"))
        davis += [np.asarray(Image.open(files[len(files) // 2]).convert("RGB"))]
    return {"clips native 720p/540p, 4:2:0": clips, "DAVIS native 854x480, 4:2:0": davis,
            "clips halved 640x360/480x270, 4:4:4": [halve(f) for f in clips],
            "DAVIS halved 427x240, 4:4:4": [halve(f) for f in davis]}


def edge_mask(L: torch.Tensor, top: float = 0.05) -> torch.Tensor:
    """(H, W) bool: within 1 px of the ``top`` fraction of strongest Sobel L gradients."""
    k = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    x = F.pad(L[None, None], (1, 1, 1, 1), mode="replicate")
    gx = F.conv2d(x, k.view(1, 1, 3, 3))
    gy = F.conv2d(x, k.t().reshape(1, 1, 3, 3))
    mag = (gx * gx + gy * gy).sqrt()
    strong = (mag >= torch.quantile(mag.flatten()[::7], 1 - top)).float()
    return F.max_pool2d(strong, 3, stride=1, padding=1)[0, 0] > 0


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    d = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = d[mask].mean() if mask is not None else d.mean()
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))


def textbook_guided(ab, L, L_small, radius=1, eps=1e-3):
    """The plain fast guided filter output mean(A)·L + mean(B) (for comparison only)."""
    g, p = (L_small / 100)[None], ab[None]
    box = lambda x: F.avg_pool2d(x, 2 * radius + 1, 1, radius, count_include_pad=False)  # noqa: E731
    mg, mp = box(g), box(p)
    a = (box(g * p) - mg * mp) / (box(g * g) - mg * mg + eps)
    b = mp - a * mg
    up = lambda x: F.interpolate(box(x), size=L.shape[-2:], mode="bilinear", align_corners=False)  # noqa: E731
    return (up(a) * (L / 100)[None] + up(b))[0]


def residual_form(ab, L, L_small, radius=1, eps=1e-2):
    """Variant: bilinear(ab) + bilinear(mean A)·(L − bilinear(L_small)) (one more up-sampling)."""
    g, p = (L_small / 100)[None], ab[None]
    box = lambda x: C._box(x, radius)  # noqa: E731
    mg, mp = box(g), box(p)
    a = box((box(g * p) - mg * mp) / (box(g * g) - mg * mg + eps))
    up = lambda x: F.interpolate(x, size=L.shape[-2:], mode="bilinear", align_corners=False)  # noqa: E731
    return (up(p) + up(a) * ((L / 100)[None] - up(g)))[0]


def methods(sweep: bool) -> dict:
    """name → fn(ab_small, L_full, L_small); "guided" is exactly what `tpn colorize` does
    (its low-res guide is L down-sampled, not recomputed from the down-sampled frame)."""
    m = {"bilinear": lambda ab, L, Ls: C.upsample_chroma(ab, L, method="bilinear"),
         "guided": lambda ab, L, Ls: C.upsample_chroma(ab, L, method="guided")}
    if sweep:
        for r, eps in ((1, 1e-3), (1, 3e-3), (1, 3e-2), (2, 1e-2)):
            m[f"r{r} eps{eps:g}"] = (lambda r, eps: lambda ab, L, Ls: C.guided_upsample(
                ab, L / 100, None, radius=r, eps=eps))(r, eps)
        m["guided, guide=L(small frame)"] = lambda ab, L, Ls: C.upsample_chroma(ab, L, Ls)
        m["residual form r1 eps1e-2"] = lambda ab, L, Ls: residual_form(ab, L, Ls)
        m["textbook FGF r1 eps1e-3"] = lambda ab, L, Ls: textbook_guided(ab, L, Ls, 1, 1e-3)
    return m


def evaluate(sets, factors, sweep):
    ms = methods(sweep)
    rows = defaultdict(lambda: defaultdict(list))  # (set, factor) → method → [(psnr, edge psnr)]
    for set_name, frames in sets.items():
        for rgb in frames:
            H, W = rgb.shape[:2]
            full = to_float(rgb)
            L = C.rgb_to_lab(full)[:1]
            mask = edge_mask(L[0]).numpy()
            for f in factors:
                work = work_shape(W, H, round(min(H, W) / f))
                lab_small = C.rgb_to_lab(resize(full, work))  # what the network sees / outputs
                for name, fn in ms.items():
                    ab = fn(lab_small[1:], L, lab_small[:1])
                    out = C.lab_to_rgb(torch.cat([L, ab]))
                    out = (out * 255).round().permute(1, 2, 0).numpy().astype(np.uint8)
                    rows[(set_name, f)][name].append((psnr(out, rgb), psnr(out, rgb, mask)))
            print(f"  {set_name}: frame {len(rows[(set_name, factors[0])]['bilinear'])} done",
                  file=sys.stderr, flush=True)
    return rows


def print_table(rows, names):
    print("| frames | full/work | n | " + " | ".join(f"{n} (all / edge)" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for (set_name, f), by in rows.items():
        base = np.array(by["bilinear"])
        cells = []
        for n in names:
            v = np.array(by[n])
            mean = v.mean(0)
            if n == "bilinear":
                cells.append(f"{mean[0]:.2f} / {mean[1]:.2f}")
            else:
                d = (v - base).mean(0)
                cells.append(f"{mean[0]:.2f} / {mean[1]:.2f} ({d[0]:+.2f} / {d[1]:+.2f})")
        print(f"| {set_name} | {f:g} | {len(base)} | " + " | ".join(cells) + " |")


def timing(repeats: int = 5):
    print("\n| output | work | bilinear ms | guided ms | rgb→Lab of the frame ms (for scale) |")
    print("|---|---|---|---|---|")
    for (H, W) in ((720, 1280), (1080, 1920), (2160, 3840)):
        h, w = work_shape(W, H, 480)
        L = torch.rand(1, H, W) * 100
        ab, Ls = torch.randn(2, h, w) * 20, torch.rand(1, h, w) * 100
        rgb = torch.rand(3, H, W)
        res = []
        for fn in (lambda: C.upsample_chroma(ab, L, Ls, "bilinear"),
                   lambda: C.upsample_chroma(ab, L, Ls, "guided"),
                   lambda: C.rgb_to_lab(rgb)):
            fn()
            t = time.perf_counter()
            for _ in range(repeats):
                fn()
            res.append(1000 * (time.perf_counter() - t) / repeats)
        print(f"| {W}x{H} | {w}x{h} | {res[0]:.0f} | {res[1]:.0f} | {res[2]:.0f} |")


def end_to_end(clip: str, frames: int, every: int, work: int, tmp: Path, halve_frames: bool,
               video: bool = False) -> dict:
    """`tpn colorize` on a grey slice of a real clip (PNG frames, lossless) with key-frames
    every ``every`` frames from the colour original: PSNR of the non-key frames against
    the original, bilinear vs guided, and the run's frames/s. Output PNG frames, or with
    ``video`` the default .mp4 (x264, 4:2:0: its chroma is half size again)."""
    from examples.make_example import luminance_grey

    src = tmp / f"{clip}_{'half' if halve_frames else 'full'}"
    if not src.exists():
        (src / "grey").mkdir(parents=True)
        (src / "keys").mkdir()
        for i, rgb in enumerate(video_frames(DATA / "video" / f"{clip}.mp4", frames, first=True)):
            rgb = halve(rgb) if halve_frames else rgb
            np.save(src / f"{i:05d}.npy", rgb)
            Image.fromarray(luminance_grey(rgb)).save(src / "grey" / f"{i:05d}.png")
            if i % every == 0:
                Image.fromarray(rgb).save(src / "keys" / f"{i:05d}.png")
    res = {}
    for method in ("bilinear", "guided"):
        out = src / f"out_{method}_{work}{'.mp4' if video else ''}"
        cmd = [sys.executable, "-m", "tpn_cli", "colorize", str(src / "grey"), "--keyframes",
               str(src / "keys"), "-o", str(out), "--mode", "nearest", "--work-size", str(work),
               "--chroma-upsample", method, "--overwrite", "--json", "-q", "--no-snap-check"]
        summary = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True,
                                            env=dict(os.environ, OMP_NUM_THREADS="1")).stdout)
        vals = []
        decoded = video_frames(out, frames, first=True) if video else None
        for i in range(frames):
            if i % every:
                truth = np.load(src / f"{i:05d}.npy")
                got = decoded[i] if video else np.asarray(Image.open(out / f"{i:05d}.png").convert("RGB"))
                vals.append((psnr(got, truth), psnr(got, truth, edge_mask(
                    C.rgb_to_lab(to_float(truth))[0]).numpy())))
        res[method] = (*np.mean(vals, 0), summary["fps"], summary["work_size"], summary["size"])
    return res


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--factors", default="1.5,2,3,4",
                   help="full size / working size (720p at work 480, 360, 240, 180)")
    p.add_argument("--frames", type=int, default=3, help="frames per video clip")
    p.add_argument("--sweep", action="store_true")
    p.add_argument("--timing-only", action="store_true")
    p.add_argument("--e2e", metavar="CLIP[,CLIP]", help="instead: tpn colorize on the first "
                   "--e2e-frames frames of these clips (e.g. 02_cups), keys every --e2e-every")
    p.add_argument("--e2e-frames", type=int, default=41)
    p.add_argument("--e2e-every", type=int, default=20)
    p.add_argument("--e2e-work", default="480,240")
    p.add_argument("--e2e-halved", action="store_true",
                   help="on the 2x-halved clip (4:4:4: full-resolution chroma) instead")
    p.add_argument("--e2e-video", action="store_true", help="output .mp4 (4:2:0) instead of PNG")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    if a.e2e:
        print("| clip | size | work | bilinear PSNR (all / edge) | guided PSNR (all / edge) | "
              "gain | frames/s bilinear / guided |")
        print("|---|---|---|---|---|---|---|")
        with tempfile.TemporaryDirectory() as tmp:
            for clip in a.e2e.split(","):
                for work in map(int, a.e2e_work.split(",")):
                    r = end_to_end(clip, a.e2e_frames, a.e2e_every, work, Path(tmp), a.e2e_halved,
                                   a.e2e_video)
                    b, g = r["bilinear"], r["guided"]
                    print(f"| {clip} | {b[4][0]}x{b[4][1]} | {b[3][0]}x{b[3][1]} | "
                          f"{b[0]:.2f} / {b[1]:.2f} | {g[0]:.2f} / {g[1]:.2f} | "
                          f"{g[0] - b[0]:+.2f} / {g[1] - b[1]:+.2f} | {b[2]:.2f} / {g[2]:.2f} |",
                          flush=True)
        return
    if not a.timing_only:
        factors = [float(f) for f in a.factors.split(",")]
        rows = evaluate(frame_sets(a.frames), factors, a.sweep)
        print("PSNR dB on 8-bit RGB (whole frame / edge region), mean over frames; "
              "(difference to bilinear)")
        print_table(rows, list(methods(a.sweep)))
    timing()


if __name__ == "__main__":
    main()
