"""Frame folders and single images: naming, 8/16-bit PNG, JPEG, atomic folder writes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tpn_cli.errors import BadInputError, OutputNotWritableError
from tpn_cli.media import open_input
from tpn_cli.media.frames import (FrameFolderReader, FrameFolderWriter, frame_number,
                                  list_frame_files, read_image, write_image)
from tpn_cli.media.video import VideoReader

DATA = Path(__file__).parent / "data"
DOG = DATA / "dog_2997_audio.mp4"


@pytest.mark.parametrize("name,number", [
    ("123.png", 123), ("000123.png", 123), ("frame_000123.jpg", 123), ("shot1_k0123.exr", 123),
    ("ref_000120.png", 120), ("render.0042.exr", 42), ("noindex.png", None), ("x7y.jpeg", 7),
])
def test_frame_number(name, number):
    assert frame_number(name) == number


def _touch_png(path: Path, value: int = 0, size=(8, 6)) -> None:
    Image.new("RGB", size, (value, value, value)).save(path)


def test_list_frame_files_order_and_errors(tmp_path):
    for n in (10, 2, 1):
        _touch_png(tmp_path / f"frame_{n}.png")
    (tmp_path / ".DS_Store").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("ignored")
    assert [n for n, _ in list_frame_files(tmp_path)] == [1, 2, 10]
    _touch_png(tmp_path / "0002.png")
    with pytest.raises(BadInputError, match="both give frame number 2") as ei:
        list_frame_files(tmp_path)
    assert ei.value.exit_code == 3
    (tmp_path / "0002.png").unlink()
    _touch_png(tmp_path / "cover.png")
    with pytest.raises(BadInputError, match="cover.png"):
        list_frame_files(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInputError, match="no frame images") as ei:
        list_frame_files(empty)
    assert str(empty) in str(ei.value)


def test_png_8_and_16_bit_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    img16 = rng.integers(0, 65536, (5, 7, 3), dtype=np.uint16)
    write_image(tmp_path / "a.png", img16)
    assert np.array_equal(read_image(tmp_path / "a.png"), img16)
    img8 = VideoReader(DOG).read(0).image
    write_image(tmp_path / "b.png", img8)
    assert np.array_equal(read_image(tmp_path / "b.png"), img8)
    assert np.array_equal(read_image(tmp_path / "b.png", depth=16), img8.astype(np.uint16) * 257)
    assert np.array_equal(read_image(tmp_path / "a.png", depth=8),
                          ((img16.astype(np.uint32) + 128) // 257).astype(np.uint8))
    gray16 = rng.integers(0, 65536, (4, 4), dtype=np.uint16)
    write_image(tmp_path / "g.png", gray16)
    g = read_image(tmp_path / "g.png")
    assert g.shape == (4, 4, 3) and np.array_equal(g[..., 1], gray16)
    write_image(tmp_path / "c.jpg", img8)
    j = read_image(tmp_path / "c.jpg")
    assert j.shape == img8.shape and np.abs(j.astype(int) - img8).mean() < 4
    with pytest.raises(OutputNotWritableError):
        write_image(tmp_path / "a.png", img16)


def test_corrupt_image(tmp_path):
    (tmp_path / "x.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(BadInputError, match="x.png"):
        read_image(tmp_path / "x.png")


def test_folder_writer_is_atomic_and_agrees_with_video(tmp_path):
    r = VideoReader(DOG)
    out = tmp_path / "frames"
    with FrameFolderWriter(out) as w:
        for f in r.frames(0, 4):
            w.write(f.index, f.image)
        assert not out.exists()  # nothing under the final name before close
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(4)]
    seq = open_input(out, fps=r.fps)
    assert isinstance(seq, FrameFolderReader) and seq.frame_count == 4 and seq.size == r.size
    for a, b in zip(r.frames(0, 4), seq.frames()):
        assert a.index == b.index and np.array_equal(a.image, b.image)
    # failure: target untouched, temporary removed
    with pytest.raises(RuntimeError):
        with FrameFolderWriter(out, overwrite=True) as w:
            w.write(0, np.zeros((90, 160, 3), np.uint8))
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]
    assert np.array_equal(read_image(out / "00000.png"), r.read(0).image)
    # exists without overwrite
    with pytest.raises(OutputNotWritableError, match="--overwrite"):
        FrameFolderWriter(out)
    # overwrite replaces the whole folder
    with FrameFolderWriter(out, overwrite=True, ext=".exr", prefix="f_") as w:
        w.write(7, np.ones((2, 2, 3), np.float32))
    assert [p.name for p in out.iterdir()] == ["f_00007.exr"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_folder_reader_refuses_mixed_sizes(tmp_path):
    _touch_png(tmp_path / "0.png", size=(8, 6))
    _touch_png(tmp_path / "1.png", size=(6, 8))
    r = FrameFolderReader(tmp_path)
    with pytest.raises(BadInputError, match="differs") as ei:
        list(r.frames())
    assert ei.value.frame == 1 and "1.png" in str(ei.value)
