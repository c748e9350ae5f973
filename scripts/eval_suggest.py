"""Suggested key-frames (`tpn suggest-keyframes`) against evenly spaced ones, same budget.

    python scripts/eval_suggest.py [--stride 2] [--cache FILE] [--json]

Clips: the 4 held-out DAVIS-2016 sequences alone (one shot each), and 3 clips made by
joining DAVIS sequences end to end (hard cuts between them). For each budget N, key-frames
are (a) suggested (tpn_cli.suggest, from the clip's luminance only), (b) the same
procedure with the change between frames ignored (shot starts, then time alone: evenly
spread within shots), (c) evenly spaced (round(i·n/N), i = 0..N-1). All run through the
plan `tpn colorize` uses: nearest key-frame within the frame's shot, shots from the
detector (tpn_cli.shots). A last row, (d) evenly spaced without shot detection, is the
behaviour before shots existed.

Scores over the non-key frames (every ``stride``-th): colour PSNR of the DIS optical-flow
baseline (the key-frame's ab warped to the frame by flow computed on L, 8-bit RGB rebuilt
with the frame's own L: tpn_eval), of copying the key-frame's ab, and the mean
distance to key that the suggestions minimise (tpn_cli.suggest.distance_to_keys).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tpn_eval as ev  # noqa: E402
from tpn_cli import shots, suggest  # noqa: E402
from tpn_cli.keyframes import plan  # noqa: E402
from tpn_cli.media import gray_thumbnail  # noqa: E402
from tpn_cli.train import sources  # noqa: E402

SINGLE = ["bmx-trees", "drift-chicane", "goat", "libby"]
JOINED = [["bmx-trees", "goat", "libby"], ["breakdance", "camel", "car-roundabout", "dog"],
          ["cows", "drift-chicane", "car-shadow"]]


def joined_clip(names: list[str]) -> sources.Clip:
    frames = [f for n in names for f in sources.davis_clip(n).frames]
    return sources.Clip("+".join(names), frames)


def budgets(shot_count: int) -> list[int]:
    return [shot_count + 2, shot_count + 5, shot_count + 10] if shot_count > 1 else [3, 5, 8]


def evaluate_clip(clip: sources.Clip, stride: int, cache: dict) -> dict:
    """Scores of every key-frame choice on one clip; ``cache`` holds the per-pair PSNRs
    ({clip: {"t,k": {"flow", "copy"}}}), reused and filled."""
    n = len(clip)
    analysis = suggest.analyse((i, gray_thumbnail(clip.read(i), *shots.THUMB_SIZE)) for i in range(n))
    timeless = suggest.Analysis(np.zeros_like(analysis.change), analysis.cuts)
    out = {"clip": clip.name, "frames": n, "cuts": analysis.cuts, "rows": []}
    plans = {}
    for N in budgets(len(analysis.shots)):
        chosen = [c.frame for c in suggest.suggest(analysis, N)[0]]
        by_time = [c.frame for c in suggest.suggest(timeless, N)[0]]
        even = sorted({round(i * n / N) for i in range(N)})
        for method, keys, cuts in (("suggested", chosen, analysis.cuts),
                                   ("shot starts + time only", by_time, analysis.cuts),
                                   ("even", even, analysis.cuts), ("even, no shots", even, [])):
            frames = [a for a in plan(n, keys, "nearest", cuts=cuts) if a.frame not in set(keys)]
            plans[(N, method)] = ([(a.frame, a.key) for a in frames if a.frame % stride == 0], keys, cuts)
    pairs = sorted({p for ps, _, _ in plans.values() for p in ps})
    known = cache.setdefault(clip.name, {})
    todo = [p for p in pairs if f"{p[0]},{p[1]}" not in known]
    for r in ev.evaluate_colour_pairs(clip, todo, {}):
        known[f"{r.t},{r.k}"] = {"flow": r.psnr["flow"], "copy": r.psnr["copy"]}
    res = {p: known[f"{p[0]},{p[1]}"] for p in pairs}
    for (N, method), (ps, keys, cuts) in plans.items():
        a = suggest.Analysis(analysis.change, cuts)
        out["rows"].append({
            "budget": N, "method": method, "keys": keys,
            "flow_psnr": float(np.mean([res[p]["flow"] for p in ps])),
            "copy_psnr": float(np.mean([res[p]["copy"] for p in ps])),
            "distance_to_key": suggest.distance_to_keys(a, keys),
        })
    return out


def table(results: list[dict]) -> str:
    lines = ["| clip | cuts found | budget | keys | flow PSNR | copy PSNR | distance to key |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        for row in r["rows"]:
            lines.append(f"| {r['clip']} ({r['frames']}) | {r['cuts'] or '-'} | {row['budget']} | {row['method']} "
                         f"| {row['flow_psnr']:.2f} | {row['copy_psnr']:.2f} | {row['distance_to_key']:.3f} |")
    means = {}
    for r in results:
        for row in r["rows"]:
            key = ("one shot" if not r["cuts"] else "joined", row["method"])
            means.setdefault(key, []).append((row["flow_psnr"], row["copy_psnr"], row["distance_to_key"]))
    lines += ["", "| clips | keys | mean flow PSNR | mean copy PSNR | mean distance to key |", "|---|---|---|---|---|"]
    for (kind, method), v in means.items():
        m = np.mean(v, axis=0)
        lines.append(f"| {kind} | {method} | {m[0]:.2f} | {m[1]:.2f} | {m[2]:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stride", type=int, default=2, help="Score every STRIDE-th frame.")
    ap.add_argument("--cache", type=Path, default=None,
                    help="JSON file of per-pair PSNRs, reused and updated (flow is the slow part).")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cache = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    clips = [sources.davis_clip(n) for n in SINGLE] + [joined_clip(j) for j in JOINED]
    results = []
    for c in clips:
        results.append(evaluate_clip(c, args.stride, cache))
        if args.cache:
            args.cache.write_text(json.dumps(cache))
        print(f"{c.name}: done", file=sys.stderr)
    print(json.dumps(results) if args.json else table(results))


if __name__ == "__main__":
    main()
