"""The `tpn` command line: parse, validate, call the engine; nothing else.

Each command's docstring is its ``--help``. Errors are :class:`~tpn_cli.errors.TpnError`
subclasses; :class:`TpnGroup` turns them into a message on stderr (and a JSON error
object on stdout with ``--json``) and the documented exit code.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

import click

from . import __version__
from .errors import Interrupted, as_tpn_error
from .scale.commands import ENGINE_OPTIONS, batch, check_engine, engine_options, run_with_engine
from .shots import DEFAULT_THRESHOLD

_PATH = click.Path(path_type=Path)


def _wants_json(args: list[str]) -> bool:
    """``--json`` among the options (before a ``--``), known before click parses anything,
    so that even a usage error answers with a JSON object."""
    return "--json" in (args[:args.index("--")] if "--" in args else args)


@contextlib.contextmanager
def _stdout_for_tpn_only():
    """Point file descriptor 1 at stderr for the whole command, and give Python's
    ``sys.stdout`` (click.echo: the plan, the JSON object) a private copy of the real
    stdout: C and C++ code that prints on fd 1 (encoders, OpenMP, libraries' warnings)
    then lands on stderr, and stdout carries only what tpn prints. (A Python-level print by
    a library would still reach sys.stdout: the one that does, OpenEXR's binding, is
    redirected where it is called, in media/hdr.py.) Skipped when ``sys.stdout`` is no
    file (click's CliRunner, which captures in memory)."""
    try:
        py_fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stdout.flush()
    real = os.dup(1)
    old_stdout = sys.stdout
    if py_fd == 1:  # Python writes through fd 1: move it onto the private copy
        sys.stdout = os.fdopen(os.dup(real), "w", encoding=old_stdout.encoding or "utf-8")
    os.dup2(2, 1)
    try:
        yield
    finally:
        try:
            ctypes.CDLL(None).fflush(None)  # C stdio buffers: out now, onto stderr
        except (OSError, AttributeError):
            pass
        sys.stdout.flush()
        os.dup2(real, 1)
        os.close(real)
        if sys.stdout is not old_stdout:
            sys.stdout.close()
            sys.stdout = old_stdout


@contextlib.contextmanager
def _signals_raise():
    """SIGTERM and SIGHUP raise :class:`Interrupted` in the main thread, as Ctrl-C raises
    KeyboardInterrupt, so writers abort and remove their temporaries the same way. A
    signal already ignored (``nohup`` ignores SIGHUP) stays ignored; once one arrived,
    further ones are ignored so the cleanup is not cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.getsignal(s) for s in watched}

    def stop(signum, _frame):
        for s in watched:
            if old[s] not in (signal.SIG_IGN, None):
                signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    for s in watched:
        # SIGINT: only where Python's own KeyboardInterrupt handler is installed
        if old[s] == (signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL):
            signal.signal(s, stop)
    try:
        yield
    finally:
        for s, h in old.items():
            if h is not None:
                signal.signal(s, h)


class TpnGroup(click.Group):
    """The error boundary: every command (under CliRunner too) runs inside :meth:`main`,
    and whatever escapes (a TpnError, a click usage error, a signal, a bug) becomes one
    message on stderr, one ``{"error": ...}`` object on stdout under ``--json``, and the
    exit code of :func:`tpn_cli.errors.as_tpn_error`."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = list(sys.argv[1:] if args is None else args)
        as_json = _wants_json(args)
        with _stdout_for_tpn_only(), _signals_raise():
            try:
                rc = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except SystemExit:
                raise
            except BaseException as exc:  # noqa: BLE001 - the boundary: every failure is named
                err = as_tpn_error(exc)
                if err.exit_code == 1 and os.environ.get("TPN_DEBUG"):
                    traceback.print_exception(exc, file=sys.stderr)
                if as_json:
                    click.echo(json.dumps(err.to_json()))
                click.echo(f"tpn: {err}", err=True)
                rc = err.exit_code
        sys.exit(rc if isinstance(rc, int) else 0)


@click.group(cls=TpnGroup, context_settings={"help_option_names": ["-h", "--help"],
                                             "max_content_width": 100})
@click.version_option(__version__, prog_name="tpn")
def cli() -> None:
    """Carry colour, HDR radiance or object masks from a few key-frames through a whole video.

    \b
      tpn colorize film.mp4 --keyframes painted/       # colour into a black-and-white film
      tpn hdr clip.mp4 --hdr-keys exr/ -o clip.mp4      # HDR10 video from an LDR clip
      tpn segment clip.mp4 --mask 00000.png             # object masks for every frame
      tpn extract film.mp4 -o painted/ --every 20       # frames to paint as key-frames
      tpn suggest-keyframes film.mp4 --budget 12 --extract painted/   # or the best 12

    Exit codes: 0 ok, 1 internal error, 2 usage, 3 bad input, 4 weights unavailable,
    5 out of memory, 6 output not writable, 129/130/143 stopped by SIGHUP/Ctrl-C/SIGTERM.
    """


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def doctor(as_json: bool) -> None:
    """Report torch, device, compiled kernels, video codecs and EXR support."""
    from .doctor import format_report, report

    facts = report()
    click.echo(json.dumps(facts) if as_json else format_report(facts))


# ----------------------------------------------------------------------------------------
# the three propagation commands share these options
# ----------------------------------------------------------------------------------------
def _fps_value(ctx, param, value):
    """``--fps``: a positive rate as an integer, decimal or fraction (kept exact)."""
    if value is None:
        return None
    from fractions import Fraction

    try:
        rate = Fraction(value)
    except (ValueError, ZeroDivisionError):
        rate = Fraction(0)
    if rate <= 0:
        raise click.BadParameter(f"{value!r} is not a frame rate (e.g. 25, 24000/1001, 29.97)")
    return rate


def _common(f):
    opts = [
        click.option("-o", "--output", type=_PATH, default=None,
                     help="Output path; its form decides the format (see above). "
                          "Default: next to the input."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
                     show_default=True, help="Where the network runs."),
        click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
                     help="Frames per network call (lower it if memory runs out)."),
        click.option("--work-size", type=click.IntRange(min=0), default=None,
                     help="Short side the network works at (never above the input's; 0 = full "
                          "size). The output keeps the input's size. Default: 240 for colorize "
                          "(colour comes back to full size guided by the frame's lightness, and "
                          "scores as 480 at a third of the time), 480 for hdr and segment."),
        click.option("--weights", default=None, metavar="NAME|PATH",
                     help="Model: a name from `tpn weights list` or a .pt file. Default: the "
                          "bundled model of the task."),
        click.option("--start", default="0", show_default=True, metavar="FRAME|TIME",
                     help="First frame to process: an index (0-based) or a time (5s, 1:05.5)."),
        click.option("--end", default=None, metavar="FRAME|TIME",
                     help="Stop before this frame or time (exclusive). Default: the end."),
        click.option("--fps", default=None, metavar="RATE", callback=_fps_value,
                     help="Frame rate of a frame-folder input (25, 24000/1001, 29.97); "
                          "default 25. A video keeps its own timing."),
        click.option("--index-base", type=click.Choice(["0", "1"]), default="0", show_default=True,
                     help="1 if key-frame files are numbered from 1 (ffmpeg's default). For a frame-folder "
                          "input, key numbers are matched to the frames' own numbers instead."),
        click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
                     help="CPU threads per operation (0 = auto: 1, as the run's stages already "
                          "overlap in threads)."),
        click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32",
                     show_default=True,
                     help="Arithmetic of the guidance network (bf16: faster on CPUs with "
                          "AVX-512 BF16/AMX and on GPUs; gates and scan stay fp32)."),
        click.option("--no-pipeline", "pipeline", flag_value=False, default=True,
                     help="Decode, compute and encode one after the other (for debugging)."),
        click.option("--dry-run", is_flag=True,
                     help="Check everything and print the plan (which key feeds which frame, "
                          "working size, device, memory estimate); process nothing."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print one JSON summary object on stdout (errors too)."),
        click.option("-q", "--quiet", is_flag=True, help="No progress bar or notes; errors only."),
        click.option("--overwrite", is_flag=True, help="Replace existing outputs."),
        click.option("--allow-short-input", is_flag=True,
                     help="A video that decodes fewer frames than its container declares (cut "
                          "short or damaged) is refused by default; with this, the frames that "
                          "decode are processed, with a warning and a short_input field in --json."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def _video_options(f):
    for o in reversed([
        click.option("--crf", type=click.IntRange(0, 51), default=None,
                     help="Video quality (CRF of x264/x265/SVT-AV1/VP9; lower is better). "
                          "Default 16 (visually lossless for x264)."),
        click.option("--preset", default=None, help="Encoder preset (x264/x265), default medium."),
        click.option("--codec", default=None,
                     help="Video encoder: libx264 (default), libx265, libsvtav1, libvpx-vp9 "
                          "(default for .webm), ffv1 (lossless), prores_ks."),
        click.option("--no-audio", is_flag=True, help="Do not copy audio/subtitle streams."),
    ]):
        f = o(f)
    return f


def _shot_options(f):
    for o in reversed([
        click.option("--no-shot-detect", "shot_detect", is_flag=True, flag_value=False, default=True,
                     help="Do not look for cuts: key-frames then feed frames across shot changes "
                          "(the behaviour before shot detection)."),
        click.option("--cut-threshold", type=click.FloatRange(0.0, 2.0), default=DEFAULT_THRESHOLD,
                     show_default=True,
                     help="How different two consecutive frames must be to count as a cut "
                          "(1 - similarity of their lightness, 0..2). Lower finds more cuts "
                          "(and risks false ones); see docs/what-we-tried.md, 'Shot changes'."),
    ]):
        f = o(f)
    return f


def _start(task: str, input_path: Path, keys: Path, kw: dict) -> None:
    """Build the options, check and plan, then dry-run or execute."""
    from .runs import Options, check_and_plan

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
    if not p["uses_model"]:
        return "none used (--no-tpn: the chain without the segment TPN)"
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
@click.argument("input_path", metavar="INPUT", type=_PATH)
@click.option("--keyframes", "keys", type=_PATH, required=True,
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
@click.option("--chroma-upsample", type=click.Choice(["guided", "bilinear"]), default="guided",
              show_default=True,
              help="How the working-size colour reaches full size: guided by the frame's own "
                   "lightness (colour edges follow its edges, ~0.1 s per 1080p frame on one "
                   "core; measured in docs/what-we-tried.md) or plain bilinear.")
@_shot_options
@_video_options
@engine_options
@_common
def colorize(input_path: Path, keys: Path, **kw) -> None:
    """Colour a video (or a frame folder) from a few colour key-frames.

    Only the colour (CIE-Lab ab) is propagated; every output frame keeps the input's own
    lightness at full resolution, size, frame rate and timestamps, and audio and
    subtitles are copied untouched. Key-frames are checked against the video before
    anything runs (index past the end, size/aspect, grayscale, off-by-one names).

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
@click.argument("input_path", metavar="INPUT", type=_PATH)
@click.option("--hdr-keys", "keys", type=_PATH, required=True,
              help="Folder of radiance key-frames (.exr/.hdr, linear, 1.0 = the LDR clip level) "
                   "named by frame index.")
@click.option("--mode", type=click.Choice(["online", "nearest", "blend"]), default="nearest",
              show_default=True, help="Key-frame schedule (see tpn colorize --help).")
@click.option("--transfer", type=click.Choice(["pq", "hlg"]), default="pq", show_default=True,
              help="Video output: HDR10 (PQ, with mastering metadata and measured "
                   "MaxCLL/MaxFALL) or HLG.")
@click.option("--paper-white", type=click.FloatRange(min=1.0), default=203.0, show_default=True,
              help="Nits of radiance 1.0 (BT.2408 reference white).")
@click.option("--sdr-preview", type=_PATH, default=None,
              help="Also write a tone-mapped SDR preview video here.")
@click.option("--no-audio", is_flag=True, help="Do not copy audio/subtitle streams.")
@_shot_options
@engine_options
@_common
def hdr(input_path: Path, keys: Path, **kw) -> None:
    """Turn an LDR video into HDR from a few radiance key-frames.

    The propagated radiance replaces the video only where the video clips (channel max
    above 0.95, blended in from 0.90); elsewhere the LDR frame is inverted with the
    camera's response, measured on the key-frames (their radiance against the video
    frames at their indices; one fixed response and exposure over the clip assumed), so
    detail comes from the video and highlights from the key-frames. As in colorize, a
    frame only takes radiance from key-frames of its own shot (--no-shot-detect to turn
    off).

    Output: a folder (default INPUT_hdr/) of half-float EXR frames named by frame index,
    or a .mp4/.mkv/.mov file: 10-bit HEVC, BT.2020, PQ (HDR10) or HLG, audio copied.

    \b
    Example:
      tpn hdr clip.mp4 --hdr-keys exr/ -o clip_hdr10.mp4 --sdr-preview clip_preview.mp4
    """
    _start("hdr", input_path, keys, kw)


@cli.command()
@click.argument("input_path", metavar="INPUT", type=_PATH)
@click.option("--mask", "keys", type=_PATH, required=True,
              help="The first annotated frame's mask (palette, grayscale-id, binary or RGB "
                   "PNG; the number in its name is its frame index, else 0).")
@click.option("--masks", type=_PATH, default=None,
              help="Folder of further masks named by frame index (objects that appear later, "
                   "corrections).")
@click.option("--mask-format", type=click.Choice(["palette", "gray", "binary"]), default="palette",
              show_default=True, help="palette: the input mask's colours and ids; gray: ids as "
                                      "grey levels; binary: 0/255 any object.")
@click.option("--overlay", type=_PATH, default=None,
              help="Also write a preview video with the masks drawn over the frames.")
@click.option("--void", type=click.IntRange(0, 65535), default=None,
              help="An id that means \"don't care\" (DAVIS uses 255): not propagated as an "
                   "object.")
@click.option("--tpn/--no-tpn", "tpn", default=None,
              help="Refine every chained step with the segment TPN (default: on; --no-tpn "
                   "is ~1.5x faster and a little less accurate, see above).")
@_common
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


# ----------------------------------------------------------------------------------------
# extract
# ----------------------------------------------------------------------------------------
@cli.command()
@click.argument("input_path", metavar="INPUT", type=_PATH)
@click.option("-o", "--output", type=_PATH, required=True, help="Folder to create.")
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
    from .errors import BadInputError, UsageError
    from .media import open_input
    from .outputs import export_frames

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


# ----------------------------------------------------------------------------------------
# suggest-keyframes
# ----------------------------------------------------------------------------------------
@cli.command("suggest-keyframes")
@click.argument("input_path", metavar="INPUT", type=_PATH)
@click.option("--budget", type=click.IntRange(min=1), required=True,
              help="How many key-frames you will paint.")
@click.option("--extract", "extract_dir", type=_PATH, default=None,
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

    from . import shots, suggest
    from .media import check_output_path, open_input, output_kind
    from .errors import UsageError
    from .outputs import export_frames, frame_name_number

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


# ----------------------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------------------
@cli.command()
@click.argument("task", type=click.Choice(["colour", "color", "hdr", "segment"]))
@click.argument("run_dir", type=_PATH)
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
    from .errors import UsageError
    from .train import fit, parse_settings, preset

    try:
        overrides = parse_settings(settings)
        cfg = preset(task, run_dir=str(run_dir), minutes=minutes, **overrides)
        fit(task, cfg)
    except ValueError as exc:  # unknown or malformed settings
        raise UsageError(str(exc), hint="see tpn_cli/train/loop.py TrainConfig for the settings") from exc


# ----------------------------------------------------------------------------------------
# weights
# ----------------------------------------------------------------------------------------
@cli.group(name="weights")
def weights_group() -> None:
    """List, locate, verify and download model weights.

    Bundled weights come with the package (tpn_cli/_weights; weights/ in a source
    checkout; $TPN_WEIGHTS_DIR overrides), with manifest.json: sha256, size, task, url,
    training data, licence, scores. Downloads go to $TPN_CACHE_DIR, else
    $XDG_CACHE_HOME/tpn, else ~/.cache/tpn. Everything works offline with the bundled
    files; `tpn doctor` says where they were found.
    """


@weights_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def weights_list(as_json: bool) -> None:
    """Show every known model: name, task, size, where it is (bundled/cache/missing).

    \b
    Example:
      tpn weights list
    """
    from . import weights

    rows = weights.list_entries()
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo(f"no weights listed in {weights.bundled_dir() / weights.MANIFEST}")
        return
    for r in rows:
        size = f"{r['bytes'] / 1e6:.1f} MB" if r.get("bytes") else "?"
        default = " (default)" if r.get("default") else ""
        click.echo(f"{r['name']:<24} {r['task']:<8} {size:>9}  {r['where']}{default}")
        for k in ("training_data", "licence", "licences", "use", "scores"):
            if r.get(k):
                click.echo(f"    {k}: {r[k] if not isinstance(r[k], (dict, list)) else json.dumps(r[k])}")


@weights_group.command("path")
@click.argument("name")
def weights_path(name: str) -> None:
    """Print the file of weights NAME (exit 4 when it is not available).

    \b
    Example:
      tpn weights path colour-v1
    """
    from . import weights

    found = weights.find(name)
    if found is None:
        raise weights._missing(name)
    click.echo(str(found))


@weights_group.command("verify")
@click.argument("name", required=False)
def weights_verify(name: str | None) -> None:
    """Check the sha256 of the present weights files against the manifest (exit 4 on a
    mismatch, or when NAME is missing).

    \b
    Example:
      tpn weights verify
    """
    from . import weights
    from .errors import WeightsUnavailableError

    rows = weights.verify(name)
    for r in rows:
        click.echo(f"{r['name']:<24} {r['status']:<9} {r['path'] or ''}")
    bad = [r for r in rows if r["status"] == "mismatch" or (name and r["status"] == "missing")]
    if bad:
        raise WeightsUnavailableError(f"{len(bad)} weights file(s) failed the check: "
                                      + ", ".join(r["name"] for r in bad),
                                      hint="re-download them: tpn weights download NAME --overwrite",
                                      code="WEIGHTS_CHECKSUM")


@weights_group.command("download")
@click.argument("name")
@click.option("--url", default=None, help="Address to fetch (default: $TPN_WEIGHTS_URL/FILE, else the manifest's url).")
@click.option("--sha256", default=None, help="Expected checksum (default: the manifest's).")
@click.option("--overwrite", is_flag=True, help="Download again even if present.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def weights_download(name: str, url: str | None, sha256: str | None, overwrite: bool, quiet: bool) -> None:
    """Download weights NAME into the cache, verify its checksum, print its path.

    Nothing is fetched when NAME is already installed (bundled or cached, with the right
    checksum). The file arrives as CACHE/FILE.part, is resumed from there when the
    transfer breaks off (in this call, or by running the command again), and is renamed
    into place only when complete and its sha256 matches. TPN_WEIGHTS_URL replaces the
    manifest's address with a mirror: an http(s):// or file:// base, or a folder.

    \b
    Example:
      tpn weights download colour-v1
      TPN_WEIGHTS_URL=/mnt/models tpn weights download colour-v1
      tpn weights download my-model --url https://example.org/my-model.pt --sha256 HEX
    """
    from . import weights

    click.echo(str(weights.download(name, url, sha256, progress=not quiet, overwrite=overwrite)))


cli.add_command(batch)


def main() -> None:
    """Entry point (``tpn``): the group's :meth:`TpnGroup.main` is the error boundary."""
    cli.main(prog_name="tpn")
