"""`tpn colorize` and `tpn extract` end to end on the real clips of tests/data."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _cli_util import (DOG, SUBS, VFR, extract_keys, models, one_thread, packets, psnr,  # noqa: F401
                       run_cli)
from tpn_cli.media import FrameFolderReader, VideoReader, read_image


def _colorize(models, video, keys, out, *extra):
    return run_cli("colorize", video, "--keyframes", keys, "--weights", models["colour"],
                   "-o", out, "-q", *extra)


def test_video_keeps_size_fps_timestamps_audio(tmp_path, models):
    keys = extract_keys(DOG, tmp_path / "keys", [0, 6])
    out = tmp_path / "dog_color.mp4"
    code, stdout, stderr = _colorize(models, DOG, keys, out, "--json", "--batch-size", "3")
    assert code == 0, stderr
    summary = json.loads(stdout)
    assert summary["frames"] == 12 and summary["output"] == str(out)
    assert {"fps", "seconds", "device", "backend", "peak_memory_mb"} <= set(summary)
    a, b = VideoReader(DOG), VideoReader(out)
    assert (b.size, b.fps, b.color) == (a.size, a.fps, a.color)
    fa, fb = list(a.frames()), list(b.frames())
    assert len(fb) == len(fa) == 12
    assert [f.time for f in fb] == [f.time for f in fa]  # 29.97: exact pts kept
    # the source is in colour, so "perfect" key-frames give back nearly the source
    assert min(psnr(x.image, y.image) for x, y in zip(fa, fb)) > 30
    assert packets(out, "audio") == packets(DOG, "audio")  # audio bit-exact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dog_color.mp4", "keys"]


def test_vfr_and_subtitles_kept(tmp_path, models):
    keys = extract_keys(VFR, tmp_path / "k", [0])
    out = tmp_path / "vfr.mkv"
    assert _colorize(models, VFR, keys, out)[0] == 0
    times = [round(f.time * 1000) for f in VideoReader(out).frames()]
    assert times == [0, 33, 66, 140, 180, 400, 433, 500, 620, 700]

    keys = extract_keys(SUBS, tmp_path / "k2", [0])
    out = tmp_path / "subs.mkv"
    assert _colorize(models, SUBS, keys, out, "--mode", "blend")[0] == 0
    assert packets(out, "subtitles") == packets(SUBS, "subtitles")
    assert packets(out, "audio") == packets(SUBS, "audio")


def test_frames_output_agrees_with_video_output(tmp_path, models):
    keys = extract_keys(DOG, tmp_path / "keys", [0, 5, 10])
    assert _colorize(models, DOG, keys, tmp_path / "frames", "--mode", "nearest")[0] == 0
    assert _colorize(models, DOG, keys, tmp_path / "v.mkv", "--mode", "nearest", "--crf", "0")[0] == 0
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == [f"{i:05d}.png" for i in range(12)]
    video = list(VideoReader(tmp_path / "v.mkv").frames())
    for f in video:
        png = read_image(tmp_path / "frames" / f"{f.index:05d}.png")
        assert png.shape == (90, 160, 3)
        assert psnr(png, f.image) > 38  # same run; only 4:2:0 chroma of the video differs


def test_key_frames_get_their_own_colour_and_range(tmp_path, models):
    keys = extract_keys(DOG, tmp_path / "keys", [4])
    out = tmp_path / "part"
    code, _, err = _colorize(models, DOG, keys, out, "--start", "3", "--end", "8", "--mode", "blend")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(3, 8)]
    key = read_image(keys / "00004.png")
    assert psnr(read_image(out / "00004.png"), key) > 45  # L of the frame + ab of the key


def test_dry_run_prints_plan_and_writes_nothing(tmp_path, models):
    keys = extract_keys(DOG, tmp_path / "keys", [0, 5, 10])
    code, out, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"],
                             "--mode", "blend", "--dry-run", "-o", tmp_path / "x.mp4")
    assert code == 0, err
    assert "frames 1-4 <- keys 0+5" in out and "frames 11" not in out.split("frame 10 <- key 10")[0]
    assert "work size 160x90" in out and "device    cpu" in out and "MB peak" in out
    code, out, _ = run_cli("colorize", DOG, "--keyframes", keys, "--dry-run", "--json",
                           "--work-size", "45", "--weights", "no-such-model")
    plan = json.loads(out)
    assert code == 0 and plan["work_size"] == [80, 45] and plan["weights"] is None
    assert "tpn weights download no-such-model" in plan["weights_error"]
    assert not (tmp_path / "x.mp4").exists()


def test_blend_is_the_default_schedule(tmp_path, models):
    """Without --mode, colorize blends both neighbouring keys (issue 19: the nearest key
    alone falls below the two-key flow baseline); with one key, frames take it alone."""
    keys = extract_keys(DOG, tmp_path / "keys", [0, 6])
    code, out, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"],
                             "--dry-run", "-o", tmp_path / "x.mp4")
    assert code == 0, err
    assert "mode      blend" in out and "frames 1-5 <- keys 0+6 (blend" in out
    assert "frames 6-11 <- key 6" in out
    one = extract_keys(DOG, tmp_path / "one", [4])
    code, out, err = run_cli("colorize", DOG, "--keyframes", one, "--weights", models["colour"],
                             "--dry-run", "-o", tmp_path / "y.mp4")
    assert code == 0 and "mode      blend" in out and "frames 0-11 <- key 4" in out


def test_extract_names_frames_by_index(tmp_path):
    code, _, err = run_cli("extract", DOG, "-o", tmp_path / "k", "--every", "5")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["00000.png", "00005.png", "00010.png"]
    frames = {f.index: f.image for f in VideoReader(DOG).frames()}
    assert np.array_equal(read_image(tmp_path / "k" / "00005.png"), frames[5])
    assert run_cli("extract", DOG, "-o", tmp_path / "k2", "--frames", "3,11", "--format", "jpg")[0] == 0
    assert FrameFolderReader(tmp_path / "k2").numbers == [3, 11]
    code, _, err = run_cli("extract", DOG, "-o", tmp_path / "k3", "--frames", "12")
    assert code == 3 and "past the end" in err


def test_folder_input_and_default_output_name(tmp_path, models):
    run_cli("extract", DOG, "-o", tmp_path / "clip", "--every", "1")
    keys = extract_keys(DOG, tmp_path / "keys", [0])
    code, _, err = run_cli("colorize", tmp_path / "clip", "--keyframes", keys,
                           "--weights", models["colour"], "-q")
    assert code == 0, err
    assert len(list((tmp_path / "clip_color").iterdir())) == 12
    # the video default is NAME_color.EXT next to the input
    src = tmp_path / "dog.mp4"
    src.write_bytes(DOG.read_bytes())
    assert run_cli("colorize", src, "--keyframes", keys, "--weights", models["colour"], "-q")[0] == 0
    assert VideoReader(tmp_path / "dog_color.mp4").count_frames() == 12


@pytest.mark.parametrize("batch", ["1", "5"])
def test_batch_size_does_not_change_the_result(tmp_path, models, batch):
    keys = extract_keys(DOG, tmp_path / "keys", [0, 6])
    out = tmp_path / "f"
    assert _colorize(models, DOG, keys, out, "--mode", "blend", "--batch-size", batch)[0] == 0
    ref = tmp_path / "ref"
    assert _colorize(models, DOG, keys, ref, "--mode", "blend", "--batch-size", "4")[0] == 0
    for p in sorted(ref.iterdir()):
        assert np.abs(read_image(p).astype(int) - read_image(out / p.name)).max() <= 1


def test_black_and_white_film_gets_colour(tmp_path, models):
    """The real use case: a grayscale video, key-frames painted in colour."""
    from fractions import Fraction

    from tpn_cli.keyframes import is_grayscale
    from tpn_cli.media import VideoWriter

    src = list(VideoReader(DOG).frames())
    bw = tmp_path / "bw.mp4"
    with VideoWriter(bw, width=160, height=90, fps=Fraction(30000, 1001), crf=10,
                     time_base=Fraction(1, 30000)) as w:
        for f in src:
            y = f.image.astype(np.float32) @ np.array([0.2126, 0.7152, 0.0722], np.float32)
            w.write(np.repeat(np.clip(y + 0.5, 0, 255).astype(np.uint8)[..., None], 3, 2), pts=f.pts)
    keys = extract_keys(DOG, tmp_path / "keys", [0, 6])  # "painted": the true colours
    code, _, err = _colorize(models, bw, keys, tmp_path / "c.mp4", "--mode", "nearest")
    assert code == 0, err
    out = list(VideoReader(tmp_path / "c.mp4").frames())
    assert not any(is_grayscale(f.image) for f in out)
    gray_psnr = np.mean([psnr(g.image, s.image) for g, s in zip(VideoReader(bw).frames(), src)])
    col_psnr = np.mean([psnr(o.image, s.image) for o, s in zip(out, src)])
    assert col_psnr > gray_psnr + 3, (col_psnr, gray_psnr)


def test_container_picks_a_fitting_encoder(tmp_path, models):
    keys = extract_keys(DOG, tmp_path / "keys", [0])
    code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"],
                           "-o", tmp_path / "o.webm")
    assert code == 0, err
    assert "cannot be stored in .webm" in err  # AAC does not fit WebM: said, not silent
    r = VideoReader(tmp_path / "o.webm")
    assert r.codec == "vp9" and r.count_frames() == 12
    assert _colorize(models, DOG, keys, tmp_path / "l.mkv", "--codec", "ffv1")[0] == 0
    assert VideoReader(tmp_path / "l.mkv").codec == "ffv1"


def test_start_end_as_times_use_real_timestamps(tmp_path, models):
    keys = extract_keys(VFR, tmp_path / "keys", [0])
    code, out, err = run_cli("colorize", VFR, "--keyframes", keys, "--weights", models["colour"],
                             "--start", "0.1s", "--end", "0:00.45", "--dry-run", "--json")
    assert code == 0, err
    assert json.loads(out)["frame_range"] == [3, 6]  # frames at 140..433 ms of the VFR clip
    code, _, err = run_cli("colorize", VFR, "--keyframes", keys, "--start", "soon", "--dry-run")
    assert code == 2 and "soon" in err


def test_deep_and_444_sources_keep_their_format(tmp_path, models):
    from _cli_util import DATA
    from tpn_cli.media import VideoWriter

    r = VideoReader(DOG, depth=16)
    ten = tmp_path / "ten.mkv"
    with VideoWriter.like(r, ten, pix_fmt="yuv420p10le", preset="ultrafast", copy_streams_from=None) as w:
        for f in r.frames():
            w.write(f.image, f.pts)
    keys = extract_keys(DOG, tmp_path / "keys", [0])
    assert _colorize(models, ten, keys, tmp_path / "o.mkv", "--no-snap-check")[0] == 0
    assert VideoReader(tmp_path / "o.mkv").pix_fmt == "yuv420p10le"
    bed = DATA / "bedroom_444.mkv"
    keys = extract_keys(bed, tmp_path / "bkeys", [0])
    assert _colorize(models, bed, keys, tmp_path / "b.mkv")[0] == 0
    assert VideoReader(tmp_path / "b.mkv").pix_fmt == "yuv444p"


def test_rotated_phone_video_works_in_display_orientation(tmp_path, models):
    """A portrait phone clip is stored sideways with a rotation tag: key-frames are
    extracted and painted upright, and the output is upright (no tag needed)."""
    from fractions import Fraction

    from tpn_cli.media import VideoWriter

    rot = tmp_path / "rot.mp4"
    with VideoWriter(rot, width=160, height=90, fps=Fraction(25), rotation=90, preset="ultrafast") as w:
        for f in VideoReader(DOG).frames():
            w.write(f.image)
    assert run_cli("extract", rot, "-o", tmp_path / "keys", "--frames", "0")[0] == 0
    assert read_image(tmp_path / "keys" / "00000.png").shape == (160, 90, 3)  # upright
    code, _, err = _colorize(models, rot, tmp_path / "keys", tmp_path / "o.mp4")
    assert code == 0, err
    out = VideoReader(tmp_path / "o.mp4")
    assert out.size == (90, 160) and out.rotation == 0 and out.count_frames() == 12
    upright = VideoReader(rot, autorotate=True)
    assert min(psnr(a.image, b.image) for a, b in zip(out.frames(), upright.frames())) > 30


def test_chroma_upsample_option(tmp_path, models):
    keys = extract_keys(DOG, tmp_path / "keys", [0])
    outs = {}
    for method in ("guided", "bilinear"):
        out = tmp_path / method
        # work at half size so that the colour is up-sampled
        code, _, err = _colorize(models, DOG, keys, out, "--end", "4", "--work-size", "45",
                                 "--chroma-upsample", method)
        assert code == 0, err
        outs[method] = [read_image(out / f"{i:05d}.png") for i in range(4)]
    assert np.array_equal(outs["guided"][0], outs["bilinear"][0])  # the key: its own colour
    assert not np.array_equal(outs["guided"][1], outs["bilinear"][1])
    code, _, err = _colorize(models, DOG, keys, tmp_path / "x", "--chroma-upsample", "nearest")
    assert code == 2 and "nearest" in err


def test_shipped_model_colours_between_keys(tmp_path):
    """The shipped colour-v1 (flow-aligned: its colour is mixed with the flow baseline's)
    end to end: the frames between two keys come back close to the source's colours."""
    from _cli_util import ROOT

    keys = extract_keys(DOG, tmp_path / "keys", [0, 11])
    code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", ROOT / "weights" / "colour-v1.tpn",
                           "-o", tmp_path / "out", "--mode", "blend", "-q")
    assert code == 0, err
    src = list(VideoReader(DOG).frames())
    out = [read_image(tmp_path / "out" / f"{i:05d}.png") for i in range(12)]
    assert np.mean([psnr(o, s.image) for o, s in zip(out[1:11], src[1:11])]) > 30


def test_default_runs_the_flow_part_alone_and_tpn_mixes_the_network_in(tmp_path, monkeypatch):
    """The default (and --no-tpn): no model is loaded (a missing one does not matter), the
    frames between the keys come from the flow-warped keys and the previous frame and
    stay close to the source; --tpn wants the TPN's weights and writes different frames;
    the plan says which ran."""
    keys = extract_keys(DOG, tmp_path / "keys", [0, 11])
    base = ("colorize", DOG, "--keyframes", keys, "-q")
    monkeypatch.setenv("TPN_WEIGHTS_DIR", str(tmp_path / "no-weights-here"))
    for flag in ((), ("--no-tpn",)):
        code, out, err = run_cli(*base, *flag, "--dry-run", "--json", "-o", tmp_path / "a")
        plan = json.loads(out)
        assert code == 0, err
        assert plan["uses_model"] is False and plan["weights_error"] is None
        assert not plan["propagation"].startswith("the colour TPN")
    code, _, err = run_cli(*base, "-o", tmp_path / "a")
    assert code == 0, err
    code, _, err = run_cli(*base, "--tpn", "-o", tmp_path / "b")  # --tpn wants the TPN's weights
    assert code == 4 and "colour" in err
    monkeypatch.delenv("TPN_WEIGHTS_DIR")
    code, _, err = run_cli(*base, "--tpn", "-o", tmp_path / "b")
    assert code == 0, err
    src = list(VideoReader(DOG).frames())
    flow_only = [read_image(tmp_path / "a" / f"{i:05d}.png") for i in range(12)]
    mixed = [read_image(tmp_path / "b" / f"{i:05d}.png") for i in range(12)]
    assert np.mean([psnr(o, s.image) for o, s in zip(flow_only[1:11], src[1:11])]) > 30
    assert any(not np.array_equal(a, b) for a, b in zip(flow_only[1:11], mixed[1:11]))
    assert all(np.array_equal(a, b) for a, b in ((flow_only[0], mixed[0]), (flow_only[11], mixed[11])))
