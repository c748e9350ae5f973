"""Key-frame discovery, checks and schedule planning (pure functions)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tpn_cli.errors import BadInputError, UsageError
from tpn_cli.keyframes import (check_indices, check_size, describe_plan, find_keyframes,
                               index_base_hint, iter_plan, plan, segments)
from tpn_cli.media.frames import write_image
from tpn_cli.media.video import VideoReader

DATA = Path(__file__).parent / "data"


@pytest.fixture
def keydir(tmp_path):
    """Real key-frames: frames 0, 5 and 11 of the dog clip, named in three styles."""
    r = VideoReader(DATA / "dog_2997_audio.mp4")
    names = {0: "frame_000000.png", 5: "ref_5.jpg", 11: "shot1_k0011.png"}
    for f in r.frames():
        if f.index in names:
            write_image(tmp_path / names[f.index], f.image)
    return tmp_path


def test_find_keyframes(keydir):
    keys = find_keyframes(keydir)
    assert [(k.index, k.path.name) for k in keys] == [
        (0, "frame_000000.png"), (5, "ref_5.jpg"), (11, "shot1_k0011.png")]
    check_indices(keys, 12)
    assert index_base_hint(keys, 12) is None


def test_index_base_1(tmp_path):
    for n in (1, 6, 12):
        write_image(tmp_path / f"{n:04d}.png", np.zeros((4, 4, 3), np.uint8))
    keys0 = find_keyframes(tmp_path)
    assert "--index-base 1" in index_base_hint(keys0, 12)
    with pytest.raises(BadInputError) as ei:
        check_indices(keys0, 12, source="clip.mp4")
    msg = str(ei.value)
    assert ei.value.exit_code == 3 and ei.value.code == "KEYFRAME_OUT_OF_RANGE"
    assert "0012.png" in msg and "past the end" in msg and "12 frames" in msg and "--index-base 1" in msg
    keys1 = find_keyframes(tmp_path, index_base=1)
    assert [k.index for k in keys1] == [0, 5, 11] and [k.number for k in keys1] == [1, 6, 12]
    check_indices(keys1, 12)
    write_image(tmp_path / "0000.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(BadInputError, match="below --index-base"):
        find_keyframes(tmp_path, index_base=1)
    with pytest.raises(UsageError):
        find_keyframes(tmp_path, index_base=2)


def test_keyframe_folder_errors(tmp_path):
    with pytest.raises(BadInputError, match="no key-frame images"):
        find_keyframes(tmp_path)
    write_image(tmp_path / "a_10.png", np.zeros((4, 4, 3), np.uint8))
    write_image(tmp_path / "b_010.jpg", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(BadInputError, match="a_10.png and b_010.jpg both give frame number 10"):
        find_keyframes(tmp_path)
    with pytest.raises(BadInputError, match="past the end"):
        check_indices(find_keyframes(tmp_path / "a_10.png"), 10)
    with pytest.raises(BadInputError, match="no key-frames"):
        check_indices([], 10)


def test_check_size():
    assert not check_size((160, 90), (160, 90)).resize
    s = check_size((1280, 720), (160, 90), path="k/0005.png")
    assert s.resize and (s.width, s.height) == (160, 90) and "0005.png" in s.note
    with pytest.raises(BadInputError) as ei:
        check_size((640, 480), (160, 90), path="k/0005.png")
    msg = str(ei.value)
    assert "0005.png" in msg and "4:3" in msg and "16:9" in msg and "fix:" in msg


def _table(mode, n=12, keys=(2, 6, 10)):
    return [(a.frame, tuple((k, round(w, 3)) for k, w in a.sources)) for a in plan(n, keys, mode)]


def test_plan_online():
    t = dict(_table("online"))
    assert t[0] == t[1] == t[2] == ((2, 1.0),)       # before the first key: the first
    assert t[5] == ((2, 1.0),) and t[6] == ((6, 1.0),) and t[11] == ((10, 1.0),)


def test_plan_nearest():
    t = dict(_table("nearest"))
    assert t[3] == ((2, 1.0),) and t[4] == ((2, 1.0),)  # tie → earlier key
    assert t[5] == ((6, 1.0),) and t[0] == ((2, 1.0),) and t[11] == ((10, 1.0),)


def test_plan_blend():
    t = dict(_table("blend"))
    assert t[3] == ((2, 0.75), (6, 0.25))
    assert t[4] == ((2, 0.5), (6, 0.5))
    assert t[6] == ((6, 1.0),) and t[0] == ((2, 1.0),) and t[11] == ((10, 1.0),)
    for a in plan(40, [0, 7, 19, 33], "blend"):
        assert sum(w for _, w in a.sources) == pytest.approx(1.0)
        assert all(0 <= w <= 1 for _, w in a.sources)
    assert plan(12, [2, 6, 10], "blend")[5].key == 6


def test_plan_range_segments_and_errors():
    part = plan(100, [0, 50], "online", start=45, end=55)
    assert [a.frame for a in part] == list(range(45, 55))
    assert segments(part) == [((0,), 45, 49), ((50,), 50, 54)]
    lines = describe_plan(plan(12, [0, 6], "blend"), "blend")
    assert lines[0] == "frame 0 <- key 0" and lines[-1] == "frames 6-11 <- key 6"
    assert "keys 0+6" in lines[1]
    assert sum(1 for _ in iter_plan(10 ** 5, [0], "online")) == 10 ** 5  # streaming
    with pytest.raises(UsageError):
        plan(10, [], "online")
    with pytest.raises(UsageError):
        plan(10, [0], "sideways")


def test_snap_check_finds_off_by_one():
    from tpn_cli.keyframes import snap_check
    frames = {f.index: f.image for f in VideoReader(DATA / "dog_2997_audio.mp4").frames(0, 12)}
    near = {i: frames[i] for i in (3, 4, 5, 6, 7)}
    res = snap_check(frames[5], near, 5)
    assert res.ok and res.best == 5
    res = snap_check(frames[11], {i: frames[i] for i in (0, 1, 2)}, 1, path="keys/0001.png")
    assert res.best in (0, 1, 2)
    # key painted on frame 0 but named 6: frame 0 must win clearly among 0..8 vs 6
    res = snap_check(frames[0], {i: frames[i] for i in (0, 6)}, 6, path="keys/0006.png")
    assert not res.ok and res.best == 0 and "0006.png" in res.note and "frame 0" in res.note


def test_colour_check_and_resize():
    from tpn_cli.keyframes import check_colour_keyframe, is_grayscale
    from tpn_cli.media.frames import resize_image
    img = VideoReader(DATA / "dog_2997_audio.mp4").read(0).image
    check_colour_keyframe(img)
    gray = np.repeat(img.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    assert is_grayscale(gray)
    with pytest.raises(BadInputError, match="no colour") as ei:
        check_colour_keyframe(gray, "keys/0000.png")
    assert "0000.png" in str(ei.value)
    small = resize_image(img, 80, 45)
    assert small.shape == (45, 80, 3) and small.dtype == np.uint8
    assert abs(float(small.mean()) - float(img.mean())) < 1.5
    assert resize_image(np.ones((4, 6, 3), np.float32), 3, 2).dtype == np.float32
