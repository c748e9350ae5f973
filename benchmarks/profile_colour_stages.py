"""Where the CPU of a default `tpn colorize` frame goes, piece by piece (flows, network,
fill, conversions, encoding), on the clip of benchmarks/bench_colour_vs_baseline.py.

    python benchmarks/profile_colour_stages.py [--frames 41] [--every 20] [--size 854x480]
        [--json OUT]

The CLI runs in this process with ``--no-pipeline --threads 1`` (OpenCV on 1 thread too)
and each piece's function is wrapped to add up its thread CPU time (``time.thread_time``,
so other jobs on the machine count little), exclusive of the wrapped pieces it calls:
a row is that function's own work. The full-size DIS flows run in their two pool threads
and are counted there. Not counted: x264's and the decoder's own threads (FFmpeg's; see
docs/what-we-tried.md for the encoder's share). Printed per predicted (non-key) frame.
"""
from __future__ import annotations

import argparse
import collections
import functools
import inspect
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import tpn_cli  # noqa: E402,F401  (first: tpn's allocator settings before torch loads)

import cv2  # noqa: E402

import bench_run  # noqa: E402
from tpn_cli import adapters, colour, fill, flow, outputs, propagator  # noqa: E402
from tpn_cli.media import video  # noqa: E402
from tpn_cli.models import infer  # noqa: E402

#: (owner, attribute, row label): the pieces timed
PIECES = [
    (video.VideoReader, "_to_rgb", "decode: YUV → RGB (swscale)"),
    (colour, "lightness_image", "frame L (full size)"),
    (adapters, "resize", "resize to the work size (L, keys)"),
    (infer, "guide_to_gray", "8-bit gray at the work size"),
    (adapters.ColourAdapter, "_gray", "8-bit gray at the flow size"),
    (infer, "alignment_flow", "flow: alignment DIS (work size)"),
    (infer, "warp", "flow: alignment warp"),
    (infer, "alignment_confidence", "alignment confidence (blend weights, hold-back)"),
    (propagator.KeyPropagator, "network", "network (+ hold-back)"),
    (colour, "upsample_chroma", "guided chroma up-sampling"),
    (flow, "baseline_flow", "flow: full-size DIS (two threads)"),
    (flow, "warp", "flow: full-size warp"),
    (adapters.ColourAdapter, "key_fit", "flow: key fit"),
    (adapters.ColourAdapter, "flow_prediction", "flow: flow-part blend (rest)"),
    (fill, "edge_gates", "fill: gates"),
    (fill, "spread", "fill: scans"),
    (fill, "fill_unfit", "fill: rest (shrink, enlarge, compose)"),
    (adapters.ColourAdapter, "mix_flow", "TPN / flow mix"),
    (colour, "chroma_image_to_rgb", "luma + chroma → RGB"),
    (outputs.VideoSink, "write", "encode: RGB → YUV, x264 call"),
    (adapters.ColourAdapter, "prepare_key", "key-frames"),
    (adapters.ColourAdapter, "finish", "finish (rest)"),
    (propagator.KeyPropagator, "prepare_frame", "prepare (rest)"),
]

_total: collections.Counter = collections.Counter()
_local = threading.local()


def _timed_call(label, fn, *args, **kwargs):
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    now = time.thread_time()
    if stack:  # pause the caller's piece
        _total[stack[-1][0]] += now - stack[-1][1]
    stack.append([label, now])
    try:
        return fn(*args, **kwargs)
    finally:
        end = time.thread_time()
        name, t0 = stack.pop()
        _total[name] += end - t0
        if stack:
            stack[-1][1] = end


def _wrap(owner, attr: str, label: str) -> None:
    raw = inspect.getattr_static(owner, attr) if isinstance(owner, type) else getattr(owner, attr)
    if isinstance(raw, (staticmethod, classmethod)):
        fn = raw.__func__
        kind = type(raw)
        setattr(owner, attr, kind(functools.wraps(fn)(lambda *a, **k: _timed_call(label, fn, *a, **k))))
        return
    fn = getattr(owner, attr)
    setattr(owner, attr, functools.wraps(fn)(lambda *a, **k: _timed_call(label, fn, *a, **k)))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=41)
    p.add_argument("--every", type=int, default=20)
    p.add_argument("--size", default="854x480")
    p.add_argument("--json", help="also write {row: ms} here")
    a = p.parse_args(argv)
    w, h = (int(x) for x in a.size.split("x"))
    keys = sorted(set(range(0, a.frames, a.every)) | {a.frames - 1})
    predicted = a.frames - len(keys)
    cv2.setNumThreads(1)
    for owner, attr, label in PIECES:
        _wrap(owner, attr, label)
    from tpn_cli.cli._group import cli

    with tempfile.TemporaryDirectory(prefix="tpn_prof_") as d:
        tmp = Path(d)
        clip = bench_run.make_clip(tmp / "clip.mp4", (w, h), a.frames)
        key_dir = bench_run.colour_keys(clip, tmp / "keys", keys)
        _total.clear()
        try:
            cli.main(["colorize", str(clip), "--keyframes", str(key_dir), "-o", str(tmp / "out.mp4"),
                      "-q", "--no-pipeline", "--threads", "1"], prog_name="tpn")
        except SystemExit as exc:
            if exc.code:
                raise
    rows = {label: 1000 * s / predicted for label, s in _total.most_common()}
    print(f"{w}x{h}, {a.frames} frames, keys every {a.every}: CPU ms per predicted frame")
    print("| piece | CPU ms |\n|---|---:|")
    for label, ms in rows.items():
        print(f"| {label} | {ms:.1f} |")
    print(f"| total (Python threads) | {sum(rows.values()):.1f} |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
