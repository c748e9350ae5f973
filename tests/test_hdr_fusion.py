"""The HDR output's fusion of the frame's own f⁻¹ with its key-frames (tpn_cli.hdr_fusion)
and the per-level variance the camera response measures for it."""
from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from tpn_cli import camera_response as cr
from tpn_cli import colour, hdr_fusion


def _frame(h: int = 64, w: int = 64, seed: int = 0):
    """Levels (8-bit codes, all well exposed), the table's log radiance at them, and a
    small table variance; channel-first (3, H, W) as the fusion takes them."""
    rng = np.random.default_rng(seed)
    levels = rng.integers(40, 200, (3, h, w))
    u_table = np.log(levels / 255.0 + 0.01).astype(np.float32)
    var = np.full((3, h, w), 1e-4, np.float32)
    return levels, u_table, var


def test_unclipped_channels_follow_the_curve_when_the_key_is_noisy():
    levels, u_table, var = _frame()
    noisy = u_table + np.random.default_rng(1).normal(0, 0.5, u_table.shape).astype(np.float32)
    fused = hdr_fusion.fuse_keys(levels, u_table, var, [noisy], floor=np.zeros(3))
    err_key = np.sqrt(np.mean((noisy - u_table) ** 2))
    err = np.sqrt(np.mean((fused - u_table) ** 2))
    assert err < 0.02 * err_key, (err, err_key)


def test_a_clipped_channel_takes_the_keys_radiance_and_keeps_the_others():
    levels, u_table, var = _frame()
    key = u_table.copy()  # the key agrees with the frame where the frame sees
    levels[0, 20:40, 20:40] = 255  # red clips in a square
    key[0, 20:40, 20:40] = np.log(6.0 + 0.01)  # the key knows its radiance there
    u_table[0, 20:40, 20:40] = np.log(1.0 + 0.01)  # the table only says "at least the clip"
    fused = hdr_fusion.fuse_keys(levels, u_table, var, [key], floor=np.log(np.full(3, 0.9 + 0.01)))
    assert np.allclose(fused[0, 20:40, 20:40], np.log(6.01), atol=1e-3)
    # green and blue did not clip: they keep the frame's own f⁻¹
    assert np.allclose(fused[1:, 20:40, 20:40], u_table[1:, 20:40, 20:40], atol=1e-3)
    # two keys: inside the clipped square each counts by its error outside it
    bad = key + np.float32(0.3)  # off by 0.3 everywhere, 2.0 inside
    bad[0, 20:40, 20:40] = np.log(2.0 + 0.01)
    fused2 = hdr_fusion.fuse_keys(levels, u_table, var, [key, bad], floor=np.full(3, -5.0))
    assert abs(float(fused2[0, 30, 30]) - np.log(6.01)) < 0.05


def test_a_key_counts_less_the_further_outside_its_frame_the_point_was():
    """Where a key's warp sampled d px outside its frame (``outside``), its variance grows
    with (d / UNSEEN_PX)²: far out the other key decides, at the border nothing changes,
    and where every key missed the point by as much they keep their relative weights."""
    levels, u_table, var = _frame()
    levels[0, 20:40, 20:40] = 255  # red clips: only the keys know it
    a, b = u_table.copy(), u_table.copy()
    a[0, 20:40, 20:40], b[0, 20:40, 20:40] = np.log(6.01), np.log(2.01)
    out_a = np.zeros(levels.shape[1:], np.float32)
    out_a[:, 30:] = 100 * hdr_fusion.UNSEEN_PX  # key a's frame ended far to the left of column 30
    fused = hdr_fusion.fuse_keys(levels, u_table, var, [a, b], np.full(3, -5.0), outside=[out_a, None])
    both = hdr_fusion.fuse_keys(levels, u_table, var, [a, b], np.full(3, -5.0))
    assert np.allclose(fused[0, 20:40, 20:30], both[0, 20:40, 20:30])  # seen by both: unchanged
    assert np.allclose(fused[0, 20:40, 31:40], np.log(2.01), atol=1e-3)  # only b saw it
    far = np.full(levels.shape[1:], 100 * hdr_fusion.UNSEEN_PX, np.float32)
    none = hdr_fusion.fuse_keys(levels, u_table, var, [a, b], np.full(3, -5.0), outside=[far, far])
    assert np.allclose(none[0, 20:40, 20:40], both[0, 20:40, 20:40], atol=1e-3)


def test_a_clipped_channel_is_at_least_the_last_code_below_the_clip():
    levels, u_table, var = _frame()
    levels[2, 10:30, 10:30] = 255
    key = u_table.copy()
    key[2, 10:30, 10:30] = np.log(0.2 + 0.01)  # a key that is too dark there
    floor = np.log(np.array([0.95, 0.95, 0.97]) + 0.01)  # the table at code 254
    fused = hdr_fusion.fuse_keys(levels, u_table, var, [key], floor)
    assert np.allclose(fused[2, 10:30, 10:30], floor[2], atol=1e-6)
    assert np.all(fused[:2] < 10)  # no channel blew up elsewhere


def test_fit_measures_the_variance_of_each_level():
    """Radiance scattered by a known log-normal noise around each code's: the variance
    table finds it where levels are well sampled, the pooled value where they are not."""
    rng = np.random.default_rng(0)
    codes = rng.integers(20, 230, (256, 256, 3)).astype(np.uint8)
    codes[0, 0] = 250  # one pixel at a level nothing else has
    h = colour.inverse_camera_curve(torch.from_numpy(codes / 255.0)).numpy()
    noise = 0.1
    rad = np.exp(np.log(h + 0.01) + rng.normal(0, noise, h.shape)) - 0.01
    fitted = cr.fit([(codes, rad.astype(np.float32))])
    var = fitted.log_variance
    assert var.shape == (3, cr.LEVELS) and var.dtype == np.float32
    well = var[:, 40:220]
    assert np.all(np.abs(well / noise ** 2 - 1) < 0.25), well.min() / noise ** 2
    # a level seen once is pulled towards the channel's pooled variance (4 pixels' weight)
    assert 0.5 * noise ** 2 < var[0, 250] < 1.5 * noise ** 2
    assert np.all(var >= cr.VARIANCE_FLOOR)
    # per pixel, as the fusion reads it
    assert np.allclose(fitted.variance(codes[:2, :2]), var[np.arange(3), codes[:2, :2]])
    # the generic curve (no key measured it) has one broad variance
    assert np.all(cr.generic().log_variance == cr.GENERIC_VARIANCE)


def test_cli_hdr_fuses_both_neighbouring_keys_by_default(tmp_path):
    """A still scene with a clipped window whose radiance the two keys disagree on (4 and
    16): the default run (no weights, no TPN) puts both keys into every frame between them
    (equal errors outside the window: their log-mean, 8); --mode nearest takes one."""
    from _cli_util import run_cli
    from tpn_cli.media.hdr import read_exr, write_exr

    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    base = np.repeat((0.2 + 0.1 * np.sin(x / 4.0) * np.cos(y / 5.0))[..., None], 3, axis=2)
    frames, keys = tmp_path / "ldr", tmp_path / "keys"
    frames.mkdir()
    keys.mkdir()
    ldr = np.clip(colour.camera_curve(torch.from_numpy(base)).numpy(), 0, 1)
    ldr[12:24, 20:40] = 1.0
    for i in range(7):
        Image.fromarray(np.round(ldr * 255).astype(np.uint8)).save(frames / f"{i:05d}.png")
    for i, window in ((0, 4.0), (6, 16.0)):
        h = base.copy()
        h[12:24, 20:40] = window
        write_exr(keys / f"{i:05d}.exr", h.astype(np.float32))
    code, stdout, err = run_cli("hdr", frames, "--hdr-keys", keys, "-o", tmp_path / "dry", "--dry-run", "--json")
    assert code == 0, err
    plan = json.loads(stdout)
    assert plan["mode"] == "blend" and plan["uses_model"] is False and plan["weights"] is None
    assert "both neighbouring key-frames" in plan["propagation"] and "no TPN" in plan["propagation"]
    code, _, err = run_cli("hdr", frames, "--hdr-keys", keys, "-o", tmp_path / "out", "-q")
    assert code == 0, err
    for i in range(1, 6):
        win = read_exr(tmp_path / "out" / f"{i:05d}.exr")[14:22, 24:36]
        assert np.allclose(win, 8.0, rtol=0.05), (i, float(win.mean()))
    code, _, err = run_cli("hdr", frames, "--hdr-keys", keys, "-o", tmp_path / "near", "-q", "--mode", "nearest")
    assert code == 0, err
    assert np.allclose(read_exr(tmp_path / "near" / "00001.exr")[14:22, 24:36], 4.0, rtol=0.05)
    assert np.allclose(read_exr(tmp_path / "near" / "00005.exr")[14:22, 24:36], 16.0, rtol=0.05)


def test_warp_planes_is_warp_channel_first_and_says_how_far_outside():
    """flow.warp_planes = flow.warp of the (H, W, C) image, channel-first, with a flow at
    another size resized first; ``outside`` is the px distance of the source beyond the
    frame (a shift of 5 px to the right: the last 5 columns sample 1 … 5 px outside)."""
    from tpn_cli.flow import resize_flow, warp, warp_planes

    rng = np.random.default_rng(0)
    x = rng.random((3, 20, 30)).astype(np.float32)
    small = rng.normal(0, 2, (10, 15, 2)).astype(np.float32)
    got, _ = warp_planes(x, small)
    want = warp(x.transpose(1, 2, 0), resize_flow(small, (20, 30))).transpose(2, 0, 1)
    assert np.allclose(got, want, atol=1e-6)
    shift = np.zeros((20, 30, 2), np.float32)
    shift[..., 0] = 5
    _, outside = warp_planes(x, shift)
    assert np.all(outside[:, :25] == 0) and np.allclose(outside[:, 25:], np.arange(1, 6))
