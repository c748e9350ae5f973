"""Tables from scripts/eval_colour_split.py's JSON: mean PSNR over the evaluated non-key
frames of a set, the gain over the two-key baseline (mean, and the worst clip), and the
temporal warping-error ratio (output / ground truth) over all pairs, at key changes
("switch") and elsewhere (tpn_eval.colour_split.summarise).

    python scripts/summarise_colour_split.py FILE.json [FILE2.json ...] [--per-clip]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tpn_eval import colour_split as cs  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+")
    p.add_argument("--per-clip", action="store_true")
    a = p.parse_args(argv)
    res = {}
    for f in a.files:
        res.update(json.load(open(f)))
    summ = cs.summarise(res)
    methods = sorted({m for _, m in summ}, key=lambda m: (m != "baseline", m))
    Ks = sorted({k for k, _ in summ})
    print("| K | method | clips | PSNR | − baseline | worst clip − baseline | WE ratio | WE switch | WE elsewhere |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for K in Ks:
        for m in methods:
            s = summ.get((K, m))
            if s:
                print(f"| {K} | {m} | {s['clips']} | {s['psnr']:.2f} | {s['gain']:+.2f} | "
                      f"{s['worst']:+.2f} ({s['worst_clip']}) | {s['we']:.3f} | {s['we_switch']:.3f} | "
                      f"{s['we_else']:.3f} |")
    if a.per_clip:
        print()
        by = cs.group(res)
        clips = sorted({c for recs in by.values() for c in recs})
        print("| K | method | " + " | ".join(c.split(":")[1] for c in clips) + " |")
        print("|---|---|" + "---:|" * len(clips))
        for K in Ks:
            for m in methods:
                recs = by.get((K, m), {})
                if recs:
                    cells = [f"{np.mean(list(recs[c]['psnr'].values())):.2f}" if c in recs else "" for c in clips]
                    print(f"| {K} | {m} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
