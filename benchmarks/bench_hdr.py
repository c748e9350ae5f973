"""Speed of the default `tpn hdr` against issue 19's two-key baseline, on the same frames
in one run.

  * `tpn hdr CLIP --hdr-keys KEYS -o out_exr/` with its defaults (both neighbouring keys'
    alignment flows at the working size, each key's radiance warped at full size,
    per-channel fusion with the frame's f⁻¹, no network), end to end in a fresh process: decode, key-frames, alignment, fusion, EXR
    writing; ms per output frame from its own --json summary (``--tpn`` adds the same
    with the HDR TPN);
  * the two-key baseline's prediction step only (what issue 19 compares against): for
    each frame, two DIS flows (MEDIUM, full resolution, 8-bit gray) to its neighbouring
    keys, two warps, the exp(−e/8)/(|t − k| + 1) blend and the f⁻¹ fill
    (:func:`tpn_eval.two_key_flow`), frames already decoded; no writing.

Clip: /work/shared/data/video/01_dog.mp4 scaled to 854×480 (and 1920×1080 with
``--sizes 480,1080``); HDR key-frames every ``--every`` frames as bench_run.py makes them.
Threads: whatever both get by default on this machine (the same for both).

Usage: python benchmarks/bench_hdr.py [--frames 31] [--every 10] [--sizes 480] [--tpn]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import tpn_cli  # noqa: E402,F401  (first: tpn's allocator settings before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench_run import _LAUNCH, _env, frames_of, hdr_keys, make_clip  # noqa: E402


def run_hdr(clip: Path, keys: Path, out: Path, extra: list[str]) -> dict:
    """One default `tpn hdr` run in a fresh process; its --json summary."""
    import json
    import subprocess

    args = [sys.executable, "-c", _LAUNCH, "hdr", str(clip), "--hdr-keys", str(keys), "-o", str(out),
            "--overwrite", "--json", "-q", *extra]
    r = subprocess.run(args, capture_output=True, text=True, env=_env(), cwd=ROOT)
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"tpn hdr failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return json.loads(lines[-1])

SIZES = {480: (854, 480), 720: (1280, 720), 1080: (1920, 1080)}


def baseline_ms(clip: Path, keys: Path, key_indices: list[int], n: int) -> float:
    """ms per non-key frame of the two-key baseline's prediction step (module doc)."""
    from tpn_cli import colour
    from tpn_eval import HDR_SAT_LEVEL, two_key_flow
    from tpn_cli.keyframes import plan
    from tpn_cli.media.hdr import read_hdr_image
    from tpn_cli.models.infer import guide_to_gray

    frames = frames_of(clip, range(n))
    hdr = {k: read_hdr_image(keys / f"{k:05d}.exr") for k in key_indices}
    to_gray = lambda img: guide_to_gray(torch.from_numpy(img).permute(2, 0, 1).float() / 255.0)  # noqa: E731
    key_grays = {k: to_gray(frames[k]) for k in key_indices}
    total, count = 0.0, 0
    for a in plan(n, key_indices, "blend"):
        if a.frame in hdr:
            continue
        t0 = time.perf_counter()
        grays = dict(key_grays)
        grays[a.frame] = to_gray(frames[a.frame])
        ks = [k for k, _ in a.sources]
        warped = two_key_flow(hdr, grays, a.frame, ks)
        ldr = torch.from_numpy(frames[a.frame].astype(np.float32) / 255.0)
        sat = ldr.amax(-1, keepdim=True) >= HDR_SAT_LEVEL
        out = torch.where(sat, torch.from_numpy(warped), colour.inverse_camera_curve(ldr))
        assert out.shape == ldr.shape
        total += time.perf_counter() - t0
        count += 1
    return 1000.0 * total / max(count, 1)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=31)
    p.add_argument("--every", type=int, default=10, help="a key-frame every N frames")
    p.add_argument("--sizes", default="480", help="comma-separated: 480, 720, 1080")
    p.add_argument("--tpn", action="store_true", help="also time `tpn hdr --tpn`")
    a = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for s in (int(x) for x in a.sizes.split(",")):
            clip = make_clip(tmp / f"clip_{s}.mp4", SIZES[s], a.frames)
            key_indices = list(range(0, a.frames, a.every))
            keys = hdr_keys(clip, tmp / f"keys_{s}", key_indices)
            runs = {"tpn hdr (default)": []}
            if a.tpn:
                runs["tpn hdr --tpn"] = ["--tpn"]
            res = {}
            for label, extra in runs.items():
                summary = run_hdr(clip, keys, tmp / f"out_{s}", extra)
                res[label] = 1000.0 * summary["seconds"] / summary["frames"]
            base = baseline_ms(clip, keys, key_indices, a.frames)
            for label, ms in res.items():
                rows.append((f"{SIZES[s][0]}×{SIZES[s][1]}", label, ms, base, ms / base))
    print(f"{a.frames} frames, a key every {a.every}; torch threads {torch.get_num_threads()}\n")
    print("| frames | command | ms/frame (end to end) | two-key baseline prediction ms/frame | ratio |")
    print("|---|---|---:|---:|---:|")
    for size, label, ms, base, ratio in rows:
        print(f"| {size} | {label} | {ms:.0f} | {base:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
