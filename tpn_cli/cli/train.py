"""`tpn train`: train a TPN into a run folder, or resume it (:mod:`tpn_cli.train`)."""
from __future__ import annotations

from pathlib import Path

import click

from ._group import cli
from .options import PATH


@cli.command()
@click.argument("task", type=click.Choice(["colour", "color", "hdr", "segment"]))
@click.argument("run_dir", type=PATH)
@click.option("--minutes", type=click.FloatRange(min=0.0), default=60.0, show_default=True,
              help="Wall-clock budget of this invocation; run the same command again to go on.")
@click.option("--set", "settings", multiple=True, metavar="KEY=JSON",
              help="Override a setting of the task's preset (tpn_cli.train.TrainConfig), "
                   "e.g. --set max_iters=4000 --set model.mode=transpose. Repeatable.")
def train(task: str, run_dir: Path, minutes: float, settings: tuple[str, ...]) -> None:
    """Train a TPN for TASK (colour, hdr, segment) into RUN_DIR, or resume it.

    Data comes from $TPN_DATA (default /work/shared/data: real clips, DAVIS, HDR stills;
    see docs/TRAINING.md for what each task uses and the licences). RUN_DIR gets
    log.txt, metrics.jsonl, a resumable last.ckpt every few minutes, and the model
    files best.tpn (best validation score) and last.tpn, usable with --weights.
    One CPU thread by default (--set threads=2).

    \b
    Example:
      tpn train colour runs/colour --minutes 90 --set max_iters=4000
      tpn train colour runs/colour --minutes 30            # continue the same run
      tpn colorize film.mp4 --keyframes keys/ --weights runs/colour/best.tpn
    """
    from ..errors import UsageError
    from ..train import fit, parse_settings, preset

    try:
        overrides = parse_settings(settings)
        cfg = preset(task, run_dir=str(run_dir), minutes=minutes, **overrides)
        fit(task, cfg)
    except ValueError as exc:  # unknown or malformed settings
        raise UsageError(str(exc), hint="see tpn_cli/train/loop.py TrainConfig for the settings") from exc
