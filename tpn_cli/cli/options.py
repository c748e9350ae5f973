"""Options shared by several commands (decorators) and the path type."""
from __future__ import annotations

from pathlib import Path

import click

from ..shots import DEFAULT_THRESHOLD


PATH = click.Path(path_type=Path)


def fps_value(ctx, param, value):
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


def common_options(f):
    opts = [
        click.option("-o", "--output", type=PATH, default=None,
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
        click.option("--fps", default=None, metavar="RATE", callback=fps_value,
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


def video_options(f):
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


def shot_options(f):
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
