"""Shot changes: the cut detector on real frames, the plan kept within shots, and
`tpn colorize` never taking colour across a cut."""
from __future__ import annotations

import json

import numpy as np
import pytest

from _cli_util import (DOG, luma_rgb, models, one_thread, run_cli, two_shot_frames,  # noqa: F401
                       write_video)
from tpn_cli import shots
from tpn_cli.keyframes import describe_plan, fallback_key, plan
from tpn_cli.media import FrameFolderReader, VideoReader, gray_thumbnail, read_image, write_image

CUT = 12  # two_shot_frames: dog 0-11, goat 12-27


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return two_shot_frames()


@pytest.fixture(scope="module")
def bw_video(frames, tmp_path_factory):
    """The two shots in black and white, as a colourist receives them."""
    return write_video(tmp_path_factory.mktemp("bw") / "two_shots.mp4", [luma_rgb(f) for f in frames])


def _thumbs(images):
    return [gray_thumbnail(im, *shots.THUMB_SIZE) for im in images]


def _gain(thumbs, gains, offset=0.0):
    return [np.clip(t.astype(np.float32) * g + offset * (g != 1), 0, 255).astype(np.uint8)
            for t, g in zip(thumbs, gains)]


# -- the detector ---------------------------------------------------------------------------
def test_cut_found_exactly_in_video_and_folder(bw_video, frames, tmp_path):
    assert shots.find_cuts(VideoReader(bw_video).thumbnails(*shots.THUMB_SIZE)) == [CUT]
    for i, f in enumerate(frames):
        write_image(tmp_path / f"{i:05d}.png", f)
    assert shots.find_cuts(FrameFolderReader(tmp_path).thumbnails(*shots.THUMB_SIZE)) == [CUT]
    # a range starting later keeps the video's own indices
    assert shots.find_cuts(VideoReader(bw_video).thumbnails(*shots.THUMB_SIZE, start=5, end=20)) == [CUT]


def test_no_cut_within_one_shot_flash_or_fade(frames):
    goat = _thumbs(frames[CUT:])
    assert shots.find_cuts(enumerate(goat)) == []
    flash = [1.0] * len(goat)
    flash[6] = 1.8  # a camera flash: one frame blown out
    assert shots.find_cuts(enumerate(_gain(goat, flash, 60.0))) == []
    fade = [1.0, 0.6, 0.3, 0.1, 0.03, 0.03, 0.1, 0.3, 0.6, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert shots.find_cuts(enumerate(_gain(goat, fade))) == []
    # flicker of an old print: every frame's exposure differs by up to ±20 %
    rng = np.random.default_rng(0)
    assert shots.find_cuts(enumerate(_gain(goat, 1 + 0.2 * rng.uniform(-1, 1, len(goat))))) == []


def test_fade_through_black_to_another_scene_is_a_cut(frames):
    t = _thumbs(frames)
    out_in = [1.0] * 8 + [0.6, 0.3, 0.1, 0.02] + [0.02, 0.1, 0.3, 0.6] + [1.0] * 12
    cuts = shots.find_cuts(enumerate(_gain(t, out_in)))
    assert len(cuts) == 1 and 11 <= cuts[0] <= 15, cuts


def test_threshold_and_memory(frames):
    t = _thumbs(frames)
    assert shots.find_cuts(enumerate(t), threshold=1.9) == []  # nothing is that different
    seen = []

    def stream():  # the detector must not hold more than its window
        for i, x in enumerate(t):
            seen.append(i)
            yield i, x

    found = shots._iter_cuts(stream(), shots.DEFAULT_THRESHOLD)
    assert next(found) == CUT and seen[-1] <= CUT + shots.WINDOW + 1


# -- the plan -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["online", "nearest", "blend"])
def test_plan_never_crosses_a_cut(mode):
    cuts = [30, 60]
    keys = [0, 25, 35, 59, 90]
    shot_of = lambda i: sum(i >= c for c in cuts)  # noqa: E731
    for a in plan(100, keys, mode, cuts=cuts):
        assert all(shot_of(k) == shot_of(a.frame) for k, _ in a.sources), a
    # frames of shot 2 before its first key take that key (not key 25 before the cut)
    assert plan(100, keys, mode, start=30, end=35, cuts=cuts)[0].sources == ((35, 1.0),)
    # without cuts the same frames would take key 25
    assert plan(100, keys, "online", start=30, end=31)[0].sources == ((25, 1.0),)


def test_keyless_shot_takes_the_nearest_key_across_its_cuts():
    keys = [0, 20, 70]
    assert fallback_key(keys, 40, 60, "nearest") == 70   # 59 -> 70 is 11, 40 <- 20 is 20
    assert fallback_key(keys, 40, 60, "online") == 20    # online: only what came before
    assert fallback_key(keys, 25, 45, "nearest") == 20   # 5 before vs 26 after
    assert fallback_key([50], 0, 10, "online") == 50     # nothing before: the first key
    assert {a.key for a in plan(100, keys, "blend", 40, 60, cuts=[40, 60])} == {70}
    assert shots.keyless_shots(shots.shots_of([40, 60], 0, 100), keys) == [shots.Shot(40, 60)]
    lines = describe_plan(plan(100, keys, "nearest", cuts=[40, 60]), "nearest", [40, 60])
    assert "shot 2: frames 40-59 (NO KEY-FRAME: takes key 70 across the cut; add a key-frame in frames 40-59)" in lines
    assert "  frames 0-10 <- key 0" in lines and "shot 3: frames 60-99" in lines


# -- the command ----------------------------------------------------------------------------
def _tinted(image, rgb) -> np.ndarray:
    """A 'painted' key-frame: the frame's lightness in a strong tint."""
    return np.clip(luma_rgb(image).astype(np.float32) * np.array(rgb, np.float32), 0, 255).astype(np.uint8)


RED, BLUE = (1.3, 0.9, 0.7), (0.7, 0.9, 1.3)


def _warmth(image: np.ndarray) -> float:
    """Red minus blue, averaged: > 0 for the red key's colours, < 0 for the blue key's."""
    return float(image[..., 0].astype(np.float32).mean() - image[..., 2].astype(np.float32).mean())


def test_colorize_never_takes_colour_from_the_other_shot(bw_video, frames, models, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    write_image(keys / "00000.png", _tinted(frames[0], RED))       # shot 1 painted red
    write_image(keys / "00027.png", _tinted(frames[27], BLUE))     # shot 2 painted blue
    base = ["colorize", bw_video, "--keyframes", keys, "--weights", models["colour"], "-q"]
    code, out, err = run_cli(*base, "-o", tmp_path / "shots", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["cuts"] == [CUT] and summary["shots_without_key"] == []
    got = [read_image(tmp_path / "shots" / f"{i:05d}.png") for i in range(28)]
    assert all(_warmth(g) > 5 for g in got[:CUT])
    assert all(_warmth(g) < -5 for g in got[CUT:]), [round(_warmth(g)) for g in got[CUT:]]
    # the same run without shot detection: frames 12-13 are nearer key 0 and turn red
    assert run_cli(*base, "-o", tmp_path / "plain", "--no-shot-detect")[0] == 0
    plain = [read_image(tmp_path / "plain" / f"{i:05d}.png") for i in (CUT, CUT + 1)]
    assert all(_warmth(g) > 5 for g in plain)


def test_shot_without_key_warns_and_still_runs(bw_video, frames, models, tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    write_image(keys / "00003.png", _tinted(frames[3], RED))
    base = ["colorize", bw_video, "--keyframes", keys, "--weights", models["colour"]]
    code, out, err = run_cli(*base, "--dry-run")
    assert code == 0, err
    assert "shots     2 (cuts at 12); 1 without a key-frame" in out
    assert "warning: shot frames 12-27 has no key-frame: it takes key 3 from across the cut at frame 12" in err
    assert "add a key-frame in frames 12-27" in err
    code, out, err = run_cli(*base, "-o", tmp_path / "o.mp4", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["shots_without_key"] == [[12, 27]] and summary["frames"] == 28
    assert any("frames 12-27 has no key-frame" in w for w in summary["warnings"])
    assert VideoReader(tmp_path / "o.mp4").count_frames() == 28
    # a range that holds only shot 1 has nothing to warn about
    code, out, err = run_cli(*base, "--dry-run", "--json", "--end", "12")
    assert code == 0 and json.loads(out)["shots_without_key"] == [] and "warning" not in err


def test_hdr_plan_is_per_shot_and_detection_can_be_turned_off(bw_video, models, tmp_path):
    from _cli_util import hdr_keys

    keys = hdr_keys(DOG, tmp_path / "exr", [0])
    base = ["hdr", bw_video, "--hdr-keys", keys, "--weights", models["hdr"], "--dry-run", "--json"]
    code, out, _ = run_cli(*base)
    assert code == 0 and json.loads(out)["cuts"] == [CUT]
    code, out, err = run_cli(*base, "--no-shot-detect")
    plan_ = json.loads(out)
    assert code == 0 and plan_["cuts"] == [] and not plan_["shot_detect"] and "warning" not in err
    code, _, err = run_cli(*base[:-2], "--cut-threshold", "3", "--dry-run")
    assert code == 2 and "cut-threshold" in err


def test_frame_folder_input_numbered_from_1(frames, tmp_path):
    """Cuts are found on a folder too; the warning names the files to paint."""
    src, keys = tmp_path / "film", tmp_path / "keys"
    src.mkdir()
    keys.mkdir()
    for i, f in enumerate(frames):
        write_image(src / f"frame_{i + 1:04d}.png", luma_rgb(f))
    write_image(keys / "0001.png", _tinted(frames[0], RED))  # the file frame_0001 = index 0
    code, out, err = run_cli("colorize", src, "--keyframes", keys, "--dry-run", "--json")
    assert code == 0, err
    plan_ = json.loads(out)
    assert plan_["cuts"] == [CUT] and plan_["shots_without_key"] == [[12, 27]]
    assert "shot frames 12-27 (files numbered 13-28) has no key-frame" in plan_["warnings"][0]


def test_many_keyless_shots_are_summarised(frames, models, tmp_path):
    """A montage (the two shots alternating, 6 cuts) with one key-frame: 5 warnings, then
    one line for the rest; --json lists every shot."""
    montage = write_video(tmp_path / "montage.mp4", [luma_rgb(f) for f in (frames[:CUT] + frames[CUT:]) * 3
                                                     + frames[:CUT]])
    keys = tmp_path / "keys"
    keys.mkdir()
    write_image(keys / "00000.png", _tinted(frames[0], RED))
    code, out, err = run_cli("colorize", montage, "--keyframes", keys, "--weights", models["colour"],
                             "--dry-run", "--json")
    plan_ = json.loads(out)
    assert code == 0 and plan_["cuts"] == [12, 28, 40, 56, 68, 84]
    assert len(plan_["shots_without_key"]) == 6 and len(plan_["warnings"]) == 6
    assert plan_["warnings"][-1].startswith("1 more shot has no key-frame (frames 84-95)")
