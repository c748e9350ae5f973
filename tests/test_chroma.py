"""Video chroma (tpn_cli.colour.chroma): what the colour flow part carries, and a
black-and-white film coloured through it keeping its own tones."""
from __future__ import annotations

import numpy as np
import torch

from _cli_util import DOG
from tpn_cli import colour, engine, keyframes
from tpn_cli.adapters import ColourAdapter
from tpn_cli.media import VideoReader
from tpn_cli.propagator import KeyPropagator


def _random_rgb(seed=0, shape=(30, 40, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _luma_gray(rgb):
    """A black-and-white version of ``rgb`` as most tools make it (BT.601 luma, R = G = B)."""
    y = np.clip(np.rint(rgb @ np.array([0.299, 0.587, 0.114])), 0, 255).astype(np.uint8)
    return np.repeat(y[..., None], 3, axis=2)


def test_luma_and_chroma_give_the_image_back_at_8_and_16_bits():
    rgb = _random_rgb()
    for image in (rgb, rgb.astype(np.uint16) * 257):
        back = colour.chroma_image_to_rgb(colour.luma_image(image), colour.chroma_image(image), image.dtype)
        assert back.dtype == image.dtype and np.array_equal(back, image)
    # the torch path (key-frames) agrees with the image path (frames)
    t = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    assert np.allclose(colour.chroma(t).permute(1, 2, 0).numpy(), colour.chroma_image(rgb), atol=1e-3)
    assert np.allclose(colour.luma_lightness(t)[0].numpy(), colour.luma_lightness_image(rgb), atol=0.05)


def test_a_black_and_white_image_has_no_chroma_and_its_own_lightness():
    gray = _luma_gray(_random_rgb(1))
    assert np.abs(colour.chroma_image(gray)).max() < 1e-3
    assert np.abs(colour.luma_image(gray) - gray[..., 0]).max() < 1e-3
    assert np.abs(colour.luma_lightness_image(gray) - colour.lightness_image(gray)).max() < 1e-3
    # and a colour image's is that of its black-and-white version
    rgb = _random_rgb(2)
    # (up to the half code the black-and-white version rounds its luma by)
    assert np.abs(colour.luma_lightness_image(rgb) - colour.lightness_image(_luma_gray(rgb))).max() < 0.3


def test_inputs_are_not_modified():
    image = _random_rgb(3).astype(np.float32) / 255
    before = image.copy()
    colour.luma_image(image), colour.chroma_image(image), colour.luma_lightness_image(image)
    assert np.array_equal(image, before)


def test_a_black_and_white_film_keeps_its_tones_and_colours_as_its_colour_version():
    """Colour key-frames into the black-and-white version of a clip: every output frame has
    the film's own luma (its tones unchanged), and the same colour as when the colour clip
    itself is given (the flow part sees only the luma in both)."""
    frames = [f.image for f in VideoReader(DOG).frames(0, 9)]
    films = [_luma_gray(f) for f in frames]
    h, w = frames[0].shape[:2]
    plan = {a.frame: a for a in keyframes.plan(len(frames), [0, 8], "blend")}
    outs = {}
    for name, video in (("colour", frames), ("film", films)):
        prop = KeyPropagator(ColourAdapter(engine.work_shape(w, h, 240), "cpu", flow_mix=1.0), None)
        for k in (0, 8):
            prop.set_key(k, frames[k])
        with torch.inference_mode():
            outs[name] = [prop.predict(t, video[t], plan[t].sources) for t in range(1, 8)]
    for film, out in zip(films[1:8], outs["film"]):
        luma = colour.luma_image(out)
        inside = (out.min(axis=2) > 0) & (out.max(axis=2) < 255)  # not clipped
        assert np.abs(luma - film[..., 0])[inside].max() <= 1.0
        assert colour.chroma_image(out).std() > 2.0  # and it is coloured
    diff = [np.abs(a.astype(int) - b).mean() for a, b in zip(outs["film"], outs["colour"])]
    assert max(diff) < 1.0, diff
