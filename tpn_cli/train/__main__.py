"""python -m tpn_cli.train TASK RUN_DIR [--minutes M] [--set key=JSON ...]: the same as
``tpn train`` (see its --help), usable without the console script."""
from __future__ import annotations

import argparse

from . import fit, parse_settings, preset


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m tpn_cli.train")
    p.add_argument("task", choices=["colour", "color", "hdr", "segment"])
    p.add_argument("run_dir")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                   help="override a setting, e.g. --set align=false --set model.scale=2")
    a = p.parse_args(argv)
    fit(a.task, preset(a.task, run_dir=a.run_dir, minutes=a.minutes, **parse_settings(a.set)))


if __name__ == "__main__":
    main()
