"""Mask reading/writing: palette, grayscale ids, binary, RGB; anti-aliasing refused."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tpn_cli.errors import BadInputError
from tpn_cli.media.masks import default_palette, overlay, read_mask, write_mask
from tpn_cli.media.video import VideoReader

DATA = Path(__file__).parent / "data"


def _ids(h=48, w=64) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    ids = np.zeros((h, w), np.uint8)
    ids[(yy - 20) ** 2 + (xx - 20) ** 2 < 100] = 1
    ids[10:30, 40:60] = 2
    ids[35:45, 5:25] = 3
    return ids


def test_default_palette_is_davis():
    pal = default_palette()
    assert pal.shape == (256, 3)
    assert pal[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert pal[8].tolist() == [64, 0, 0]


def test_palette_roundtrip_keeps_palette(tmp_path):
    ids = _ids()
    pal = np.zeros((256, 3), np.uint8)
    pal[1], pal[2], pal[3] = (250, 10, 10), (10, 250, 10), (200, 200, 0)
    im = Image.fromarray(ids)
    im.putpalette(pal.reshape(-1).tolist())
    im.save(tmp_path / "in.png")
    m = read_mask(tmp_path / "in.png")
    assert m.kind == "palette" and m.object_ids == [1, 2, 3]
    assert np.array_equal(m.ids, ids) and np.array_equal(m.palette[:4], pal[:4])
    write_mask(tmp_path / "out.png", m.ids, palette=m.palette)
    back = Image.open(tmp_path / "out.png")
    assert back.mode == "P"
    assert np.array_equal(np.asarray(back), ids)
    assert back.getpalette()[:12] == pal[:4].reshape(-1).tolist()
    assert [t[0] for t in m.object_table()] == [1, 2, 3]


def test_binary_gray_and_rgb(tmp_path):
    ids = _ids()
    Image.fromarray(((ids == 1) * 255).astype(np.uint8)).save(tmp_path / "bin.png")
    m = read_mask(tmp_path / "bin.png")
    assert m.kind == "binary" and m.object_ids == [1]
    Image.fromarray(ids).save(tmp_path / "gray.png")
    m = read_mask(tmp_path / "gray.png")
    assert m.kind == "gray" and np.array_equal(m.ids, ids)
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255], [255, 255, 0]], np.uint8)
    Image.fromarray(colours[ids]).save(tmp_path / "rgb.png")
    m = read_mask(tmp_path / "rgb.png")
    assert m.kind == "rgb" and len(m.object_ids) == 3
    for k in range(1, 4):  # each colour is one object; palette gives its colour back
        assert np.array_equal(m.palette[m.ids[ids == k][0]], colours[k])
        assert len(np.unique(m.ids[ids == k])) == 1
    write_mask(tmp_path / "g16.png", ids.astype(np.uint16) * 100, fmt="gray")
    m = read_mask(tmp_path / "g16.png", max_objects=400)
    assert m.ids.max() == 300
    write_mask(tmp_path / "b.png", ids, fmt="binary")
    assert set(np.unique(np.asarray(Image.open(tmp_path / "b.png")))) == {0, 255}


def test_void_ignored(tmp_path):
    ids = _ids()
    ids[0, :] = 255
    write_mask(tmp_path / "v.png", ids)
    m = read_mask(tmp_path / "v.png", void=255)
    assert m.object_ids == [1, 2, 3]


def test_antialiased_masks_refused(tmp_path):
    # a hard mask resized with a smooth filter: many grey levels on the edges
    big = Image.fromarray(((_ids(192, 256) > 0) * 255).astype(np.uint8))
    big.resize((64, 48), Image.BILINEAR).save(tmp_path / "soft.png")
    with pytest.raises(BadInputError) as ei:
        read_mask(tmp_path / "soft.png")
    msg = str(ei.value)
    assert ei.value.exit_code == 3 and ei.value.code == "ANTIALIASED_MASK"
    assert "soft.png" in msg and "anti-aliased" in msg and "hard-edged brush" in msg
    # a few edge levels only (each a sliver of pixels) are caught too
    ids = ((_ids(400, 400) > 0) * 255).astype(np.uint8)
    edge = np.argwhere(np.diff(ids.astype(int), axis=1) != 0)[:300]
    for i, (y, x) in enumerate(edge):
        ids[y, x] = (64, 128, 192)[i % 3]
    Image.fromarray(ids).save(tmp_path / "few.png")
    with pytest.raises(BadInputError, match="anti-aliased"):
        read_mask(tmp_path / "few.png")
    # a JPEG-compressed RGB mask: many colours
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255], [255, 255, 0]], np.uint8)
    Image.fromarray(colours[_ids()]).save(tmp_path / "m.jpg", quality=70)
    with pytest.raises(BadInputError, match="colours"):
        read_mask(tmp_path / "m.jpg")


def test_overlay_on_real_frame():
    img = VideoReader(DATA / "dog_2997_audio.mp4").read(0).image[:48, :64]
    ids = _ids()
    out = overlay(img, ids, alpha=0.5)
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert np.array_equal(out[ids == 0], img[ids == 0])
    assert not np.array_equal(out[ids == 1], img[ids == 1])
