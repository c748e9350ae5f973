"""python -m tpn_cli.train TASK RUN_DIR [--minutes M] [--set key=value ...] (JSON values)."""
from __future__ import annotations

import argparse
import json

from . import preset, run


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m tpn_cli.train")
    p.add_argument("task", choices=["colour", "color", "hdr", "segment"])
    p.add_argument("run_dir")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="override a setting, e.g. --set align=false --set model.scale=2")
    a = p.parse_args(argv)
    overrides: dict = {"run_dir": a.run_dir, "minutes": a.minutes, "model": {}}
    for item in a.set:
        key, _, value = item.partition("=")
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            pass  # a bare string
        if key.startswith("model."):
            overrides["model"][key[6:]] = value
        else:
            overrides[key] = value
    run(a.task, preset(a.task, **overrides))


if __name__ == "__main__":
    main()
