"""`tpn doctor | extract | suggest-keyframes`: the helpers around a run."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..shots import DEFAULT_THRESHOLD
from ._group import cli
from .options import PATH


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def doctor(as_json: bool) -> None:
    """Report torch, device, compiled kernels, video codecs and EXR support."""
    from ..doctor import format_report, report

    facts = report()
    click.echo(json.dumps(facts) if as_json else format_report(facts))


@cli.command()
@click.argument("input_path", metavar="INPUT", type=PATH)
@click.option("-o", "--output", type=PATH, required=True, help="Folder to create.")
@click.option("--every", type=click.IntRange(min=1), default=None,
              help="Every K-th frame (0, K, 2K, ...).")
@click.option("--frames", "frame_list", default=None, metavar="I,J,...",
              help="These frame indices (0-based), comma-separated.")
@click.option("--format", "fmt", type=click.Choice(["png", "jpg"]), default="png", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace an existing folder.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing.")
def extract(input_path: Path, output: Path, every: int | None, frame_list: str | None, fmt: str,
            overwrite: bool, quiet: bool) -> None:
    """Export frames named by their 0-based index, ready to paint as key-frames.

    Files are named 00000.png, 00030.png, ... (for a frame-folder input: the frames' own
    numbers) so that a painted frame dropped into the --keyframes folder is matched to the
    right frame without renaming.

    \b
    Example:
      tpn extract film.mp4 -o keys/ --every 30
      tpn extract film.mp4 -o keys/ --frames 0,120,300
    """
    from ..errors import BadInputError, UsageError
    from ..media import open_input
    from ..outputs import export_frames

    if (every is None) == (frame_list is None):
        raise UsageError("give exactly one of --every K or --frames I,J,...")
    wanted: set[int] | None = None
    if frame_list is not None:
        try:
            wanted = {int(x) for x in frame_list.split(",") if x.strip()}
        except ValueError as exc:
            raise UsageError(f"--frames must be comma-separated integers, not {frame_list!r}") from exc
    reader = open_input(input_path, autorotate=True)  # frames as players show them
    if not quiet:  # PNGs are sRGB: say what was converted, or could not be
        for text, kind in ((getattr(reader, "colour_note", None), "note"),
                           (getattr(reader, "colour_warning", None), "warning")):
            if text:
                click.echo(f"{kind}: {text}", err=True)
    n = reader.frame_count
    if wanted is not None and not wanted:
        raise UsageError("--frames lists no frame", hint="e.g. --frames 0,120,300")
    last = n - 1 if wanted is None else max(wanted)
    if last >= n:
        raise BadInputError(f"frame {last} is past the end ({n} frames, 0-based)", path=input_path,
                            code="FRAME_OUT_OF_RANGE", hint=f"use indices 0..{n - 1}")
    written = export_frames(reader, output, wanted if wanted is not None else (lambda i: i % every == 0),
                            fmt, overwrite)
    if not quiet:
        click.echo(f"{output}: {len(written)} frames ({', '.join(map(str, written[:10]))}"
                   f"{' ...' if len(written) > 10 else ''})", err=True)


@cli.command("suggest-keyframes")
@click.argument("input_path", metavar="INPUT", type=PATH)
@click.option("--budget", type=click.IntRange(min=1), required=True,
              help="How many key-frames you will paint.")
@click.option("--extract", "extract_dir", type=PATH, default=None,
              help="Also write the suggested frames into this new folder as PNGs named by frame "
                   "index (00000.png), ready to paint and pass to --keyframes.")
@click.option("--no-shot-detect", "shot_detect", is_flag=True, flag_value=False, default=True,
              help="Treat the whole input as one shot.")
@click.option("--cut-threshold", type=click.FloatRange(0.0, 2.0), default=DEFAULT_THRESHOLD, show_default=True,
              help="As in colorize: how different consecutive frames must be to count as a cut.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object on stdout (errors too), for scripts.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or warnings.")
@click.option("--overwrite", is_flag=True, help="Replace an existing --extract folder.")
def suggest_keyframes(input_path: Path, budget: int, extract_dir: Path | None, shot_detect: bool,
                      cut_threshold: float, as_json: bool, quiet: bool, overwrite: bool) -> None:
    """Suggest which BUDGET frames to paint as key-frames for colorize (or hdr).

    One quick pass over the lightness of INPUT (a video or a frame folder) finds the
    cuts. Every shot first gets its first frame (a shot without a key-frame of its own
    would take colour from another scene; with a budget below the number of shots, the
    longest shots get one and the others are listed). The rest of the budget goes, one
    frame at a time, where it most lowers the distance to key: how much the picture
    changes (motion, new content) between each frame and the key-frame that will feed it
    (the nearest one in its shot, as colorize's --mode nearest does), time
    counting too. So key-frames gather where the picture changes and thin out where it
    holds still. So far it does no better than evenly spaced key-frames within a shot
    (docs/what-we-tried.md, "Key-frame suggestions"); its value is that no shot is left
    without a key-frame.

    Prints the frame indices (and the shot each belongs to); --json for scripts.
    --extract DIR writes those frames as DIR/00000.png ... (for a frame-folder input,
    named by the frames' own numbers): paint them, keep the names, and pass DIR to
    --keyframes.

    \b
    Example:
      tpn suggest-keyframes film.mp4 --budget 12 --extract keys/
      tpn colorize film.mp4 --keyframes keys/      # after painting keys/*.png
    """
    from tqdm import tqdm

    from .. import shots, suggest
    from ..media import check_output_path, open_input, output_kind
    from ..errors import UsageError
    from ..outputs import export_frames, frame_name_number

    if extract_dir is not None:
        if output_kind(extract_dir) != "frames":
            raise UsageError("--extract takes a folder", path=extract_dir, hint="e.g. --extract keys/")
        check_output_path(extract_dir, overwrite=overwrite)
    reader = open_input(input_path, autorotate=True)
    total = reader.frame_count
    bar = tqdm(reader.thumbnails(*shots.THUMB_SIZE), total=total, desc="analysing", unit="frame",
               file=sys.stderr, disable=quiet or as_json or None, leave=False, dynamic_ncols=True)
    analysis = suggest.analyse(bar, shot_detect, cut_threshold)
    n = analysis.frame_count
    chosen, left_out = suggest.suggest(analysis, min(budget, n))
    keys = [c.frame for c in chosen]
    even = [round(i * n / len(keys)) for i in range(len(keys))]
    shot_list = analysis.shots
    warnings = []
    if budget > n:
        warnings.append(f"the budget {budget} is more than the {n} frames: every frame is suggested")
    if left_out:
        warnings.append(f"a budget of {budget} cannot cover the {len(shot_list)} shots: "
                        + ", ".join(str(s) for s in left_out[:10]) + (" ..." if len(left_out) > 10 else "")
                        + " get no key-frame (raise --budget to at least " + str(len(shot_list)) + ")")
    written: list[int] = []
    if extract_dir is not None:
        written = export_frames(reader, extract_dir, set(keys), "png", overwrite)
    summary = {
        "input": str(input_path), "frames": n, "budget": budget, "cuts": analysis.cuts,
        "shots": [[s.start, s.last] for s in shot_list],
        "keyframes": [{"frame": c.frame, "number": frame_name_number(reader, c.frame), "shot": c.shot,
                       "reason": c.reason} for c in chosen],
        "mean_distance_to_key": round(suggest.distance_to_keys(analysis, keys), 4),
        "evenly_spaced_distance_to_key": round(suggest.distance_to_keys(analysis, even), 4),
        "shots_without_key": [[s.start, s.last] for s in left_out],
        "extracted": str(extract_dir) if extract_dir is not None else None, "warnings": warnings,
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    if not quiet:
        for w in warnings:
            click.echo(f"warning: {w}", err=True)
    cuts = analysis.cuts
    click.echo(f"{input_path}: {n} frames, {len(shot_list)} shot{'s' if len(shot_list) > 1 else ''}"
               + (f" (cuts at {', '.join(map(str, cuts[:20]))}{' ...' if len(cuts) > 20 else ''})" if cuts else ""))
    click.echo(f"key-frames to paint ({len(chosen)}; mean distance to key {summary['mean_distance_to_key']:.3f}, "
               f"evenly spaced {summary['evenly_spaced_distance_to_key']:.3f}):")
    for c in chosen:
        why = f"start of shot ({shot_list[c.shot - 1]})" if c.reason == "shot start" else "most change from its neighbouring keys"
        number = frame_name_number(reader, c.frame)  # a frame folder's own file number
        named = f" (file number {number})" if number != c.frame else ""
        click.echo(f"  frame {c.frame:>6}  shot {c.shot:<4} {why}{named}")
    click.echo("frames: " + ",".join(map(str, keys)))
    if extract_dir is not None and not quiet:
        click.echo(f"{extract_dir}: {len(written)} frames written; paint them (keep the names), then: "
                   f"tpn colorize {input_path} --keyframes {extract_dir}", err=True)
