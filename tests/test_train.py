"""Training on real data: pair synthesis, a tiny run that lowers the loss, resumable loop."""
import json

import numpy as np
import pytest
import torch

from tpn_cli.models import TPN, load_model, save_model, task_config
from tpn_cli.train import fit, pairs, sources
from tpn_cli.train import hdr_video

torch.set_num_threads(1)

needs_data = pytest.mark.skipif(not sources.DAVIS_JPEG.exists(), reason="shared data not available")


@needs_data
def test_colour_pairs_real_frames():
    clip = sources.davis_clip("goat")
    rng = np.random.default_rng(0)
    p = pairs.colour_pair(rng, [clip], crop=48, max_dist=5, align=True, still_prob=0.5)
    assert p["u1"].shape == (2, 48, 48) and p["v1"].shape == (1, 48, 48)
    assert p["rgb2"].dtype == torch.uint8 and p["rgb2"].shape == (3, 48, 48)
    assert 0 <= float(p["v2"].min()) and float(p["v2"].max()) <= 1.0
    assert float(p["u2"].abs().max()) <= 1.0


@needs_data
def test_colour_pairs_at_a_working_short_side_see_more_of_the_frame():
    """short_side=240 shrinks the 480p frames first: a crop covers twice the scene, so a
    crop as tall as the frame is only possible after shrinking."""
    clip = sources.davis_clip("goat")
    p = pairs.colour_pair(np.random.default_rng(0), [clip], crop=192, max_dist=5, align=True,
                          short_side=240)
    assert p["u1"].shape == (2, 192, 192)
    with pytest.raises(ValueError):  # 192 + flow margins does not fit a 240-px frame...
        pairs.colour_pair(np.random.default_rng(0), [clip], crop=200, max_dist=5, align=True,
                          short_side=240)
    full = pairs.colour_pair(np.random.default_rng(0), [clip], crop=200, max_dist=5, align=True)
    assert full["u1"].shape == (2, 200, 200)  # ...but fits the stored 480p frame


@needs_data
def test_segment_pairs_have_two_channel_probabilities():
    rng = np.random.default_rng(0)
    p = pairs.segment_pair(rng, [sources.davis_clip("camel", with_masks=True)], crop=64, max_dist=10)
    assert p["u1"].shape == (2, 64, 64)
    torch.testing.assert_close(p["u1"].sum(0), torch.ones(64, 64))
    assert p["u1"][1].sum() > 0  # the crop is placed on the object


@pytest.mark.skipif(not hdr_video.HDR_ROOT.exists(), reason="shared data not available")
def test_hdr_virtual_camera_clips_5_to_15_percent():
    img = hdr_video.read_hdr(next((hdr_video.HDR_ROOT / "polyhaven").glob("*.hdr")))
    rng = np.random.default_rng(3)
    for _ in range(3):
        p = hdr_video.hdr_pair(rng, {"x": img}, crop=64)
        clipped = float((p["v1"] >= 1.0).float().mean())
        assert all(torch.isfinite(p[k]).all() for k in p)
        # exposure is set on the (unflipped) first view; both views share it
        assert 0.0 <= clipped <= 0.4
        ldr = p["v1"] * 255
        torch.testing.assert_close(ldr, ldr.round())  # 8-bit quantised
    # large views with flow alignment still fit inside a 1024×512 panorama
    p = hdr_video.hdr_pair(rng, {"x": img}, crop=256, align=True)
    assert p["u1"].shape == (3, 256, 256) and torch.isfinite(p["u1"]).all()


@needs_data
def test_tiny_training_lowers_the_loss():
    """A few steps on a fixed batch of real DAVIS frame pairs reduce the switchable loss."""
    clip = sources.davis_clip("car-shadow")
    rng = np.random.default_rng(0)
    batch = pairs.collate([pairs.colour_pair(rng, [clip], crop=48, max_dist=8) for _ in range(4)])
    torch.manual_seed(0)
    model = TPN(task_config("colour", unet_depth=3))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(25):
        loss, _, _ = model.pair_loss(batch["u1"], batch["v1"], batch["u2"], batch["v2"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.9 * losses[0], losses


@needs_data
def test_run_checkpoints_and_resumes(tmp_path):
    cfg = {"run_dir": str(tmp_path / "run"), "max_iters": 3, "batch": 2, "crop": 48, "val_pairs": 2,
           "val_crop": 48, "val_every": 2, "log_every": 1, "minutes": 5,
           "model": {"unet_depth": 2}}
    fit("segment", {**cfg, "max_iters": 5, "stop_iter": 3})  # cut early, 5-iteration schedule
    state = torch.load(tmp_path / "run" / "last.ckpt", weights_only=False)
    assert state["iter"] == 3
    fit("segment", {**cfg, "max_iters": 5})
    state = torch.load(tmp_path / "run" / "last.ckpt", weights_only=False)
    assert state["iter"] == 5
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "resuming segment from iteration 3" in log
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records if "loss" in r] == [1, 2, 3, 4, 5]
    model = load_model(tmp_path / "run" / "best.tpn")
    assert model.config.task == "segment" and model.config.unet_depth == 2


@needs_data
def test_init_starts_a_new_run_from_given_weights(tmp_path):
    start = TPN(task_config("colour", unet_depth=2))
    with torch.no_grad():
        for p in start.parameters():
            p.add_(0.25)  # nothing a seeded fresh model could be
    save_model(start, tmp_path / "start.tpn", meta={})
    fit("colour", {"run_dir": str(tmp_path / "run"), "init": str(tmp_path / "start.tpn"),
                   "short_side": 240, "max_iters": 1, "batch": 2, "crop": 48, "val_pairs": 2,
                   "val_crop": 48, "val_every": 100, "log_every": 1, "minutes": 5, "lr": 1e-12,
                   "warmup": 1, "model": {"unet_depth": 2}})
    tuned = load_model(tmp_path / "run" / "last.tpn")
    for name, value in start.state_dict().items():  # lr 1e-12: one step leaves the start
        torch.testing.assert_close(tuned.state_dict()[name], value, atol=1e-6, rtol=0)


@needs_data
def test_same_iteration_draws_the_same_batch():
    clip = sources.davis_clip("cows")
    a = pairs.colour_pair(np.random.default_rng([0, 7]), [clip], crop=32, max_dist=5)
    b = pairs.colour_pair(np.random.default_rng([0, 7]), [clip], crop=32, max_dist=5)
    assert all(torch.equal(a[k], b[k]) for k in a)


@needs_data
def test_tpn_train_command_runs_and_rejects_unknown_settings(tmp_path):
    from tests._cli_util import run_cli

    sets = ["max_iters=2", "batch=2", "crop=48", "val_pairs=2", "val_crop=48", "model.unet_depth=2"]
    args = ["train", "segment", str(tmp_path / "run"), "--minutes", "5"]
    for s in sets:
        args += ["--set", s]
    code, _, err = run_cli(*args)
    assert code == 0, err
    assert torch.load(tmp_path / "run" / "last.ckpt", weights_only=False)["iter"] == 2
    assert load_model(tmp_path / "run" / "last.tpn").config.unet_depth == 2
    code, _, err = run_cli("train", "colour", str(tmp_path / "bad"), "--set", "max_itres=5")
    assert code == 2 and "max_itres" in err
    assert not (tmp_path / "bad").exists()
