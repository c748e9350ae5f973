"""One long clip through `tpn colorize` with --engine local and --engine ray (1 and 2
workers), measured in one run on this machine; prints a table of wall times, ratios and
the per-segment overhead, and how much the joined video differs from the local one.

The clip: tests/data/dog_2997_audio.mp4 (12 frames, 160×90, AAC audio) looped to
``--frames`` frames (default 600), encoded with a key picture every 30 frames (so
segments are entered by seeking); colour key-frames every ``--every`` frames are the
clip's own frames; the bundled colour model, the commands' defaults otherwise.

Each engine runs the same prepared plan into a fresh output (an H.264 .mp4 with the
input's audio, as users write it). The Ray runs use a local Ray started once before the
timings (as a cluster would already be running); their wall time includes starting the
workers (loading torch and the model in each), splitting, and joining the chunks.

Overheads, from the run with 1 worker: per segment, (the worker's time inside its
segments - the local run's wall) / segments (each segment's key-frames prepared again,
seeking, a chunk encoder; the first segment also loads the model); per run, the wall
time outside the segments (starting the worker process, planning, joining the chunks).

Usage: python benchmarks/bench_ray.py [--frames 600] [--every 30] [--segment-frames 100]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tpn_cli.media import VideoReader, VideoWriter, write_image  # noqa: E402
from tpn_cli.runs import Options, check_and_plan  # noqa: E402

DOG = ROOT / "tests" / "data" / "dog_2997_audio.mp4"


def make_clip(folder: Path, frames: int, every: int) -> tuple[Path, Path]:
    """The looped clip (key picture every 30 frames) and its colour key-frames."""
    src = [f.image for f in VideoReader(DOG).frames()]
    # back and forth, so the loop has no cut every 12 frames (shot detection would split it)
    cycle = src + src[-2:0:-1]
    clip = folder / "long.mp4"
    with VideoWriter(clip, width=160, height=90, fps=Fraction(30000, 1001), crf=12,
                     preset="ultrafast", options={"g": "30"}) as w:
        for i in range(frames):
            w.write(cycle[i % len(cycle)])
    keys = folder / "keys"
    keys.mkdir()
    for i in range(0, frames, every):
        write_image(keys / f"{i:05d}.png", cycle[i % len(cycle)])
    return clip, keys


def run_once(clip: Path, keys: Path, out: Path, engine: str, workers: int, segment_frames: int) -> dict:
    opts = Options(task="colour", input=clip, keys=keys, output=out, quiet=True)
    run = check_and_plan(opts)
    t0 = time.perf_counter()
    if engine == "local":
        summary = run.execute()
    else:
        from tpn_cli.scale.batch import run_on_ray

        summary = run_on_ray(run, address=None, workers=workers, segment_frames=segment_frames, quiet=True)
    summary["wall"] = time.perf_counter() - t0
    return summary


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--every", type=int, default=30, help="key-frame spacing")
    ap.add_argument("--segment-frames", type=int, default=100)
    args = ap.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        clip, keys = make_clip(d, args.frames, args.every)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 object_store_memory=200 * 2**20,
                 runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
        try:
            rows = [("local", 1), ("ray", 1), ("ray", 2)]
            results = {}
            for engine, workers in rows:
                out = d / f"{engine}{workers}.mp4"
                results[engine, workers] = run_once(clip, keys, out, engine, workers, args.segment_frames)
        finally:
            ray.shutdown()
        local = results["local", 1]["wall"]
        print(f"clip: {args.frames} frames 160x90, key-frames every {args.every}, "
              f"--segment-frames {args.segment_frames}, {os.cpu_count()} CPUs")
        print(f"{'engine':<10}{'workers':>8}{'segments':>9}{'wall s':>9}{'frames/s':>10}{'vs local':>10}")
        for (engine, workers), s in results.items():
            n = len(s.get("segments", [])) or 1
            print(f"{engine:<10}{workers:>8}{n:>9}{s['wall']:>9.1f}{s['frames'] / s['wall']:>10.1f}"
                  f"{local / s['wall']:>9.2f}x")
        one = results["ray", 1]
        segs = one["segments"]
        work = sum(g["seconds"] for g in segs)  # the worker's time inside its segments
        print(f"ray, 1 worker: {len(segs)} segments, {work:.1f} s inside them "
              f"(local: {local:.1f} s for the same frames)")
        print(f"  per-segment overhead (time inside segments - local) / segments: "
              f"{(work - local) / len(segs):.2f} s (key-frames prepared again, seeking, one "
              f"chunk encoder each; the first also loads the model)")
        print(f"  fixed overhead per run (wall - time inside segments): {one['wall'] - work:.1f} s "
              f"(starting the worker process and torch, planning, joining the chunks)")
        # the joined video against the local one: separate encodes per chunk (own IDR, rate
        # control restarting) -> encoding noise only, largest at the joins
        a = [f.image for f in VideoReader(d / "local1.mp4").frames()]
        b = [f.image for f in VideoReader(d / "ray2.mp4").frames()]
        starts = {g["start"] for g in results["ray", 2]["segments"]} - {0}
        p = [psnr(x, y) for x, y in zip(a, b)]
        at = [p[i] for i in sorted(starts)]
        print(f"joined video vs local (x264 crf 16): {len(b)}/{len(a)} frames, PSNR mean "
              f"{np.mean(p):.1f} dB, min {min(p):.1f} dB, at the {len(at)} joins "
              f"{np.mean(at) if at else float('nan'):.1f} dB")


if __name__ == "__main__":
    main()
