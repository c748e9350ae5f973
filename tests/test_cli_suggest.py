"""`tpn suggest-keyframes`: shot starts first, the budget kept, the rest where the look
changes; --extract names frames so that --keyframes picks them up."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _cli_util import (DOG, luma_rgb, models, one_thread, run_cli, two_shot_frames,  # noqa: F401
                       write_video)
from tpn_cli import suggest
from tpn_cli.media import VideoReader, gray_thumbnail, read_image, write_image


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return two_shot_frames()  # dog 0-11, goat 12-27


@pytest.fixture(scope="module")
def video(frames, tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("suggest") / "two_shots.mp4", [luma_rgb(f) for f in frames])


def _suggest(*args):
    code, out, err = run_cli("suggest-keyframes", *args, "--json")
    return code, (json.loads(out) if out.strip() else None), err


def test_shot_starts_first_then_within_budget(video):
    code, s, err = _suggest(video, "--budget", "2")
    assert code == 0, err
    assert s["cuts"] == [12] and s["shots"] == [[0, 11], [12, 27]]
    assert [(k["frame"], k["reason"]) for k in s["keyframes"]] == [(0, "shot start"), (12, "shot start")]
    for budget in (3, 5, 9):
        code, s, _ = _suggest(video, "--budget", str(budget))
        frames_ = [k["frame"] for k in s["keyframes"]]
        assert code == 0 and len(frames_) == budget == len(set(frames_))
        assert {0, 12} <= set(frames_) and frames_ == sorted(frames_) and max(frames_) < 28
        assert s["mean_distance_to_key"] <= s["evenly_spaced_distance_to_key"]
        assert {k["shot"] for k in s["keyframes"] if k["frame"] >= 12} == {2}


def test_budget_below_the_shot_count_covers_the_longest_shot(video):
    code, s, _ = _suggest(video, "--budget", "1")
    assert code == 0 and [k["frame"] for k in s["keyframes"]] == [12]  # goat: 16 frames, dog 12
    assert s["shots_without_key"] == [[0, 11]]
    code, out, err = run_cli("suggest-keyframes", video, "--budget", "1")
    assert "frames 0-11 get no key-frame (raise --budget to at least 2)" in err
    assert "frames: 12" in out
    code, s, _ = _suggest(video, "--budget", "40")
    assert code == 0 and len(s["keyframes"]) == 28 and "every frame is suggested" in s["warnings"][0]


def test_extra_keys_go_where_the_look_changes():
    """One shot: 20 frames of one picture, then 20 of another. The second key must land
    in the second picture (evenly spaced keys would put it on frame 20, nearer the first
    half's frames 11-19 than key 0 is)."""
    dog = [f.image for f in VideoReader(DOG).frames()]
    thumbs = [gray_thumbnail(dog[0], 64, 36)] * 20 + [gray_thumbnail(dog[0][::-1], 64, 36)] * 20
    a = suggest.analyse(enumerate(thumbs), detect_cuts=False)
    chosen, left_out = suggest.suggest(a, 2)
    assert left_out == [] and chosen[0].frame == 0 and chosen[1].reason == "change"
    assert 20 <= chosen[1].frame < 40
    assert suggest.distance_to_keys(a, [c.frame for c in chosen]) < suggest.distance_to_keys(a, [0, 20])


def test_extract_writes_paintable_keys_that_colorize_picks_up(video, frames, models, tmp_path):
    keys = tmp_path / "keys"
    code, out, err = run_cli("suggest-keyframes", video, "--budget", "3", "--extract", keys)
    assert code == 0, err
    chosen = [int(x) for x in out.split("frames: ")[1].split(",")]
    assert sorted(p.name for p in keys.iterdir()) == [f"{i:05d}.png" for i in chosen]
    decoded = {f.index: f.image for f in VideoReader(video).frames()}
    assert all(np.array_equal(read_image(keys / f"{i:05d}.png"), decoded[i]) for i in chosen)
    for i in chosen:  # "paint" them: the true colours
        write_image(keys / f"{i:05d}.png", frames[i], overwrite=True)
    code, out, err = run_cli("colorize", video, "--keyframes", keys, "--weights", models["colour"],
                             "--dry-run", "--json")
    plan = json.loads(out)
    assert code == 0 and [k["index"] for k in plan["keyframes"]] == chosen
    assert plan["shots_without_key"] == [] and "warning" not in err


def test_frame_folder_numbered_from_1(frames, tmp_path):
    src = tmp_path / "film"
    src.mkdir()
    for i, f in enumerate(frames):
        write_image(src / f"frame_{i + 1:04d}.png", luma_rgb(f))
    code, s, err = _suggest(src, "--budget", "2", "--extract", tmp_path / "keys")
    assert code == 0, err
    assert [(k["frame"], k["number"]) for k in s["keyframes"]] == [(0, 1), (12, 13)]
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["00001.png", "00013.png"]


def test_bad_input_is_refused_clearly(video, tmp_path):
    code, s, err = _suggest(tmp_path / "missing.mp4", "--budget", "3")
    assert code == 3 and "missing.mp4" in err and s["error"]["code"] == "INPUT_MISSING"
    code, _, err = run_cli("suggest-keyframes", video, "--budget", "0")
    assert code == 2 and "--budget" in err
    (tmp_path / "taken").mkdir()
    code, _, err = run_cli("suggest-keyframes", video, "--budget", "2", "--extract", tmp_path / "taken")
    assert code == 6 and "taken" in err and "--overwrite" in err
    code, _, err = run_cli("suggest-keyframes", video, "--budget", "2", "--extract", tmp_path / "k.png")
    assert code == 2 and "folder" in err
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    code, _, err = run_cli("suggest-keyframes", bad, "--budget", "2")
    assert code == 3 and "bad.mp4" in err
