"""Issue 18 (and issue 20's --json, `-o -` and signal items), through the CLI: every
failure a user can cause is a named error with its exit code, one JSON object on stdout
under --json, and no output or partial file left behind."""
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

from _cli_util import (DOG, ROOT, extract_keys, hdr_keys, interruptible, models, one_thread,  # noqa: F401
                       run_cli)
from tpn_cli.media import VideoReader, VideoWriter

CORPUS = ROOT / "tests" / "data" / "fuzz_corpus"
SHORT = CORPUS / "video_short_by_one.mp4"  # declares 12 frames, 11 decode


def _tpn(*args, cwd=None, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "tpn_cli", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, **kw)


def _one_json(stdout: str) -> dict:
    """stdout must be exactly one JSON object (json.loads refuses anything around it)."""
    obj = json.loads(stdout)
    assert isinstance(obj, dict)
    return obj


@pytest.fixture
def keys(tmp_path):
    return extract_keys(DOG, tmp_path / "keys", [0, 6])


# -- one JSON object for every outcome --------------------------------------------------
@pytest.mark.parametrize("args", [
    ["colorize", "--json"],                                                  # missing argument
    ["colorize", "x.mp4", "--keyframes", "k", "--mode", "sideways", "--json"],  # bad choice
    ["colorize", "x.mp4", "--keyframes", "k", "--no-such-option", "--json"],    # unknown option
    ["suggest-keyframes", "x.mp4", "--json"],                                # missing --budget
])
def test_usage_errors_answer_one_json_object(args):
    r = _tpn(*args)
    obj = _one_json(r.stdout)
    assert r.returncode == 2 and obj["error"]["exit_code"] == 2 and obj["error"]["code"] == "USAGE"
    assert r.stderr.startswith("tpn: ") and "--help" in r.stderr


def test_unforeseen_error_is_internal_with_a_hint(tmp_path, keys, models, monkeypatch):
    from tpn_cli import runs

    def broken(opts):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(runs, "check_and_plan", broken)
    code, stdout, err = run_cli("colorize", DOG, "--keyframes", keys, "-o", tmp_path / "o.mp4", "--json")
    obj = _one_json(stdout)["error"]
    assert code == 1 and obj["code"] == "INTERNAL_ERROR" and "ZeroDivisionError" in obj["message"]
    assert "report" in obj["hint"] and "internal error" in err


def test_library_output_on_stdout_goes_to_stderr(tmp_path, models):
    """A library printing on stdout (fd 1: C code; Python's print: OpenEXR's binding)
    cannot break the --json object: both end on stderr."""
    keys = hdr_keys(DOG, tmp_path / "exr", [0])
    shutil.copy(CORPUS / "exr_bad_chunk_table.exr", keys / "00006.exr")  # OpenEXR warns on it
    noisy = ("import os, tpn_cli.media.hdr as h; r = h.read_exr\n"
             "def loud(*a, **k):\n    os.write(1, b'noise from C\\n'); return r(*a, **k)\n"
             "h.read_exr = loud\nfrom tpn_cli.cli import main; main()")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", noisy, "hdr", str(DOG), "--hdr-keys", str(keys),
                        "--weights", str(models["hdr"]), "-o", str(tmp_path / "h"), "--json"],
                       capture_output=True, text=True, env=env)
    obj = _one_json(r.stdout)["error"]
    assert r.returncode == 3 and obj["code"] == "INPUT_CORRUPT" and "00006.exr" in obj["path"]
    assert "noise from C" in r.stderr


# -- readers: what decodes is what counts -----------------------------------------------
def test_short_video_is_an_error_naming_both_counts(tmp_path, keys, models):
    """Without the snap check and the shot pass (the issue's case: exit 0 with frames
    missing), the run still fails, naming 12 declared and 11 decoded, and writes nothing."""
    out = tmp_path / "out"
    out.mkdir()
    code, stdout, err = run_cli("colorize", SHORT, "--keyframes", keys, "--weights", models["colour"],
                                "-o", out / "o.mp4", "--no-snap-check", "--no-shot-detect", "--json")
    obj = _one_json(stdout)["error"]
    assert code == 3 and obj["code"] == "SHORT_VIDEO" and obj["frame"] == 11
    assert "declares 12 frames but only 11 decode" in err and "--allow-short-input" in err
    assert os.listdir(out) == []


def test_allow_short_input_processes_what_decodes_and_says_so(tmp_path, keys, models):
    out = tmp_path / "o.mp4"
    code, stdout, err = run_cli("colorize", SHORT, "--keyframes", keys, "--weights", models["colour"],
                                "-o", out, "--allow-short-input", "--json")
    s = _one_json(stdout)
    assert code == 0 and s["frames"] == 11 and s["short_input"] == {"declared": 12, "decoded": 11}
    assert any("only 11 decode" in w for w in s["warnings"])
    assert VideoReader(out).count_frames() == 11
    code, _, err = run_cli("colorize", SHORT, "--keyframes", keys, "--weights", models["colour"],
                           "-o", tmp_path / "o2.mp4", "--allow-short-input")
    assert code == 0 and "warning:" in err and "only 11 decode" in err


def test_key_past_the_frames_that_decode_is_named(tmp_path, models):
    """A key-frame for a frame that never decodes: a named error, never a KeyError."""
    keys = extract_keys(DOG, tmp_path / "keys", [0, 11])
    code, stdout, err = run_cli("colorize", SHORT, "--keyframes", keys, "--weights", models["colour"],
                                "-o", tmp_path / "o.mp4", "--allow-short-input", "--json")
    assert code == 3 and _one_json(stdout)["error"]["code"] == "KEYFRAME_OUT_OF_RANGE"
    assert "00011.png" in err
    code, stdout, err = run_cli("colorize", SHORT, "--keyframes", keys, "--weights", models["colour"],
                                "-o", tmp_path / "o.mp4", "--json")
    assert code == 3 and _one_json(stdout)["error"]["code"] == "SHORT_VIDEO"


def test_jpeg_key_with_a_huge_header_is_refused_before_decoding(tmp_path, keys, models):
    from PIL import Image
    Image.new("RGB", (9000, 8000)).save(tmp_path / "big.jpg", quality=10)  # 72 megapixels
    shutil.copy(tmp_path / "big.jpg", keys / "00003.jpg")
    code, stdout, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"],
                                "-o", tmp_path / "o.mp4", "--json")
    assert code == 3 and _one_json(stdout)["error"]["code"] == "IMAGE_TOO_LARGE"
    assert "00003.jpg" in err and "9000x8000" in err


# -- outputs: decided and checked before any work ---------------------------------------
def test_unknown_output_extension_is_a_usage_error_up_front(tmp_path, keys, models):
    code, stdout, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"],
                                "-o", tmp_path / "out.xyz", "--json")
    obj = _one_json(stdout)["error"]
    assert code == 2 and obj["code"] == "BAD_OUTPUT_PATH" and "'.xyz'" in err and ".mp4" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys"]
    code, stdout, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"],
                                "-o", tmp_path / "o.mp4", "--codec", "no-such-encoder", "--json")
    assert code == 2 and _one_json(stdout)["error"]["code"] == "ENCODER_UNAVAILABLE"


def test_dash_is_refused_as_an_output(tmp_path, keys, models, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for args in (["colorize", DOG, "--keyframes", keys, "--weights", models["colour"], "-o", "-"],
                 ["segment", DOG, "--mask", keys / "00000.png", "-o", "-"],
                 ["extract", DOG, "-o", "-", "--every", "5"],
                 ["suggest-keyframes", DOG, "--budget", "2", "--extract", "-"]):
        code, stdout, err = run_cli(*args, "--json") if args[0] != "extract" else run_cli(*args)
        assert code == 2 and "'-' is not an output path" in err, (args, err)
        assert not Path("-").exists()


def test_outputs_colliding_with_each_other_or_an_input_are_refused(tmp_path, keys, models):
    exr = hdr_keys(DOG, tmp_path / "exr", [0])
    code, stdout, err = run_cli("hdr", DOG, "--hdr-keys", exr, "--weights", models["hdr"],
                                "-o", tmp_path / "x.mp4", "--sdr-preview", tmp_path / "x.mp4", "--json")
    assert code == 2 and _one_json(stdout)["error"]["code"] == "OUTPUT_COLLISION"
    assert "--sdr-preview and output are the same path" in err
    # a frame-folder output that holds the key-frames would replace them
    code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"],
                           "-o", tmp_path, "--overwrite")
    assert code == 2 and "contains the input" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exr", "keys"]


def test_not_enough_free_space_is_refused_before_work(tmp_path, keys, models, monkeypatch):
    from tpn_cli import outputs

    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    code, stdout, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"],
                                "-o", tmp_path / "o.mp4", "--json")
    assert code == 6 and _one_json(stdout)["error"]["code"] == "NO_SPACE"
    assert "o.mp4" in err and "MB free" in err and not (tmp_path / "o.mp4").exists()


def _noise_video(path: Path, frames: int = 160) -> Path:
    rng = np.random.default_rng(0)
    with VideoWriter(path, width=160, height=90, fps=Fraction(25), crf=0, preset="ultrafast") as w:
        for _ in range(frames):
            w.write(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8))
    return path


def _unshare_ok() -> bool:
    if shutil.which("unshare") is None:
        return False
    r = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                       capture_output=True)
    return r.returncode == 0


@pytest.mark.skipif(not _unshare_ok(), reason="needs unshare -rm and tmpfs mounts (a small disk to fill)")
@pytest.mark.parametrize("output,disk_mb", [("o.mp4", 2), ("frames", 6.2)])
def test_disk_full_mid_run_is_exit_6_for_every_output_kind(tmp_path, models, output, disk_mb):
    """A small disk that the estimate fits (detailed footage: 0.25 bytes per pixel for
    video, 2 for PNG, plus a 1 MB margin) but the noise clip does not (--crf 0, PNGs of
    noise): the run starts, the disk fills up, and video and PNG frames both end with
    exit 6 naming the output, leaving the disk empty."""
    src = _noise_video(tmp_path / "noise.mp4")
    keys = extract_keys(src, tmp_path / "keys", [0])
    disk = tmp_path / "disk"
    disk.mkdir()
    cmd = (f"mount -t tmpfs -o size={int(disk_mb * 1024)}k tmpfs {disk} && {sys.executable} -m tpn_cli "
           f"colorize {src} --keyframes {keys} --weights {models['colour']} -o {disk / output} --crf 0 "
           f"--no-snap-check --json; echo rc=$?; ls -A {disk}")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    r = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True, env=env)
    lines = r.stdout.splitlines()
    obj = _one_json(lines[0])["error"]
    assert lines[1] == "rc=6" and obj["code"] == "OUTPUT_NOT_WRITABLE", r.stderr  # not NO_SPACE up front
    assert "No space left" in obj["message"] or "cannot write" in obj["message"], obj
    assert output in obj["path"] and lines[2:] == [], r.stdout  # the disk is empty again


# -- signals and stale partials ---------------------------------------------------------
@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("long")
    frames = [f.image for f in VideoReader(DOG).frames()]
    with VideoWriter(d / "long.mp4", width=160, height=90, fps=Fraction(25), preset="ultrafast") as w:
        for i in range(1500):  # long enough that the run cannot finish before the signal
            w.write(frames[i % 12])
    return d / "long.mp4", extract_keys(d / "long.mp4", d / "keys", [0])


@pytest.mark.parametrize("sig,output", [(signal.SIGTERM, "c.mp4"), (signal.SIGHUP, "c.mp4"),
                                        (signal.SIGTERM, "frames")])
def test_sigterm_and_sighup_clean_up_like_sigint(tmp_path, models, long_clip, sig, output):
    src, keys = long_clip
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    p = subprocess.Popen([sys.executable, "-m", "tpn_cli", "colorize", str(src), "--keyframes", str(keys),
                          "--weights", str(models["colour"]), "-o", str(out / output), "--batch-size", "1",
                          "--no-snap-check", "--no-shot-detect", "--json"],
                         **interruptible(stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env))
    deadline = time.time() + 60
    while not os.listdir(out) and time.time() < deadline:  # the temporary output appears
        time.sleep(0.05)
    assert os.listdir(out), "the run never started writing"
    time.sleep(0.3)
    p.send_signal(sig)
    stdout, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig, err.decode()
    obj = _one_json(stdout.decode())["error"]
    assert obj["code"] == "INTERRUPTED" and obj["exit_code"] == 128 + sig
    assert signal.Signals(sig).name in err.decode()
    assert os.listdir(out) == []


def test_stale_partials_of_a_dead_process_are_removed(tmp_path, keys, models):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # its pid now names no process
    stale_file = tmp_path / f".o.tpn-partial-{dead.pid}-0123abcd.mp4"
    stale_file.write_bytes(b"half a video")
    stale_dir = tmp_path / f".o.tpn-partial-{dead.pid}-4567cdef.mkv"  # the HDR intermediate's name
    stale_dir.mkdir()
    alive = tmp_path / f".o.tpn-partial-{os.getpid()}-89abcdef.mp4"  # a running tpn's: kept
    alive.write_bytes(b"in progress")
    other = tmp_path / f".other.tpn-partial-{dead.pid}-0123abcd.mp4"  # another output's: kept
    other.write_bytes(b"not ours")
    code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"],
                           "-o", tmp_path / "o.mp4", "-q")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["keys", "o.mp4", alive.name, other.name])
