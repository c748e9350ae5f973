"""`tpn hdr` and `tpn segment` end to end on the real clips of tests/data."""
from __future__ import annotations

import json

import av
import numpy as np
from PIL import Image

from _cli_util import (CAPS, CAPS_MASKS, DOG, hdr_keys, models, one_thread, packets,  # noqa: F401
                       run_cli)
from tpn_cli.media import VideoReader
from tpn_cli.media.hdr import read_exr


def test_hdr_exr_sequence(tmp_path, models):
    keys = hdr_keys(DOG, tmp_path / "exr", [0, 6])
    out = tmp_path / "hdr"
    code, stdout, err = run_cli("hdr", DOG, "--hdr-keys", keys, "--weights", models["hdr"],
                                "-o", out, "--mode", "blend", "--json")
    assert code == 0, err
    assert json.loads(stdout)["frames"] == 12
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:05d}.exr" for i in range(12)]
    key = read_exr(keys / "00006.exr")
    assert np.allclose(read_exr(out / "00006.exr"), key, rtol=1e-3, atol=1e-3)  # the key itself
    for n in names:
        img = read_exr(out / n)
        assert img.shape == (90, 160, 3) and np.isfinite(img).all() and img.min() >= 0
    # dark areas come from the inverted LDR frame, highlights from the propagation
    assert read_exr(out / "00003.exr").max() > 1.5


def test_hdr10_video_with_preview_and_audio(tmp_path, models):
    keys = hdr_keys(DOG, tmp_path / "exr", [0])
    out, prev = tmp_path / "hdr10.mp4", tmp_path / "preview.mp4"
    code, _, err = run_cli("hdr", DOG, "--hdr-keys", keys, "--weights", models["hdr"], "-o", out,
                           "--sdr-preview", prev, "-q")
    assert code == 0, err
    r = VideoReader(out)
    assert (r.color.primaries, r.color.trc, r.color.space) == (9, 16, 9)  # BT.2020, PQ
    assert r.count_frames() == 12 and r.size == (160, 90) and r.fps == VideoReader(DOG).fps
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
        side = [str(sd.type) for f in c.decode(video=0) for sd in f.side_data][:4]
    assert any("MASTERING" in s.upper() for s in side) and any("LIGHT" in s.upper() for s in side)
    assert packets(out, "audio") == packets(DOG, "audio")
    assert VideoReader(prev).count_frames() == 12
    code, _, err = run_cli("hdr", DOG, "--hdr-keys", keys, "--weights", models["hdr"], "-q",
                           "-o", tmp_path / "hlg.mkv", "--transfer", "hlg")
    assert code == 0, err
    assert VideoReader(tmp_path / "hlg.mkv").color.trc == 18


def test_segment_keeps_palette_and_ids(tmp_path, models):
    out, overlay = tmp_path / "masks", tmp_path / "overlay.mp4"
    code, _, err = run_cli("segment", CAPS, "--mask", CAPS_MASKS / "00000.png", "--masks", CAPS_MASKS,
                           "--weights", models["segment"], "-o", out, "--overlay", overlay, "-q")
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"{i:05d}.png" for i in range(16)]
    with Image.open(CAPS_MASKS / "00000.png") as im:
        palette = im.getpalette()
        first = np.asarray(im)
    for n in names:
        with Image.open(out / n) as im:
            assert im.mode == "P" and im.size == (90, 160)
            assert im.getpalette()[:6] == palette[:6]
            assert set(np.unique(np.asarray(im))) <= {0, 1}
    # a mask's frame is the mask; frames after it are chained from it (the object is
    # carried, not copied: tests/test_cli_segment_chain.py checks it follows the motion)
    with Image.open(out / "00000.png") as im:
        assert np.array_equal(np.asarray(im), first)
    with Image.open(out / "00007.png") as im:
        seven = np.asarray(im) == 1
        assert seven.any() and (seven & (first == 1)).any()
    with Image.open(out / "00014.png") as a, Image.open(CAPS_MASKS / "00014.png") as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))
    assert VideoReader(overlay).count_frames() == 16


def test_segment_binary_and_gray_formats(tmp_path, models):
    for fmt, values in (("binary", {0, 255}), ("gray", {0, 1})):
        out = tmp_path / fmt
        code, _, err = run_cli("segment", CAPS, "--mask", CAPS_MASKS / "00000.png", "--end", "3",
                               "--weights", models["segment"], "-o", out, "--mask-format", fmt, "-q")
        assert code == 0, err
        with Image.open(out / "00002.png") as im:
            assert im.mode == "L" and set(np.unique(np.asarray(im))) == values


def test_segment_void_id_is_not_an_object(tmp_path, models):
    from tpn_cli.media.masks import read_mask, write_mask

    m = read_mask(CAPS_MASKS / "00000.png")
    ids = m.ids.copy()
    ids[:4] = 255  # a "don't care" band, DAVIS style
    write_mask(tmp_path / "00000.png", ids, palette=m.palette)
    out = tmp_path / "out"
    code, _, err = run_cli("segment", CAPS, "--mask", tmp_path / "00000.png", "--void", "255",
                           "--end", "3", "--weights", models["segment"], "-o", out, "-q")
    assert code == 0, err
    assert 255 in np.unique(np.asarray(Image.open(out / "00000.png")))  # the key as given
    assert set(np.unique(np.asarray(Image.open(out / "00002.png")))) == {0, 1}


def test_folder_numbered_from_1_round_trips(tmp_path, models):
    """Frames named frame_0001..: masks are matched and named by those numbers."""
    import shutil

    from tpn_cli.media import write_image

    clip = tmp_path / "clip"
    clip.mkdir()
    for f in VideoReader(CAPS).frames(0, 6):
        write_image(clip / f"frame_{f.index + 1:04d}.png", f.image)
    shutil.copy(CAPS_MASKS / "00000.png", tmp_path / "m_0001.png")
    code, _, err = run_cli("segment", clip, "--mask", tmp_path / "m_0001.png",
                           "--weights", models["segment"], "-q")
    assert code == 0, err
    out = tmp_path / "clip_masks"
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(1, 7)]
    # the outputs go back in as masks and land on the same frames
    code, stdout, err = run_cli("segment", clip, "--mask", tmp_path / "m_0001.png", "--masks", out,
                                "--weights", models["segment"], "--dry-run", "--json", "-o", tmp_path / "x")
    assert code == 0, err
    assert [k["index"] for k in json.loads(stdout)["keyframes"]] == list(range(6))
    code, _, err = run_cli("segment", clip, "--mask", CAPS_MASKS / "00000.png",
                           "--weights", models["segment"], "-o", tmp_path / "y")
    assert code == 3 and "no frame numbered 0" in err


def _write_pseudo_clip(tmp_path, hdr, ldr, key_indices):
    """LDR frames (8-bit PNG) and radiance key-frames (EXR) of a pseudo-video on disk:
    (frames folder, keys folder, output folder)."""
    from tpn_cli.media.hdr import write_exr

    frames, keys = tmp_path / "ldr", tmp_path / "keys"
    frames.mkdir()
    keys.mkdir()
    for i, d in enumerate(ldr):
        Image.fromarray(np.round(d * 255).astype(np.uint8)).save(frames / f"{i:05d}.png")
    for i in key_indices:
        write_exr(keys / f"{i:05d}.exr", hdr[i])
    return frames, keys, tmp_path / "out"


def test_hdr_calibrates_the_camera_response_from_the_key_frames(tmp_path):
    """A camera far from the generic curve (sRGB's, ×1.5 exposure, noise): `tpn hdr` fits
    the response to its two key-frames, and the frames between them come out much closer
    to the true radiance where they do not clip than the generic curve brings them."""
    import torch

    from tests._cli_util import DATA
    import tpn_eval as evaluate
    from tpn_cli import colour, metrics
    from tpn_cli.media.hdr import read_radiance_hdr

    img = read_radiance_hdr(DATA / "esplanade.hdr")
    hdr, _ = evaluate.hdr_sequence(np.random.default_rng(1), img, n_frames=8, size=96)
    rng = np.random.default_rng(2)
    ldr = []
    for h in hdr:
        d = colour.linear_to_srgb(torch.from_numpy(np.clip(1.5 * h, 0, 1))).numpy()
        ldr.append(np.clip(d + rng.normal(0, 0.004, d.shape), 0, 1).astype(np.float32))
    frames, keys, out = _write_pseudo_clip(tmp_path, hdr, ldr, (0, 7))
    code, stdout, err = run_cli("hdr", frames, "--hdr-keys", keys, "-o", out, "--json")
    assert code == 0, err
    assert any("camera response fitted to 2 key-frame(s)" in n for n in json.loads(stdout)["notes"])
    ours, generic = [], []
    for i in range(1, 7):
        truth = torch.from_numpy(hdr[i]).permute(2, 0, 1)[None].double()
        d = torch.from_numpy(np.round(ldr[i] * 255) / 255).permute(2, 0, 1)[None].double()
        unsat = d.amax(1, keepdim=True) < 0.9  # below the blend ramp: the response alone
        pred = torch.from_numpy(read_exr(out / f"{i:05d}.exr")).permute(2, 0, 1)[None].double()
        ours.append(float(metrics.log_rmse(pred, truth, mask=unsat)[0]))
        generic.append(float(metrics.log_rmse(colour.inverse_camera_curve(d), truth, mask=unsat)[0]))
    assert np.mean(ours) < 0.25 * np.mean(generic), (ours, generic)


def test_hdr_default_recovers_clipped_highlights(tmp_path):
    """The default `tpn hdr` (both keys aligned and fused with the frame's f⁻¹, no
    network) on real radiance (Poly Haven esplanade, CC0) under a moving virtual camera:
    clipped highlights come back far closer than the inverse camera curve alone can bring
    them (held-out pseudo-video of the kind the results script uses)."""
    import torch

    from tests._cli_util import DATA
    import tpn_eval as evaluate
    from tpn_cli import colour, metrics
    from tpn_cli.media.hdr import read_radiance_hdr

    img = read_radiance_hdr(DATA / "esplanade.hdr")
    hdr, ldr = evaluate.hdr_sequence(np.random.default_rng(1), img, n_frames=12, size=128)
    frames, keys, out = _write_pseudo_clip(tmp_path, hdr, ldr, (0, 11))
    code, _, err = run_cli("hdr", frames, "--hdr-keys", keys, "-o", out, "-q")
    assert code == 0, err
    errs = {"tpn": [], "icc": []}
    for i in range(1, 11):
        truth = torch.from_numpy(hdr[i]).permute(2, 0, 1)[None].double()
        d = torch.from_numpy(ldr[i]).permute(2, 0, 1)[None].double()
        sat = d.amax(1, keepdim=True) >= 0.95
        if not bool(sat.any()):
            continue
        pred = torch.from_numpy(read_exr(out / f"{i:05d}.exr")).permute(2, 0, 1)[None].double()
        errs["tpn"].append(float(metrics.log_rmse(pred, truth, mask=sat)[0]))
        errs["icc"].append(float(metrics.log_rmse(colour.inverse_camera_curve(d), truth, mask=sat)[0]))
    assert len(errs["tpn"]) >= 5
    assert np.mean(errs["tpn"]) < 0.5 * np.mean(errs["icc"]), errs  # measured 0.006 vs 0.068
