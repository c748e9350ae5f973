"""The bad-input matrix: every case exits with its documented code and names the file;
no run leaves a finished-looking (or any partial) output behind."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _cli_util import (CAPS, CAPS_MASKS, DATA, DOG, extract_keys, hdr_keys, interruptible, models,  # noqa: F401
                       one_thread, run_cli)
from tpn_cli.media import VideoWriter, read_image, write_image


@pytest.fixture
def keys(tmp_path):
    return extract_keys(DOG, tmp_path / "keys", [0, 6])


def _colorize(models, video, keys, *extra):
    return run_cli("colorize", video, "--keyframes", keys, "--weights", models["colour"], "-q", *extra)


def _only(tmp_path, *names):
    """Nothing in tmp_path but ``names`` (no partial or hidden files)."""
    return sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_missing_and_corrupt_video(tmp_path, models, keys):
    code, _, err = _colorize(models, tmp_path / "nope.mp4", keys, "-o", tmp_path / "o.mp4")
    assert code == 3 and "nope.mp4" in err and "not found" in err
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(DOG.read_bytes()[:600])
    code, _, err = _colorize(models, bad, keys, "-o", tmp_path / "o.mp4")
    assert code == 3 and "bad.mp4" in err
    assert _only(tmp_path, "keys", "bad.mp4")


def test_empty_key_folder(tmp_path, models):
    (tmp_path / "empty").mkdir()
    code, _, err = _colorize(models, DOG, tmp_path / "empty", "-o", tmp_path / "o.mp4")
    assert code == 3 and "empty" in err and "no key-frame images" in err


def test_key_index_past_the_end(tmp_path, models, keys):
    shutil.copy(keys / "00006.png", keys / "00012.png")
    code, stdout, err = _colorize(models, DOG, keys, "-o", tmp_path / "o.mp4", "--json")
    assert code == 3 and "00012.png" in err and "past the end" in err
    assert "--index-base 1" in err  # 12 == frame count: probably numbered from 1
    assert json.loads(stdout)["error"]["code"] == "KEYFRAME_OUT_OF_RANGE"


def test_mismatched_aspect_refused_same_aspect_resized(tmp_path, models, keys):
    img = read_image(keys / "00006.png")
    (keys / "00006.png").unlink()
    write_image(keys / "00006.png", np.ascontiguousarray(img[:, :90]))  # 90x90
    code, _, err = _colorize(models, DOG, keys, "-o", tmp_path / "o.mp4", "--no-snap-check")
    assert code == 3 and "00006.png" in err and "aspect" in err
    (keys / "00006.png").unlink()
    write_image(keys / "00006.png", np.asarray(Image.fromarray(img).resize((320, 180))))
    code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"],
                           "-o", tmp_path / "o.mp4", "--dry-run")
    assert code == 0 and "resized" in err


def test_grayscale_key_where_colour_is_needed(tmp_path, models, keys):
    img = read_image(keys / "00006.png")
    (keys / "00006.png").unlink()
    write_image(keys / "00006.png", np.repeat(img.mean(axis=2, keepdims=True), 3, 2).astype(np.uint8))
    code, _, err = _colorize(models, DOG, keys, "-o", tmp_path / "o.mp4")
    assert code == 3 and "00006.png" in err and "no colour" in err


def test_off_by_one_key_is_caught(tmp_path, models):
    keys = extract_keys(DOG, tmp_path / "keys", [0, 6])
    (keys / "00006.png").rename(keys / "00005.png")  # frame 6's picture named 5
    code, _, err = _colorize(models, DOG, keys, "-o", tmp_path / "o.mp4")
    assert code == 3 and "00005.png" in err and "matches frame 6" in err and "--no-snap-check" in err


def test_exr_with_nan(tmp_path, models):
    keys = hdr_keys(DOG, tmp_path / "exr", [0])
    img = np.ones((90, 160, 3), np.float32)
    img[5, 7, 1] = np.nan
    from tpn_cli.media.hdr import write_exr
    write_exr(keys / "00003.exr", img)
    code, _, err = run_cli("hdr", DOG, "--hdr-keys", keys, "--weights", models["hdr"], "-o", tmp_path / "h")
    assert code == 3 and "00003.exr" in err and "NaN" in err
    shutil.copy(DATA / "nan.exr", keys / "00003.exr")  # a real file with NaN and Inf
    code, _, err = run_cli("hdr", DOG, "--hdr-keys", keys, "--weights", models["hdr"], "-o", tmp_path / "h")
    assert code == 3 and "00003.exr" in err


def test_antialiased_mask(tmp_path, models):
    with Image.open(CAPS_MASKS / "00000.png") as im:
        soft = im.convert("L").resize((45, 80), Image.BILINEAR).resize((90, 160), Image.BILINEAR)
    # smear the edges: many grey levels, each on a sliver of pixels
    arr = np.asarray(soft).astype(np.float32)
    arr = np.clip(arr * 200 + np.linspace(0, 30, arr.size).reshape(arr.shape), 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(tmp_path / "soft.png")
    code, _, err = run_cli("segment", CAPS, "--mask", tmp_path / "soft.png",
                           "--weights", models["segment"], "-o", tmp_path / "m")
    assert code == 3 and "soft.png" in err and "anti-aliased" in err


def test_unwritable_and_existing_output(tmp_path, models, keys):
    code, _, err = _colorize(models, DOG, keys, "-o", tmp_path / "no" / "such" / "o.mp4")
    assert code == 6 and "o.mp4" in err
    (tmp_path / "o.mp4").write_bytes(b"precious")
    code, _, err = _colorize(models, DOG, keys, "-o", tmp_path / "o.mp4")
    assert code == 6 and "o.mp4" in err and "--overwrite" in err
    assert (tmp_path / "o.mp4").read_bytes() == b"precious"
    assert _colorize(models, DOG, keys, "-o", tmp_path / "o.mp4", "--overwrite")[0] == 0
    assert (tmp_path / "o.mp4").stat().st_size > 1000
    code, _, err = _colorize(models, tmp_path / "o.mp4", keys, "-o", tmp_path / "o.mp4", "--overwrite")
    assert code == 2 and "replace the input" in err


def test_missing_weights_exit_4(tmp_path, models, keys):
    code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", "colour-v9",
                           "-o", tmp_path / "o.mp4", env={"TPN_CACHE_DIR": str(tmp_path / "cache")})
    assert code == 4 and "tpn weights download colour-v9" in err
    code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", tmp_path / "x.pt",
                           "-o", tmp_path / "o.mp4")
    assert code == 4 and "x.pt" in err
    code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["hdr"],
                           "-o", tmp_path / "o.mp4")
    assert code == 2 and "for 'hdr'" in err
    assert not (tmp_path / "o.mp4").exists()


def test_sigint_mid_run_exits_130_and_leaves_nothing(tmp_path, models):
    """A real SIGINT while frames stream: exit 130, no output, no temporary."""
    src = tmp_path / "long.mp4"
    frames = [f.image for f in __import__("tpn_cli.media", fromlist=["x"]).VideoReader(DOG).frames()]
    with VideoWriter(src, width=160, height=90, fps=Fraction(25), preset="ultrafast") as w:
        for i in range(2000):  # long enough that the run cannot finish before the signal
            w.write(frames[i % 12])
    keys = extract_keys(src, tmp_path / "keys", [0])
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-c", "from tpn_cli.cli import main; main()", "colorize",
                          str(src), "--keyframes", str(keys), "--weights", str(models["colour"]),
                          "-o", str(out / "c.mp4"), "--batch-size", "1", "--no-snap-check"],
                         **interruptible(stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env))
    deadline = time.time() + 60
    while not os.listdir(out) and time.time() < deadline:  # the temporary output appears
        time.sleep(0.05)
    assert os.listdir(out), "the run never started writing"
    time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=30)
    err = p.stderr.read().decode()
    assert p.returncode == 130, err
    assert "interrupted" in err
    assert os.listdir(out) == []
