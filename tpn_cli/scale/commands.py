"""The command-line side of :mod:`tpn_cli.scale`: the ``--engine`` options of
``tpn colorize`` / ``tpn hdr`` and the ``tpn batch`` command (registered by
:mod:`tpn_cli.cli`)."""
from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["ENGINE_OPTIONS", "batch", "engine_options"]

#: The option names engine_options adds (taken out of the run's Options by the CLI).
ENGINE_OPTIONS = ("engine", "ray_address", "workers", "segment_frames")

_ENGINE_HELP = ("local: this process (the default, no extra dependency); ray: segments on a "
                "Ray cluster (pip install \"tpn[ray]\"): --ray-address or $RAY_ADDRESS, else a "
                "Ray started on this machine for the run.")


def _ray_options():
    return [
        click.option("--ray-address", default=None, metavar="ADDRESS",
                     help="Ray cluster to join (ray://host:10001 or host:6379); default "
                          "$RAY_ADDRESS, else a local Ray for the run."),
        click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Ray workers (one model each), at most one per CPU of the cluster (per GPU "
                          "with --device cuda), which is the default."),
        click.option("--segment-frames", type=click.IntRange(min=0), default=300, show_default=True,
                     help="About how many frames one Ray worker computes at a time (cut where "
                          "the key-frames change); 0 = one segment per file."),
    ]


def engine_options(f):
    """``--engine local|ray`` and the Ray options, for tpn colorize and tpn hdr."""
    for o in reversed([click.option("--engine", type=click.Choice(["local", "ray"]), default="local",
                                    show_default=True, help=_ENGINE_HELP), *_ray_options()]):
        f = o(f)
    return f


def run_with_engine(run, engine: str, ray_address, workers, segment_frames) -> dict:
    """Execute a prepared run with the chosen engine; returns its ``--json`` summary."""
    if engine == "local":
        return run.execute()
    from .batch import run_on_ray

    return run_on_ray(run, address=ray_address, workers=workers, segment_frames=segment_frames,
                      quiet=run.opts.quiet)


def check_engine(engine: str) -> None:
    """Fail before any work when ``--engine ray`` cannot run (Ray not installed: exit 2)."""
    if engine == "ray":
        from .ray_engine import import_ray

        import_ray()


@click.command()
@click.argument("jobs_file", metavar="JOBS.csv|JOBS.jsonl", type=click.Path(path_type=Path))
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: one job after the other in this process; ray: every job's segments "
                   "spread over a Ray cluster's workers (pip install \"tpn[ray]\").")
@click.option("--overwrite", is_flag=True, help="Redo jobs whose output exists (default: skip them).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar; the summary only.")
def batch(jobs_file: Path, engine: str, overwrite: bool, as_json: bool, quiet: bool, **ray_kw) -> None:
    """Run the jobs of a job list: many files, locally or on a Ray cluster.

    JOBS is a CSV file with a header row, or JSON Lines, with the columns input, task
    (colorize, hdr or segment), keys (key-frame folder, HDR key folder or first mask),
    output (optional) and options (optional: the command's own options as typed, e.g.
    "--mode blend --work-size 240"; in JSON Lines also an object {"mode": "blend"}).
    Relative paths are taken from the job list's folder.

    A job whose output exists is skipped (--overwrite redoes it); a failing job does not
    stop the others. On Ray, colour and HDR files are cut into segments (see
    --segment-frames) that run on any worker, masks run one file per worker, a worker
    that dies is restarted and its segment run again, and an output appears only when
    complete. The run ends with a summary: done, skipped, failed with the reason.

    Exit codes: 0 every job done or skipped, 7 some jobs failed (the summary lists
    them), 2 an unusable job list or --engine ray without Ray installed.

    \b
    Example (jobs.csv):
      input,task,keys,output,options
      reel1.mp4,colorize,reel1_keys/,reel1_color.mp4,--mode blend
      reel2.mp4,colorize,reel2_keys/,reel2_color.mp4,
      tpn batch jobs.csv --engine ray --ray-address ray://head:10001
    """
    from .batch import run_batch

    ctx = click.get_current_context()
    summary, code = run_batch(jobs_file, engine=engine, overwrite=overwrite, quiet=quiet or as_json,
                              address=ray_kw["ray_address"], workers=ray_kw["workers"],
                              segment_frames=ray_kw["segment_frames"])
    if as_json:
        click.echo(json.dumps(summary))
    elif not quiet or code:
        for r in summary["jobs"]:
            why = f": {r['reason']}" if r["reason"] else ""
            click.echo(f"{r['status']:8s} {r['input']} -> {r['output']}{why}", err=True)
        click.echo(f"{summary['done']} done, {summary['skipped']} skipped, {summary['failed']} failed "
                   f"in {summary['seconds']:.1f} s ({engine})", err=True)
    ctx.exit(code)


for _o in reversed(_ray_options()):
    batch = _o(batch)
