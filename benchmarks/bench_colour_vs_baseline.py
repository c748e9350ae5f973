"""The default `tpn colorize` end to end against the two-key flow baseline's prediction
step (issue 19's speed bar), in one run on the same frames.

    python benchmarks/bench_colour_vs_baseline.py [--frames 41] [--every 20] [--rounds 3]
        [--size 854x480] [--threads 2]

* product: ``tpn colorize CLIP --keyframes KEYS`` with every default (``--mode blend``,
  colour-v1), in a fresh process, decoding and encoding included; its run time (the
  ``--json`` summary's seconds: model loading and start-up excluded) per predicted frame.
* baseline: the prediction step of scripts/baselines_colour.two_key on the same decoded
  frames (per frame: its L and ab, two DIS MEDIUM flows at full size, two warps, the
  per-pixel weights), in this process with OpenCV and torch on ``--threads`` threads;
  time per predicted frame. Decoding and encoding are not counted for it.

Predicted frames = the clip's frames that are not key-frames (key-frames cost the
baseline nothing). Rounds alternate baseline and product, so load from other jobs hits
both alike; the table gives each round and the median ratio.

The clip is cut from /work/shared/data/video/01_dog.mp4 as benchmarks/bench_run.py cuts
it; key-frames are its own frames every ``--every`` from 0 (the last frame too).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))

import tpn_cli  # noqa: E402,F401  (first: tpn's allocator settings before torch loads)

import cv2  # noqa: E402
import torch  # noqa: E402

import baselines_colour as bc  # noqa: E402
import bench_run  # noqa: E402
from tpn_cli.keyframes import plan  # noqa: E402


def baseline_seconds(frames: dict, n: int, keys: list[int]) -> float:
    """Wall seconds of the two-key baseline's prediction step over the clip's non-key
    frames (each frame's L/ab and the keys' are computed inside; keys once)."""
    t0 = time.perf_counter()
    key_frames = {k: bc.Frame(frames[k]) for k in keys}
    for a in plan(n, keys, "blend"):
        if a.frame in keys:
            continue
        tgt = bc.Frame(frames[a.frame])
        bc.two_key(tgt, a.frame, [(k, key_frames[k]) for k, _ in a.sources])
    return time.perf_counter() - t0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=41)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--size", default="854x480")
    p.add_argument("--threads", type=int, default=2, help="baseline's OpenCV and torch threads")
    p.add_argument("--extra", default="", help="extra tpn colorize options (space-separated)")
    a = p.parse_args(argv)
    w, h = (int(x) for x in a.size.split("x"))
    cv2.setNumThreads(a.threads)
    torch.set_num_threads(a.threads)
    keys = sorted(set(range(0, a.frames, a.every)) | {a.frames - 1})
    predicted = a.frames - len(keys)
    with tempfile.TemporaryDirectory(prefix="tpn_bench_cb_") as d:
        tmp = Path(d)
        clip = bench_run.make_clip(tmp / "clip.mp4", (w, h), a.frames)
        key_dir = bench_run.colour_keys(clip, tmp / "keys", keys)
        frames = bench_run.frames_of(clip, range(a.frames))
        rows = []
        for r in range(a.rounds):
            base = baseline_seconds(frames, a.frames, keys)
            prod = bench_run.run_command("colorize", clip, key_dir, None, tmp / "out.mp4", tmp,
                                         extra=a.extra.split(), timing=False)
            rows.append((1000 * base / predicted, 1000 * prod["seconds"] / predicted))
            print(f"round {r + 1}: baseline {rows[-1][0]:.0f} ms/frame, tpn colorize "
                  f"{rows[-1][1]:.0f} ms/frame, ratio {rows[-1][1] / rows[-1][0]:.2f}", flush=True)
    print(f"\n{w}x{h}, {a.frames} frames, keys every {a.every} ({predicted} predicted frames), "
          f"baseline on {a.threads} threads, {a.rounds} rounds interleaved")
    print("| | baseline prediction step ms/frame | tpn colorize end to end ms/frame | tpn ÷ baseline |")
    print("|---|---:|---:|---:|")
    for i, (b, t) in enumerate(rows):
        print(f"| round {i + 1} | {b:.0f} | {t:.0f} | {t / b:.2f} |")
    print(f"| median | {statistics.median(b for b, _ in rows):.0f} | "
          f"{statistics.median(t for _, t in rows):.0f} | {statistics.median(t / b for b, t in rows):.2f} |")


if __name__ == "__main__":
    main()
