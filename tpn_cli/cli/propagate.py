"""`tpn colorize | hdr | segment` (and `tpn batch`, :mod:`tpn_cli.scale`): parse the options into :class:`tpn_cli.runs.Options`,
check and plan (:mod:`tpn_cli.runs`), print the ``--dry-run`` plan or run and summarise."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..scale.commands import ENGINE_OPTIONS, batch, check_engine, engine_options, run_with_engine
from ._group import cli
from .options import PATH, common_options, shot_options, video_options


def _start(task: str, input_path: Path, keys: Path, kw: dict) -> None:
    """Build the options, check and plan, then dry-run or execute."""
    from ..runs import Options, check_and_plan

    as_json, dry = kw.pop("as_json"), kw.pop("dry_run")
    engine = {k: kw.pop(k) for k in ENGINE_OPTIONS if k in kw} or {"engine": "local"}
    check_engine(engine["engine"])
    kw["index_base"] = int(kw["index_base"])
    opts = Options(task=task, input=input_path, keys=keys, **kw)
    run = check_and_plan(opts)
    if not opts.quiet and not as_json:
        for note in run.notes:
            click.echo(f"note: {note}", err=True)
        for w in run.warnings:
            click.echo(f"warning: {w}", err=True)
    if dry:
        plan = run.describe()
        if as_json:
            click.echo(json.dumps(plan))
        else:
            click.echo(_format_plan(plan))
        return
    printed = len(run.notes)
    summary = run_with_engine(run, **{"ray_address": None, "workers": None, "segment_frames": 0, **engine})
    if as_json:
        click.echo(json.dumps(summary))
    elif not opts.quiet:
        for w in summary["warnings"][len(run.warnings):] + summary["notes"][printed:]:
            click.echo(f"warning: {w}", err=True)
        shots = f"; {len(summary['cuts']) + 1} shots" if summary.get("cuts") else ""
        click.echo(f"{summary['output']}: {summary['frames']} frames in {summary['seconds']:.1f} s "
                   f"({summary['fps']:.1f} frames/s, {summary['device']}, peak "
                   f"{summary['peak_memory_mb']:.0f} MB{shots})", err=True)


def _weights_line(p: dict) -> str:
    if p["weights_error"]:
        return "NOT AVAILABLE: " + p["weights_error"].splitlines()[0]
    if not p["uses_model"]:
        return "none used (no TPN; --tpn adds it)" if p["command"] != "segment" else \
            "none used (--no-tpn: the chain without the segment TPN)"
    return p["weights"] or "NOT AVAILABLE: " + (p["weights_error"] or "").splitlines()[0]


def _shots_line(p: dict) -> str:
    cuts = p["cuts"]
    line = f"shots     {len(cuts) + 1}" + (f" (cuts at {', '.join(map(str, cuts[:20]))}"
                                          f"{' ...' if len(cuts) > 20 else ''})" if cuts else " (no cut found)")
    if p["shots_without_key"]:
        line += f"; {len(p['shots_without_key'])} without a key-frame (see the warnings)"
    return line


def _format_plan(p: dict) -> str:
    lines = [
        f"input     {p['input']}: {p['video_frames']} frames, {p['size'][0]}x{p['size'][1]}, "
        f"{p['video_fps']:.3f} fps",
        f"frames    {p['frame_range'][0]}-{p['frame_range'][1]} ({p['frames']} frames)",
        f"keys      {len(p['keyframes'])}: " + ", ".join(str(k["index"]) for k in p["keyframes"][:20])
        + (" ..." if len(p["keyframes"]) > 20 else ""),
        *([_shots_line(p)] if "cuts" in p and p["shot_detect"] else []),
        f"mode      {p['mode']}",
        *(f"          {line}" for line in p["plan"]),
        f"work size {p['work_size'][0]}x{p['work_size'][1]}",
        f"device    {p['device']}, batch {p['batch_size']}, ~{p['estimated_memory_mb']} MB peak (estimate)",
        f"method    {p['propagation']}",
        f"weights   {_weights_line(p)}",
        f"output    {p['output']} ({p['output_kind']})",
    ]
    return "\n".join(lines)


@cli.command()
@click.argument("input_path", metavar="INPUT", type=PATH)
@click.option("--keyframes", "keys", type=PATH, required=True,
              help="Folder of colour key-frames named by frame index (00120.png, frame_120.jpg: "
                   "the last number in the name), or one file. A PNG with alpha (RGBA, 8 or "
                   "16-bit) gives colour only where alpha > 0 (a partly painted key).")
@click.option("--mode", type=click.Choice(["online", "nearest", "blend"]), default="blend",
              show_default=True,
              help="blend: both neighbouring key-frames, weighted per pixel by distance and by "
                   "how well each fits after alignment (frames with one key on their side of "
                   "the shot take it alone); nearest: the closest key-frame on either side, "
                   "about half the work, but the colour jumps where the key changes; online: "
                   "the key-frame at or before each frame (the paper's; needs no later keys). "
                   "Held-out clips, keys every 20 frames: blend beats the two-key flow "
                   "baseline, nearest falls below it (docs/RESULTS.md).")
@click.option("--no-snap-check", "snap_check", is_flag=True, flag_value=False, default=True,
              help="Skip the check that each key-frame's lightness matches its video frame "
                   "(it catches off-by-one names).")
@click.option("--tpn/--no-tpn", "tpn", default=None,
              help="Mix the colour TPN's prediction into the flow part (both key-frames and "
                   "their colour carried frame to frame, flow-warped and blended by fit). "
                   "Default: off, since the TPN "
                   "now scores lower at about twice the time (docs/RESULTS.md). --weights "
                   "implies --tpn.")
@click.option("--chroma-upsample", type=click.Choice(["guided", "bilinear"]), default="guided",
              show_default=True,
              help="How the TPN's working-size colour reaches full size: guided by "
                   "the frame's own lightness (colour edges follow its edges, ~0.1 s per 1080p "
                   "frame on one core; measured in docs/what-we-tried.md) or plain bilinear.")
@shot_options
@video_options
@engine_options
@common_options
def colorize(input_path: Path, keys: Path, **kw) -> None:
    """Colour a video (or a frame folder) from a few colour key-frames.

    Only the colour (chroma Cb, Cr, as video carries it) is propagated; every output frame
    keeps the input's own luma (a black-and-white film's tones) at full resolution, its
    size, frame rate and timestamps, and audio and subtitles are copied untouched.
    Key-frames are checked against the video before anything runs (index past the end,
    size/aspect, grayscale, off-by-one names).

    Shot changes: a quick first pass finds the cuts (from lightness alone), and a frame
    only takes colour from key-frames of its own shot. A shot without a key-frame takes
    the nearest key across the cut (as before shot detection existed: a false cut costs
    nothing and the output stays complete) and the run warns, naming the shot's frames:
    add a key-frame there (tpn suggest-keyframes proposes frames). --no-shot-detect
    turns detection off.

    Partly painted key-frames: a key saved as a PNG with alpha (RGBA, 8 or 16-bit) gives
    colour only where alpha > 0 (alpha 255 = painted; in between mixes the paint with the
    frame). Its alpha travels with its colour, so each key counts only where its paint
    lands; where no key's paint reaches, a black-and-white film stays gray and a colour
    video keeps its own colour. With --mode blend, two keys painted in different regions
    (the actor in one, the set in the other) combine; online and nearest take one key per
    frame. A fully opaque RGBA key is the same as an RGB one.

    Output: a video file (container from the extension; default INPUT_color.EXT), or a
    folder / path without extension for PNG frames named by frame index.

    \b
    Example:
      tpn extract film.mp4 -o keys/ --every 30     # paint some of these, delete the rest
      tpn colorize film.mp4 --keyframes keys/ -o film_color.mp4
    """
    _start("colour", input_path, keys, kw)


@cli.command()
@click.argument("input_path", metavar="INPUT", type=PATH)
@click.option("--hdr-keys", "keys", type=PATH, required=True,
              help="Folder of radiance key-frames (.exr/.hdr, linear, 1.0 = the LDR clip level) "
                   "named by frame index.")
@click.option("--mode", type=click.Choice(["online", "nearest", "blend"]), default="blend",
              show_default=True,
              help="Key-frame schedule (see tpn colorize --help): blend fuses both "
                   "neighbouring key-frames of the shot (one at the ends), each weighted by "
                   "its own measured error; nearest and online use one.")
@click.option("--tpn/--no-tpn", "tpn", default=None,
              help="Put each aligned key-frame through the HDR TPN before the fusion "
                   "(default: off, no weights needed; measured in docs/what-we-tried.md). "
                   "--weights implies --tpn.")
@click.option("--transfer", type=click.Choice(["pq", "hlg"]), default="pq", show_default=True,
              help="Video output: HDR10 (PQ, with mastering metadata and measured "
                   "MaxCLL/MaxFALL) or HLG.")
@click.option("--paper-white", type=click.FloatRange(min=1.0), default=203.0, show_default=True,
              help="Nits of radiance 1.0 (BT.2408 reference white).")
@click.option("--sdr-preview", type=PATH, default=None,
              help="Also write a tone-mapped SDR preview video here.")
@click.option("--no-audio", is_flag=True, help="Do not copy audio/subtitle streams.")
@shot_options
@engine_options
@common_options
def hdr(input_path: Path, keys: Path, **kw) -> None:
    """Turn an LDR video into HDR from a few radiance key-frames.

    Each frame's radiance fuses, channel by channel, the frame itself inverted with the
    camera's response (measured on the key-frames: their radiance against the video
    frames at their indices; one fixed response and exposure over the clip assumed) and
    both neighbouring key-frames moved into the frame by optical flow (their radiance
    warped at the frame's full resolution), each weighted by its measured error and less
    where the frame shows what a key's view did not: a well-exposed channel mostly
    follows the video (its detail), a clipped channel (code 255) takes the key-frames'
    radiance, at least that of the code below the clip. No network runs by default
    (--tpn adds the HDR TPN). As in colorize, a frame only takes radiance from key-frames
    of its own shot (--no-shot-detect to turn off).

    Output: a folder (default INPUT_hdr/) of half-float EXR frames named by frame index,
    or a .mp4/.mkv/.mov file: 10-bit HEVC, BT.2020, PQ (HDR10) or HLG, audio copied.

    \b
    Example:
      tpn hdr clip.mp4 --hdr-keys exr/ -o clip_hdr10.mp4 --sdr-preview clip_preview.mp4
    """
    _start("hdr", input_path, keys, kw)


@cli.command()
@click.argument("input_path", metavar="INPUT", type=PATH)
@click.option("--mask", "keys", type=PATH, required=True,
              help="The first annotated frame's mask (palette, grayscale-id, binary or RGB "
                   "PNG; the number in its name is its frame index, else 0).")
@click.option("--masks", type=PATH, default=None,
              help="Folder of further masks named by frame index (objects that appear later, "
                   "corrections).")
@click.option("--mask-format", type=click.Choice(["palette", "gray", "binary"]), default="palette",
              show_default=True, help="palette: the input mask's colours and ids; gray: ids as "
                                      "grey levels; binary: 0/255 any object.")
@click.option("--overlay", type=PATH, default=None,
              help="Also write a preview video with the masks drawn over the frames.")
@click.option("--void", type=click.IntRange(0, 65535), default=None,
              help="An id that means \"don't care\" (DAVIS uses 255): not propagated as an "
                   "object.")
@click.option("--tpn/--no-tpn", "tpn", default=None,
              help="Refine every chained step with the segment TPN (default: on; --no-tpn "
                   "is ~1.5x faster and a little less accurate, see above).")
@common_options
def segment(input_path: Path, keys: Path, **kw) -> None:
    """Carry object masks from annotated frames to every frame of a video.

    Masks are carried frame to frame, in order: the previous frame's object
    probabilities are moved by optical flow, pulled back onto the objects by a colour
    model and a small pixel classifier of the annotated frame (refitted every 5 frames on
    the chain's sure pixels), and mixed with the annotated mask warped straight to the
    frame wherever that direct flow is consistent. At every mask of --masks the chain restarts from it;
    objects that mask does not contain keep being tracked, so a later mask may hold only
    an object that appears. Frames before the first mask get it unchanged. Output masks
    keep the input's object ids and palette, at the input's size, one PNG per frame
    named by frame index (default folder INPUT_masks/), ready for --masks or any DAVIS
    tool.

    The segment TPN (segment-v1, or --weights) refines every chained step by default.
    Its scores against copying the first mask and plain flow chaining are in
    docs/RESULTS.md.

    \b
    Example:
      tpn segment clip.mp4 --mask clip_masks_in/00000.png --overlay clip_overlay.mp4
    """
    _start("segment", input_path, keys, kw)


cli.add_command(batch)
