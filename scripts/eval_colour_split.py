"""Issue 19 (colour): `tpn colorize` against the two-key flow baseline on a declared split.

    python scripts/eval_colour_split.py --set tune|heldout [--K 10,20,30,40]
        [--methods baseline,product:nearest,product:blend] [--clips a,b] --out FILE.json

A command line over tpn_eval/colour_split.py (the split, the frames, the metrics and the
methods are described there). Methods: ``baseline``, ``product:MODE[:tpn|:notpn]
[:mix=M]`` (what `tpn colorize --mode MODE` runs with the command's defaults:
plain ``product:blend`` is the default `tpn colorize`), and candidates registered in
scripts/candidates_colour.py as ``cand:NAME``. Results already in --out are kept (resume).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tpn_eval.colour_split import *  # noqa: E402,F401,F403 (scripts import these names from here)
from tpn_eval import colour_split as cs  # noqa: E402


def method_fn(name):
    if name.startswith("cand:"):
        import candidates_colour as cc
        return cc.CANDIDATES[name[5:]]
    return cs.method(name)


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--set", choices=cs.SPLITS, required=True)
    p.add_argument("--clips", help="comma-separated subset of the set's clips (names after ':')")
    p.add_argument("--K", default="10,20,30,40")
    p.add_argument("--methods", default="baseline,product:nearest,product:blend")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    Ks = [int(k) for k in a.K.split(",")]
    methods = a.methods.split(",")
    clips = cs.SPLITS[a.set]
    if a.clips:
        clips = [c for c in clips if c.split(":")[1] in a.clips.split(",")]
    out = Path(a.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    for clip in clips:
        cs.evaluate_clip(clip, Ks, methods, results, method_fn=method_fn, log=lambda m: print(m, flush=True),
                         save=lambda r: out.write_text(json.dumps(r)))


if __name__ == "__main__":
    main()
