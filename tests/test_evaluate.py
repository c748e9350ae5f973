"""tpn_eval: the pure parts (schedules, pair sets, distance bins, tables) and the
HDR pseudo-video on a synthetic still, and the colour blends on a few small real frames."""
import math

import numpy as np
import pytest
import torch

import tpn_eval as ev
from tpn_cli.train import sources


def test_key_frames():
    assert ev.key_frames(25, 10) == [0, 10, 20]
    assert ev.key_frames(1, 10) == [0]
    with pytest.raises(ValueError):
        ev.key_frames(10, 0)


def test_assign_online_takes_the_preceding_key():
    a = ev.assign_keys(25, 10, "online")
    assert 0 not in a and 10 not in a and 20 not in a  # key-frames are not evaluated
    assert a[1] == 0 and a[9] == 0 and a[11] == 10 and a[19] == 10 and a[24] == 20
    assert len(a) == 25 - 3


def test_assign_nearest_ties_to_the_earlier_and_stays_inside_the_clip():
    a = ev.assign_keys(25, 10, "nearest")
    assert a[4] == 0 and a[5] == 0 and a[6] == 10  # tie at 5 goes to the earlier key
    assert a[14] == 10 and a[16] == 20
    assert a[24] == 20  # no key-frame 30 in a 25-frame clip


def test_assign_subset_and_bad_schedule():
    a = ev.assign_keys(40, 20, "nearest", frames=range(0, 40, 3))
    assert sorted(a) == [t for t in range(0, 40, 3) if t % 20]
    assert a[12] == 20 and a[9] == 0
    assert ev.assign_keys(10, 5, "online", frames=[-1, 3, 99]) == {3: 0}
    with pytest.raises(ValueError):
        ev.assign_keys(10, 5, "bilateral")


def test_assign_blend_gives_both_neighbours_weighted_by_distance():
    a = ev.assign_keys(25, 10, "blend")
    assert [k for k, _ in a[3]] == [0, 10] and a[3][0][1] > a[3][1][1]  # nearer key weighs more
    assert abs(sum(w for _, w in a[3]) - 1) < 1e-9
    assert a[24] == ((20, 1.0),)  # after the last key: the preceding one alone
    assert ev.blends_of({(10, "blend"): a, (10, "online"): ev.assign_keys(25, 10, "online")}) == {
        t: {v} for t, v in a.items() if len(v) == 2}


def test_colour_pairs_are_shared_across_K_and_schedules():
    per, pairs = ev.colour_pairs(41, (10, 20, 40), ev.SCHEDULES, stride=1)
    assert set(per) == {(K, s) for K in (10, 20, 40) for s in ev.SCHEDULES}
    assert pairs == sorted(set(pairs))
    needed = {(t, k) for (_, s), a in per.items() if s != "blend" for t, k in a.items()}
    needed |= {(t, k) for K in (10, 20, 40) for t, v in per[(K, "blend")].items() for k, _ in v}
    assert set(pairs) == needed
    # frame 15: K=10 keys 10/20, K=20 keys 0/20, K=40 keys 0/40
    assert {k for t, k in pairs if t == 15} == {0, 10, 20, 40}
    # distinct pairs are fewer than the sum of the schedule sizes
    assert len(pairs) < sum(len(a) for a in per.values())


def test_colour_pairs_stride():
    per, pairs = ev.colour_pairs(30, (10,), ("online",), stride=3)
    assert sorted(per[(10, "online")]) == [3, 6, 9, 12, 15, 18, 21, 24, 27]
    assert pairs[0] == (3, 0) and pairs[-1] == (27, 20)


def test_distance_bin():
    assert ev.distance_bin(1) == "1"
    assert ev.distance_bin(3) == "3–4" and ev.distance_bin(4) == "3–4"
    assert ev.distance_bin(40) == "31–40"
    assert ev.distance_bin(0) is None and ev.distance_bin(41) is None
    assert ev.distance_bin(7, bins=((1, 5), (6, 9))) == "6–9"
    # the default bins cover 1..40 without gaps or overlaps
    labels = [ev.distance_bin(d) for d in range(1, 41)]
    assert None not in labels
    bins = ev.DISTANCE_BINS
    assert all(bins[i][1] + 1 == bins[i + 1][0] for i in range(len(bins) - 1))


def test_bin_by_distance_means_counts_and_order():
    items = [(1, 10.0), (1, 20.0), (4, 1.0), (3, 3.0), (12, 7.0), (50, 99.0), (2, float("nan"))]
    b = ev.bin_by_distance(items)
    assert list(b) == ["1", "2", "3–4", "11–15"]  # bin order, empty bins left out, 50 dropped
    assert b["1"] == (15.0, 2)
    assert b["3–4"] == (2.0, 2)
    assert math.isnan(b["2"][0]) and b["2"][1] == 1  # counted, but no finite value


def test_mean_ignores_non_finite():
    assert ev.mean([1.0, 3.0, float("nan"), float("inf")]) == 2.0
    assert math.isnan(ev.mean([]))


def test_fmt():
    assert ev.fmt(1.234) == "1.23"
    assert ev.fmt(1.2, signed=True) == "+1.20" and ev.fmt(-0.5, signed=True) == "-0.50"
    assert ev.fmt(0.12345, 3) == "0.123"
    assert ev.fmt(None) == "n/a" and ev.fmt(float("nan")) == "n/a"
    assert ev.fmt(7) == "7" and ev.fmt(np.int64(7)) == "7"
    assert ev.fmt("text") == "text" and ev.fmt(True) == "yes"
    assert ev.fmt(float("inf")) == "inf"


def test_markdown_table():
    t = ev.markdown_table(["K", "copy", "flow"], [[10, 29.8, None], [20, 28.841, float("nan")]])
    assert t.splitlines() == ["| K | copy | flow |", "|---|---:|---:|",
                              "| 10 | 29.80 | n/a |", "| 20 | 28.84 | n/a |"]
    t = ev.markdown_table(["a", "b"], [["x", 0.5]], digits=3, align="ll")
    assert t.splitlines()[1] == "|---|---|" and t.splitlines()[2] == "| x | 0.500 |"
    with pytest.raises(ValueError):
        ev.markdown_table(["a", "b"], [[1]])
    t = ev.markdown_table(["a", "b"], [["no weights\n  fix: x | y", 1.0]])
    assert t.splitlines()[2] == "| no weights fix: x \\| y | 1.00 |"


def _still(h=160, w=240, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.2 + 0.1 * np.sin(x / 9.0)[..., None] * np.cos(y / 13.0)[..., None] + 0.05 * rng.random((h, w, 3))
    img = np.repeat(base, 3, axis=2)[..., :3].astype(np.float32)
    img[40:70, 100:160] *= 40.0  # a bright window that will clip
    return np.clip(img, 1e-4, None)


def test_hdr_sequence_is_deterministic_and_clips_like_training():
    img = _still()
    hdr1, ldr1 = ev.hdr_sequence(np.random.default_rng(3), img, n_frames=5, size=64)
    hdr2, ldr2 = ev.hdr_sequence(np.random.default_rng(3), img, n_frames=5, size=64)
    assert len(hdr1) == len(ldr1) == 5
    assert all(np.array_equal(a, b) for a, b in zip(ldr1, ldr2))
    assert all(np.array_equal(a, b) for a, b in zip(hdr1, hdr2))
    assert hdr1[0].shape == (64, 64, 3) and ldr1[0].dtype == np.float32
    assert all(0.0 <= x.min() and x.max() <= 1.0 for x in ldr1)
    # 8-bit quantised; 5–15 % of the first frame's radiance values are above the clip level
    assert np.allclose(ldr1[0] * 255.0, np.round(ldr1[0] * 255.0), atol=1e-3)
    frac = float((hdr1[0] > 1.0).mean())
    assert 0.03 <= frac <= 0.17


def test_hdr_baselines_on_a_static_clip():
    import torch

    from tpn_cli import colour
    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    H = np.repeat((0.3 + 0.2 * np.sin(x / 5.0) * np.cos(y / 7.0))[..., None], 3, axis=2)
    H[10:20, 20:40] = 20.0  # far above the clip level
    D = np.clip(colour.camera_curve(torch.from_numpy(H)).numpy(), 0.0, 1.0)
    D = (np.round(D * 255.0) / 255.0).astype(np.float32)
    hdr, ldr = [H.astype(np.float32)] * 3, [D] * 3
    res = ev.evaluate_hdr_sequence(hdr, ldr, [(1, 0), (2, 0)], model=None)
    assert set(res) == {(1, 0), (2, 0)}
    r = res[(1, 0)]
    assert set(r) == {"icc", "copy_sat", "flow_sat", "flow_sat_cal", "flow_two_cal", "tpn"}
    # nothing moves: the key's radiance is exact in the saturated pixels, where the inverse
    # camera curve cannot go above the clip level
    assert r["copy_sat"]["log_rmse_sat"] < 1e-6
    assert r["flow_sat"]["log_rmse_sat"] < 1e-3
    assert r["icc"]["log_rmse_sat"] > 2.0
    assert r["copy_sat"]["pu21"] > r["icc"]["pu21"] + 5.0
    # outside the saturated pixels every method is the inverse camera curve
    assert r["copy_sat"]["log_rmse"] < r["icc"]["log_rmse"]
    assert r["copy_sat"]["log_rmse_unsat"] == r["icc"]["log_rmse_unsat"]
    # this clip's camera is the generic curve: the response fitted to its key-frame is as
    # good there (8-bit rounding of the codes only), and the same in the saturated pixels
    assert r["flow_sat_cal"]["log_rmse_unsat"] <= r["flow_sat"]["log_rmse_unsat"] + 1e-3
    assert r["flow_sat_cal"]["log_rmse_sat"] == r["flow_sat"]["log_rmse_sat"]
    # one key: the two-key baseline is the one-key one; the default `tpn hdr` (fusion, no
    # network) is exact where the key is, and follows the response elsewhere
    assert abs(r["flow_two_cal"]["log_rmse"] - r["flow_sat_cal"]["log_rmse"]) < 1e-9
    assert r["tpn"]["log_rmse_sat"] < 1e-2
    assert r["tpn"]["log_rmse"] <= r["flow_sat_cal"]["log_rmse"] + 1e-3


def test_hdr_clip_fits_the_response_per_run_and_runs_the_tpn_as_the_cli():
    """Each K is its own run (the response fitted to its key-frames); ``tpn`` is the
    default command (fusion of both keys, no network), ``tpn_net`` with the TPN, both
    through KeyPropagator: on a camera that is not the generic curve they beat it."""
    import torch

    from tpn_cli import colour
    from tpn_cli.models import TPN, task_config

    torch.manual_seed(0)
    model = TPN(task_config("hdr", encoder="signed", scale=2, residual=True, extra={"align": True})).eval()
    img = _still()
    hdr, _ = ev.hdr_sequence(np.random.default_rng(1), img, n_frames=5, size=48)
    # a camera far from the generic curve: sRGB's, with noise
    rng = np.random.default_rng(2)
    ldr = [np.round(np.clip(colour.linear_to_srgb(torch.from_numpy(np.clip(h, 0, 1))).numpy()
                            + rng.normal(0, 0.005, h.shape), 0, 1) * 255).astype(np.float32) / 255 for h in hdr]
    times: dict = {}
    res = ev.evaluate_hdr_clip(hdr, ldr, [2, 4], model, times, curve={"n": 0.9, "sigma": 0.6})
    assert set(res) == {2, 4}
    assert res[4]["assign"] == {1: 0, 2: 0, 3: 4}
    assert set(res[4]["pairs"]) == {(1, 0), (2, 0), (3, 4)}
    summ = ev.hdr_summary([res], 2)
    assert {"tpn", "tpn_net", "flow_sat_cal", "flow_two_cal", "flow_two_true", "icc_true"} <= set(summ)
    assert summ["tpn"]["log_rmse_unsat"] < 0.5 * summ["icc"]["log_rmse_unsat"]
    assert summ["tpn_net"]["log_rmse_unsat"] < 0.5 * summ["icc"]["log_rmse_unsat"]
    assert summ["flow_sat_cal"]["log_rmse"] < summ["flow_sat"]["log_rmse"]
    assert times["tpn"] > 0 and times["tpn_net"] > 0 and times["two_key"] > 0


class _SmallClip:
    """The first frames of a DAVIS sequence at 1/4 size (a fast real clip)."""

    def __init__(self, name: str, n: int):
        import cv2

        clip = sources.davis_clip(name)
        self.frames = [cv2.resize(clip.read(i), (214, 120), interpolation=cv2.INTER_AREA) for i in range(n)]

    def __len__(self):
        return len(self.frames)

    def read(self, i):
        return self.frames[i]


@pytest.mark.skipif(not sources.DAVIS_JPEG.exists(), reason="shared data not available")
def test_blend_of_real_predictions_follows_the_weights():
    """Blends are computed from the same predictions as the pairs: with all the distance
    weight on one key the blend is that key's prediction; an even blend of two keys is
    scored for flow and for a (flow-aligned) model."""
    from tpn_cli.models import TPN, task_config

    torch.manual_seed(0)
    model = TPN(task_config("colour", encoder="signed", scale=2, residual=True, extra={"align": True})).eval()
    clip = _SmallClip("goat", 9)
    one, even = ((0, 1.0), (8, 0.0)), ((0, 0.5), (8, 0.5))
    out: dict = {}
    res = ev.evaluate_colour_pairs(clip, [(4, 0), (4, 8)], {"tpn": model}, work_short_side=60,
                                   blends={4: {one, even}}, blend_out=out)
    by_key = {r.k: r for r in res}
    for m in ("flow", "tpn"):
        assert out[(4, one)][m] == pytest.approx(by_key[0].psnr[m], abs=1e-6)
        assert np.isfinite(out[(4, even)][m])
    assert out[(4, even)]["flow"] != pytest.approx(by_key[0].psnr["flow"], abs=1e-3)


def test_multiobject_check_scores_each_object_from_its_first_mask():
    """scripts/eval_multiobject.py: an object is propagated from the first mask holding it
    and scored on the later masks holding it; an object never annotated again is not."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "scripts" / "eval_multiobject.py"
    spec = importlib.util.spec_from_file_location("eval_multiobject", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = {k: np.zeros((4, 4), np.uint8) for k in (0, 5, 9, 12)}
    m[0][0, 0] = 1            # object 1 from frame 0,
    m[5][0, 0] = 1            # annotated again at 5 and 12
    m[5][1, 1] = 2            # object 2 appears at 5, annotated again at 9
    m[9][1, 1] = 2
    m[12][0, 0] = 1
    m[12][2, 2] = 3           # object 3 appears at 12, never annotated again
    assert mod.runs(m) == [(0, [1], [5, 12]), (5, [2], [9])]
