"""Key-frames with partial colour: RGBA key-frames whose alpha marks the painted pixels."""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from _cli_util import DOG, ROOT, luma_rgb, one_thread, psnr, run_cli, write_video  # noqa: F401
from tpn_cli.errors import BadInputError
from tpn_cli.keyframes import check_colour_keyframe, is_grayscale, over_frame
from tpn_cli.media import VideoReader, read_image
from tpn_cli.models import infer

COLOUR_V1 = ROOT / "weights" / "colour-v1.tpn"


def _png16(path, rgba16: np.ndarray) -> None:
    """Write a 16-bit RGBA PNG (Pillow cannot)."""
    import av

    frame = av.VideoFrame.from_ndarray(rgba16, format="rgba64le").reformat(format="rgba64be")
    cc = av.CodecContext.create("png", "w")
    cc.width, cc.height, cc.pix_fmt = frame.width, frame.height, "rgba64be"
    cc.time_base = Fraction(1, 1)
    path.write_bytes(b"".join(bytes(p) for p in cc.encode(frame) + cc.encode(None)))


def _alpha(shape, region: str) -> np.ndarray:
    """255 on the painted region ("left", "right" half or "all"), 0 elsewhere."""
    a = np.zeros(shape[:2], np.uint8)
    half = shape[1] // 2
    if region == "left":
        a[:, :half] = 255
    elif region == "right":
        a[:, half:] = 255
    else:
        a[:] = 255
    return a


def _keys(folder, frames, spec, bits=8):
    """Key-frames from ``frames`` (the true colours): {index: region or "rgb"}."""
    folder.mkdir()
    for i, region in spec.items():
        path = folder / f"{i:05d}.png"
        if region == "rgb":
            Image.fromarray(frames[i]).save(path)
        elif bits == 16:
            rgba = np.dstack([frames[i], _alpha(frames[i].shape, region)]).astype(np.uint16) * 257
            _png16(path, rgba)
        else:
            Image.fromarray(np.dstack([frames[i], _alpha(frames[i].shape, region)]), "RGBA").save(path)
    return folder


def _colorize(video, keys, out, *extra):
    code, stdout, err = run_cli("colorize", video, "--keyframes", keys, "--weights", COLOUR_V1,
                                "-o", out, "-q", *extra)
    assert code == 0, err
    return [read_image(out / f"{i:05d}.png") for i in range(12)], stdout


@pytest.fixture(scope="module")
def dog():
    return [f.image for f in VideoReader(DOG).frames()]


@pytest.fixture()
def black_and_white(tmp_path, dog):
    return write_video(tmp_path / "bw.mp4", [luma_rgb(f) for f in dog])


# -- reading and checking ------------------------------------------------------------------
def test_read_image_keeps_a_real_alpha_only(tmp_path):
    rgba = np.random.default_rng(0).integers(0, 256, (6, 8, 4), dtype=np.uint8)
    rgba[..., 3] = 0
    rgba[:3, :, 3] = 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "k.png")
    assert np.array_equal(read_image(tmp_path / "k.png", keep_alpha=True), rgba)
    assert read_image(tmp_path / "k.png").shape == (6, 8, 3)  # callers that want RGB get RGB
    _png16(tmp_path / "k16.png", rgba.astype(np.uint16) * 257)
    assert np.array_equal(read_image(tmp_path / "k16.png", keep_alpha=True), rgba.astype(np.uint16) * 257)
    assert np.array_equal(read_image(tmp_path / "k16.png", depth=8, keep_alpha=True), rgba)
    rgba[..., 3] = 255  # opaque everywhere: an RGB image
    Image.fromarray(rgba, "RGBA").save(tmp_path / "o.png")
    assert np.array_equal(read_image(tmp_path / "o.png", keep_alpha=True), rgba[..., :3])


def test_colour_check_looks_at_the_painted_pixels(dog):
    key = np.dstack([luma_rgb(dog[0]), np.zeros(dog[0].shape[:2], np.uint8)])
    key[40:44, 70:74, :3] = (200, 40, 40)  # a small red patch: 0.1 % of the frame
    key[40:44, 70:74, 3] = 255
    check_colour_keyframe(key)  # painted in colour: accepted
    with pytest.raises(BadInputError) as e:
        check_colour_keyframe(np.dstack([dog[0], np.zeros(dog[0].shape[:2], np.uint8)]))
    assert e.value.code == "KEYFRAME_EMPTY"
    gray_paint = np.dstack([luma_rgb(dog[0]), np.full(dog[0].shape[:2], 255, np.uint8)])
    gray_paint[..., 3][:, 80:] = 0
    with pytest.raises(BadInputError):
        check_colour_keyframe(gray_paint)


def test_over_frame_mixes_by_alpha():
    key = np.zeros((1, 3, 4), np.uint8)
    key[..., :3] = 200
    key[..., 3] = (255, 0, 128)
    frame = np.full((1, 3, 3), 100, np.uint8)
    assert over_frame(key, frame)[0, :, 0].tolist() == [200, 100, 150]
    assert over_frame(frame, key) is frame  # RGB: unchanged


def test_paint_weights_follow_the_paint():
    a0 = torch.tensor([[[1.0, 0.0, 0.0]]])
    a1 = torch.tensor([[[0.0, 1.0, 0.0]]])
    w0, w1 = infer.paint_weights([0.8, 0.2], [a0, a1])
    assert torch.allclose(w0 + w1, torch.ones(1, 1, 3))
    assert w0[0, 0, 0] > 0.99 and w1[0, 0, 1] > 0.99  # each key where it painted,
    assert torch.allclose(w0[0, 0, 2], torch.tensor(0.8))  # the blend weights where neither did
    w0, w1 = infer.paint_weights([0.8, 0.2], [None, a1])  # None: fully painted
    assert torch.allclose(w0[0, 0, 0], torch.tensor(0.8 * 1.001 / (0.8 * 1.001 + 0.2 * 1e-3)))
    cover = infer.paint_coverage([a0, a1])
    assert cover.flatten().tolist() == [1.0, 1.0, 0.0]
    assert infer.paint_coverage([a0, None]) == 1.0


# -- end to end ----------------------------------------------------------------------------
@pytest.mark.parametrize("bits", [8, 16])
def test_opaque_rgba_keys_change_nothing(tmp_path, dog, bits):
    rgb = _keys(tmp_path / "rgb", dog, {0: "rgb", 11: "rgb"})
    rgba = _keys(tmp_path / "rgba", dog, {0: "all", 11: "all"}, bits=bits)
    a, _ = _colorize(DOG, rgb, tmp_path / "a", "--mode", "blend")
    b, _ = _colorize(DOG, rgba, tmp_path / "b", "--mode", "blend")
    assert all(np.array_equal(x, y) for x, y in zip(a, b))  # bit-identical


@pytest.mark.parametrize("bits", [8, 16])
def test_unpainted_region_stays_gray(tmp_path, dog, black_and_white, bits):
    keys = _keys(tmp_path / "keys", dog, {0: "left"}, bits=bits)
    out, stdout = _colorize(black_and_white, keys, tmp_path / "o", "--json")
    assert "painted only in parts" in " ".join(json.loads(stdout)["notes"])
    for i, o in enumerate(out):
        assert is_grayscale(o[:, 100:]), i  # no paint reached: the film's own gray
        assert not is_grayscale(o[:, :60]), i  # the paint carried through
        assert psnr(o[:, :60], dog[i][:, :60]) > psnr(luma_rgb(dog[i])[:, :60], dog[i][:, :60]) + 6


def test_two_complementary_partial_keys_give_colour_from_each(tmp_path, dog, black_and_white):
    """Key 0 painted on the left, key 11 on the right, blended: each side takes its colour
    from the key that painted it, as well as that key alone would give it."""
    parts, _ = _colorize(black_and_white, _keys(tmp_path / "parts", dog, {0: "left", 11: "right"}),
                         tmp_path / "p", "--mode", "blend")
    only0, _ = _colorize(black_and_white, _keys(tmp_path / "k0", dog, {0: "rgb"}), tmp_path / "o0")
    only11, _ = _colorize(black_and_white, _keys(tmp_path / "k11", dog, {11: "rgb"}), tmp_path / "o11")
    for i in range(1, 11):
        for side, alone in ((np.s_[:, :60], only0), (np.s_[:, 100:], only11)):
            gray = psnr(luma_rgb(dog[i])[side], dog[i][side])
            got = psnr(parts[i][side], dog[i][side])
            assert got > gray + 6, (i, side)
            assert got > psnr(alone[i][side], dog[i][side]) - 1, (i, side)


def test_colour_input_keeps_its_own_colour_where_unpainted(tmp_path, dog):
    """Recolour one region of a colour video: the rest keeps the video's colours."""
    keys = tmp_path / "keys"
    keys.mkdir()
    red = dog[0].copy()
    red[..., 0] = np.clip(red[..., 0].astype(int) + 80, 0, 255)  # repainted warmer
    Image.fromarray(np.dstack([red, _alpha(red.shape, "left")]), "RGBA").save(keys / "00000.png")
    out, _ = _colorize(DOG, keys, tmp_path / "o", "--no-snap-check")
    for i in range(1, 12):
        assert psnr(out[i][:, 100:], dog[i][:, 100:]) > 38, i  # unpainted: the video's own
        assert out[i][:, :60, 0].mean() > dog[i][:, :60, 0].mean() + 10, i  # painted: warmer


def test_paint_reaches_a_little_past_its_edge_before_propagation():
    from tpn_cli.adapters import ColourAdapter

    lab = torch.zeros(3, 1, 12)
    lab[0] = 50.0
    lab[1, 0, :4] = 30.0  # painted red-ish on the first 4 pixels
    alpha = torch.zeros(1, 1, 12)
    alpha[0, 0, :4] = 1.0
    out = ColourAdapter._extend_paint(lab, alpha, radius=3)
    assert torch.equal(out[0], lab[0])  # L untouched
    assert torch.allclose(out[1, 0, :7], torch.full((7,), 30.0))  # the paint, 3 px further
    assert torch.equal(out[1, 0, 7:], torch.zeros(5))  # beyond: the frame's own (gray)
