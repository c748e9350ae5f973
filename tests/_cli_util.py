"""Shared helpers for the CLI and engine tests: tiny untrained models, key-frame
fixtures made from the real clips in tests/data, and a CLI runner that returns the
exit code, stdout and stderr.

An untrained TPN propagates nothing (its gate head starts at zero), so every frame
receives its key-frame's property unchanged: outputs are predictable, which lets the
tests check the plumbing (sizes, timing, ids, palettes) exactly.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
DOG = DATA / "dog_2997_audio.mp4"      # 12 frames 160x90, 29.97 fps, AAC audio
SUBS = DATA / "dog_subs.mkv"           # same + SRT subtitles
VFR = DATA / "juggle_vfr.mp4"          # 10 frames 128x72, irregular pts
CAPS = DATA / "caps_16.mp4"            # 16 frames 90x160 (portrait)
CAPS_MASKS = DATA / "caps_masks"       # palette masks of frames 0 and 14


def tiny_model(path: Path, task: str) -> Path:
    from tpn_cli.models import TPN, save_model, task_config

    torch.manual_seed(0)
    save_model(TPN(task_config(task, unet_base=4, unet_depth=2, hidden_channels=8)), path)
    return path


def run_cli(*args, env: dict | None = None) -> tuple[int, str, str]:
    """Run ``tpn ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from tpn_cli.cli import cli

    runner = CliRunner()
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        r = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return r.exit_code, r.stdout, r.stderr


def run_tpn_process(*args, **kw) -> subprocess.CompletedProcess:
    """Run the real entry point in a subprocess (exit codes exactly as a shell sees them)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", "from tpn_cli.cli import main; main()", *map(str, args)],
                          capture_output=True, text=True, env=env, **kw)


def extract_keys(video: Path, folder: Path, indices) -> Path:
    """Key-frames painted 'perfectly': the video's own frames, named by index."""
    from tpn_cli.media import VideoReader, write_image

    folder.mkdir(parents=True, exist_ok=True)
    want = set(indices)
    for f in VideoReader(video).frames(0, max(want) + 1):
        if f.index in want:
            write_image(folder / f"{f.index:05d}.png", f.image)
    return folder


def hdr_keys(video: Path, folder: Path, indices) -> Path:
    """Radiance key-frames from the video's frames: inverse camera curve, highlights ×4."""
    from tpn_cli import colour
    from tpn_cli.media import VideoReader
    from tpn_cli.media.hdr import write_exr

    folder.mkdir(parents=True, exist_ok=True)
    want = set(indices)
    for f in VideoReader(video).frames(0, max(want) + 1):
        if f.index in want:
            ldr = torch.from_numpy(f.image.astype(np.float32) / 255.0)
            h = colour.inverse_camera_curve(ldr)
            h = torch.where(ldr > 0.9, h * 4, h)
            write_exr(folder / f"{f.index:05d}.exr", h.numpy())
    return folder


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def packets(path: Path, kind: str) -> list[tuple[bytes, int | None]]:
    """(payload, pts) of every packet of the first stream of ``kind``."""
    import av

    with av.open(str(path)) as c:
        streams = getattr(c.streams, kind)
        if not streams:
            return []
        return [(bytes(p), p.pts) for p in c.demux(streams[0]) if p.size]


# -- fixtures (imported by the test modules that use them) ---------------------------------
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Tiny untrained models of the three tasks, saved as .pt files."""
    d = tmp_path_factory.mktemp("models")
    return {t: tiny_model(d / f"{t}.pt", t) for t in ("colour", "hdr", "segment")}


@pytest.fixture(autouse=True)
def one_thread():
    """Run torch on one thread during these tests: the tensors are tiny and the machines
    are shared, so waking a second OpenMP thread costs more than the work (×20 measured
    on a busy 2-core box)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


GOAT = DATA / "goat_16.mp4"            # 16 frames 256x144 (DAVIS-2016 goat)


def luma_rgb(image: np.ndarray) -> np.ndarray:
    """The black-and-white version of an RGB frame (BT.709 luma in all three channels)."""
    y = image.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    return np.repeat(np.clip(y + 0.5, 0, 255).astype(np.uint8)[..., None], 3, 2)


def two_shot_frames() -> list[np.ndarray]:
    """28 real frames 160x90 with one hard cut at frame 12: the dog clip (shot 1, frames
    0-11), then the goat clip scaled to the same size (shot 2, frames 12-27)."""
    from tpn_cli.media import VideoReader, resize_image

    dog = [f.image for f in VideoReader(DOG).frames()]
    goat = [resize_image(f.image, 160, 90) for f in VideoReader(GOAT).frames()]
    return dog + goat


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    """A 25 fps H.264 video of ``frames`` (high quality)."""
    from fractions import Fraction

    from tpn_cli.media import VideoWriter

    h, w = frames[0].shape[:2]
    with VideoWriter(path, width=w, height=h, fps=Fraction(25), crf=10, preset="ultrafast") as wr:
        for f in frames:
            wr.write(f)
    return path


def interruptible(**popen_kwargs) -> dict:
    """Popen arguments for a child that must see Ctrl-C, SIGTERM and SIGHUP: a shell started
    in the background (``nohup …&``, some CI runners) passes SIGINT (and nohup SIGHUP) on
    ignored, and tpn rightly leaves an ignored signal ignored; the child restores the
    defaults so the test means the same anywhere."""
    import signal

    def restore() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
    return dict(popen_kwargs, preexec_fn=restore)

