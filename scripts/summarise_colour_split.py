"""Tables from scripts/eval_colour_split.py's JSON: mean PSNR over the evaluated non-key
frames of a set, the gain over the two-key baseline (mean, and the worst clip), and the
temporal warping-error ratio (output / ground truth) over all pairs, at key changes
("switch") and elsewhere.

    python scripts/summarise_colour_split.py FILE.json [FILE2.json ...] [--per-clip]
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict

import numpy as np


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+")
    p.add_argument("--per-clip", action="store_true")
    a = p.parse_args(argv)
    res = {}
    for f in a.files:
        res.update(json.load(open(f)))
    by = defaultdict(dict)  # (K, method) -> clip -> record
    for key, r in res.items():
        clip, K, m = key.split("|")
        by[(int(K), m)][clip] = r
    methods = sorted({m for _, m in by}, key=lambda m: (m != "baseline", m))
    print("| K | method | clips | PSNR | − baseline | worst clip − baseline | WE ratio | WE switch | WE elsewhere |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for K in sorted({k for k, _ in by}):
        base = by.get((K, "baseline"), {})
        for m in methods:
            recs = by.get((K, m))
            if not recs:
                continue
            ps = [v for r in recs.values() for v in r["psnr"].values()]
            common = [c for c in recs if c in base]
            d = [np.mean(list(recs[c]["psnr"].values())) - np.mean(list(base[c]["psnr"].values()))
                 for c in common]
            # mean over the same frames as the baseline's (clips both have)
            pb = [v for c in common for v in base[c]["psnr"].values()]
            pm = [v for c in common for v in recs[c]["psnr"].values()]
            gain = np.mean(pm) - np.mean(pb) if pb else float("nan")
            worst = min(d) if d else float("nan")
            worst_c = common[int(np.argmin(d))].split(":")[1] if d else ""

            def ratio(sel):
                o = sum(r["we"][t] for r in recs.values() for t in r["we"] if sel(r, t))
                g = sum(r["gt_we"][t] for r in recs.values() for t in r["we"] if sel(r, t))
                return o / g if g else float("nan")
            print(f"| {K} | {m} | {len(recs)} | {np.mean(ps):.2f} | {gain:+.2f} | {worst:+.2f} ({worst_c}) | "
                  f"{ratio(lambda r, t: True):.3f} | {ratio(lambda r, t: r['switch'][t]):.3f} | "
                  f"{ratio(lambda r, t: not r['switch'][t]):.3f} |")
    if a.per_clip:
        print()
        clips = sorted({c for recs in by.values() for c in recs})
        print("| K | method | " + " | ".join(c.split(":")[1] for c in clips) + " |")
        print("|---|---|" + "---:|" * len(clips))
        for K in sorted({k for k, _ in by}):
            for m in methods:
                recs = by.get((K, m), {})
                if recs:
                    cells = [f"{np.mean(list(recs[c]['psnr'].values())):.2f}" if c in recs else "" for c in clips]
                    print(f"| {K} | {m} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
