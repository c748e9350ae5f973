"""Unit tests of tpn_cli.metrics against hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tpn_cli import metrics as M

F64 = torch.float64


def rect(h: int, w: int, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
    """Bool mask with rows r0..r1 and columns c0..c1 (inclusive) set."""
    m = torch.zeros(h, w, dtype=torch.bool)
    m[r0: r1 + 1, c0: c1 + 1] = True
    return m


# --------------------------------------------------------------------------- RMSE / PSNR


def test_rmse_psnr_known_error():
    t = torch.zeros(2, 3, 4, 4, dtype=F64)
    p = t.clone()
    p[0] += 5.0                     # uniform error 5 → RMSE 5, PSNR 20·log10(51)
    p[1, 1, 2, 3] = 48.0            # one value off by 48 in 48 → MSE 48
    r = M.rmse(p, t)
    assert r.shape == (2,)
    assert torch.allclose(r, torch.tensor([5.0, math.sqrt(48.0)], dtype=F64))
    ps = M.psnr(p, t)
    assert abs(ps[0].item() - 20 * math.log10(51)) < 1e-12
    assert abs(ps[0].item() - 34.1514) < 1e-4
    assert abs(ps[1].item() - 10 * math.log10(255 ** 2 / 48)) < 1e-12
    # Unbatched frame gives a scalar; identical frames give +inf.
    assert M.psnr(p[0], t[0]).dim() == 0
    assert math.isinf(M.psnr(t[0], t[0]).item())
    # numpy and uint8 inputs work (no wrap-around in the difference).
    a = np.full((3, 2, 2), 10, dtype=np.uint8)
    b = np.full((3, 2, 2), 250, dtype=np.uint8)
    assert M.rmse(a, b).item() == 240.0


def test_to_rgb255():
    x = torch.tensor([-0.1, 0.0, 0.5, 0.999, 1.2], dtype=F64)
    assert M.to_rgb255(x).tolist() == [0.0, 0.0, 128.0, 255.0, 255.0]
    assert M.to_rgb255(x, quantize=False)[2].item() == 127.5


def test_mean_non_key():
    vals = [100.0, 30.0, 32.0, 40.0, 100.0, 34.0]
    assert M.mean_non_key(vals, key_frames=[0, 4]) == pytest.approx(34.0)
    assert M.mean_non_key(vals) == pytest.approx(sum(vals) / 6)
    # Explicit frame indices (e.g. a slice of a clip starting at frame 10).
    assert M.mean_non_key([1.0, 2.0, 3.0], key_frames=[11], frame_indices=[10, 11, 12]) == 2.0
    assert math.isnan(M.mean_non_key([1.0], key_frames=[0]))
    with pytest.raises(ValueError):
        M.mean_non_key([1.0, 2.0], frame_indices=[0])


# --------------------------------------------------------------------------- DAVIS primitives


def test_boundary_radius():
    assert M.boundary_radius(480, 854) == 8           # ceil(0.008 · 979.65) = ceil(7.84)
    assert M.boundary_radius(1080, 1920) == 18
    assert M.boundary_radius(100, 100) == 2           # ceil(1.131)
    assert M.boundary_radius(100, 100, bound_th=3) == 3


def test_disk():
    assert M.disk(0).sum() == 1
    assert M.disk(1).tolist() == [[False, True, False], [True, True, True], [False, True, False]]
    assert M.disk(2).sum() == 13
    assert M.disk(8).shape == (17, 17)


def test_dilate_disk_matches_convolution():
    g = torch.Generator().manual_seed(0)
    m = torch.rand(2, 23, 31, generator=g) > 0.97
    for r in (0, 1, 2, 5):
        k = M.disk(r).to(F64)[None, None]
        ref = torch.nn.functional.conv2d(m.to(F64)[:, None], k, padding=r)[:, 0] > 0
        assert torch.equal(M.dilate_disk(m, r), ref), r
    # A single pixel dilates to the disk itself.
    one = torch.zeros(11, 11, dtype=torch.bool)
    one[5, 5] = True
    assert torch.equal(M.dilate_disk(one, 3)[2:9, 2:9], M.disk(3))
    assert M.dilate_disk(one, 3).sum() == M.disk(3).sum()


def test_seg2bmap_rectangle():
    # The boundary of rows/cols 20..59 is the perimeter of the square 19..59 (half a pixel
    # toward the origin): 4·41 − 4 = 160 pixels.
    m = rect(100, 100, 20, 59, 20, 59)
    b = M.seg2bmap(m)
    outer, inner = rect(100, 100, 19, 59, 19, 59), rect(100, 100, 20, 58, 20, 58)
    assert torch.equal(b, outer & ~inner)
    assert b.sum() == 160
    # An object touching the image border has no boundary along the border.
    full = torch.ones(5, 6, dtype=torch.bool)
    assert M.seg2bmap(full).sum() == 0
    assert M.seg2bmap(torch.zeros(5, 6, dtype=torch.bool)).sum() == 0
    # Last row compares only east, last column only south, corner 0.
    x = torch.zeros(3, 3, dtype=torch.bool)
    x[2, 2] = True
    assert M.seg2bmap(x).tolist() == [[False, False, False],
                                      [False, True, True],
                                      [False, True, False]]


def test_region_similarity_rectangles():
    a = rect(20, 20, 0, 9, 0, 9)      # 100 px
    b = rect(20, 20, 5, 14, 5, 14)    # 100 px, overlap 5×5 = 25
    assert M.region_similarity(a, b).item() == pytest.approx(25 / 175)
    assert M.region_similarity(a, a).item() == 1.0
    empty = torch.zeros(20, 20, dtype=torch.bool)
    assert M.region_similarity(empty, empty).item() == 1.0     # both absent → 1
    assert M.region_similarity(a, empty).item() == 0.0
    j = M.region_similarity(torch.stack([a, a]), torch.stack([b, a]))
    assert j.tolist() == pytest.approx([1 / 7, 1.0])
    # Void pixels leave both intersection and union.
    void = rect(20, 20, 0, 4, 0, 19)   # rows 0..4: removes 50 px of a, 0 of b
    assert M.region_similarity(a, b, void).item() == pytest.approx(25 / 125)


def test_boundary_f_shift_within_and_outside_tolerance():
    gt = rect(100, 100, 20, 59, 20, 59)            # radius 2 at 100×100
    inside = rect(100, 100, 20, 59, 22, 61)        # shifted by 2 ≤ r: every pixel matched
    assert M.boundary_f_measure(inside, gt).item() == 1.0
    # Shifted by 5 > r. The shifted square's perimeter (160 px): top and bottom rows match
    # at x = 24..61 (38 each, ends within 2 of the GT corner), the left column matches only
    # 2 pixels near each end (within 2 of the GT's top/bottom rows), the right column none:
    # 38 + 38 + 4 = 80 → P = 0.5, and by symmetry R = 0.5, F = 0.5.
    outside = rect(100, 100, 20, 59, 25, 64)
    f, p, r = M.boundary_f_measure(outside, gt, return_pr=True)
    assert (f.item(), p.item(), r.item()) == (0.5, 0.5, 0.5)
    # A larger explicit tolerance (bound_th ≥ 1 is in pixels) covers the shift.
    assert M.boundary_f_measure(outside, gt, bound_th=5).item() == 1.0
    assert M.boundary_f_measure(outside, gt, bound_th=4).item() < 1.0


def test_boundary_f_empty_cases():
    empty = torch.zeros(30, 30, dtype=torch.bool)
    obj = rect(30, 30, 5, 10, 5, 10)
    f, p, r = M.boundary_f_measure(empty, empty, return_pr=True)
    assert (f.item(), p.item(), r.item()) == (1.0, 1.0, 1.0)
    f, p, r = M.boundary_f_measure(empty, obj, return_pr=True)    # nothing predicted
    assert (f.item(), p.item(), r.item()) == (0.0, 1.0, 0.0)
    f, p, r = M.boundary_f_measure(obj, empty, return_pr=True)    # object absent in GT
    assert (f.item(), p.item(), r.item()) == (0.0, 0.0, 1.0)
    batch = M.boundary_f_measure(torch.stack([obj, empty]), torch.stack([obj, obj]))
    assert batch.tolist() == [1.0, 0.0]


def test_davis_statistics():
    x = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    mean, recall, decay = M.davis_statistics(x)
    assert mean == pytest.approx(0.6)
    assert recall == pytest.approx(5 / 9)        # strictly above 0.5
    # N = 9: linspace(1, 9, 5) = 1, 3, 5, 7, 9 → edges 0, 2, 4, 6, 8; first bin x[0:3],
    # last bin x[6:9]: 0.9 − 0.3 = 0.6.
    assert decay == pytest.approx(0.6)
    m, _, _ = M.davis_statistics([1.0, float("nan"), 0.0])
    assert m == 0.5


# --------------------------------------------------------------------------- DAVIS sequences


def _sequence():
    """5 frames 40×40, two objects; frames 0 and 4 deliberately wrong (excluded)."""
    t, h, w = 5, 40, 40
    gt = torch.zeros(t, h, w, dtype=torch.int64)
    gt[:, 5:15, 5:15] = 1
    gt[:, 20:30, 20:30] = 2
    gt[:, 0, 0] = 255                         # a void pixel: treated as background
    pred = gt.clone()
    pred[:, 0, 0] = 0
    pred[0] = 0
    pred[4] = 0
    pred[2, 20:30, 20:30] = 0                 # object 2 lost in frame 2
    pred[3, 5:15, 5:10] = 0                   # object 1 half lost in frame 3
    return pred, gt


def test_evaluate_davis_sequence_two_objects():
    pred, gt = _sequence()
    res = M.evaluate_davis_sequence(pred, gt)
    assert res.frames == [1, 2, 3]
    assert res.n_objects == 2
    assert res.j.shape == (2, 3)
    assert res.j[0].tolist() == pytest.approx([1.0, 1.0, 0.5])
    assert res.j[1].tolist() == pytest.approx([1.0, 0.0, 1.0])
    assert res.j_mean == pytest.approx([2.5 / 3, 2 / 3])
    assert res.f[1].tolist() == pytest.approx([1.0, 0.0, 1.0])
    assert res.f[0, :2].tolist() == [1.0, 1.0]
    assert 0.0 < res.f[0, 2].item() < 1.0
    assert res.J == pytest.approx((2.5 / 3 + 2 / 3) / 2)
    assert res.JF == pytest.approx((res.J + res.F) / 2)
    # Including first and last frames changes the numbers.
    all_frames = M.evaluate_davis_sequence(pred, gt, exclude_first_last=False)
    assert all_frames.frames == [0, 1, 2, 3, 4]
    assert all_frames.J < res.J


def test_evaluate_davis_missing_and_extra_objects():
    pred, gt = _sequence()
    only1 = torch.where(pred == 2, torch.zeros_like(pred), pred)     # object 2 never predicted
    res = M.evaluate_davis_sequence(only1, gt)
    assert res.j[1].tolist() == [0.0, 0.0, 0.0]
    assert res.f_mean[1] == 0.0
    bad = pred.clone()
    bad[1, 35:, 35:] = 3
    with pytest.raises(ValueError):
        M.evaluate_davis_sequence(bad, gt)


def test_davis_summary_weights_objects_not_sequences():
    pred, gt = _sequence()
    two = M.evaluate_davis_sequence(pred, gt)                          # J per object 5/6, 2/3
    one = M.evaluate_davis_sequence((gt == 1).long(), (gt == 1).long())  # J = 1
    s = M.davis_summary([two, one])
    assert s["J-Mean"] == pytest.approx((2.5 / 3 + 2 / 3 + 1.0) / 3)
    assert s["J&F-Mean"] == pytest.approx((s["J-Mean"] + s["F-Mean"]) / 2)
    assert set(s) >= {"J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"}


def test_davis_480p_shift_within_radius():
    # A 480p shape exercises the radius-8 disk; 4 frames → 2 evaluated.
    gt = torch.zeros(4, 480, 854, dtype=torch.uint8)
    gt[:, 100:300, 200:500] = 1
    pred = torch.roll(gt, shifts=6, dims=2)          # shift 6 ≤ 8: boundary fully matched
    res = M.evaluate_davis_sequence(pred.numpy(), gt.numpy())
    assert res.f[0].tolist() == [1.0, 1.0]
    assert res.j[0].tolist() == pytest.approx([294 * 200 / (306 * 200)] * 2)


# --------------------------------------------------------------------------- HDR


def test_log_rmse():
    t = torch.ones(2, 3, 2, 2, dtype=F64)
    p = t.clone()
    p[0] = math.e * 1.01 - 0.01     # log(p + 0.01) − log(1.01) = 1 everywhere
    r = M.log_rmse(p, t)
    assert r.tolist() == pytest.approx([1.0, 0.0])
    # Mask: only one pixel of frame 0 differs, the mask picks it.
    q = t.clone()
    q[0, :, 0, 0] = math.e * 1.01 - 0.01
    mask = torch.zeros(2, 1, 2, 2, dtype=F64)
    mask[:, :, 0, 0] = 1
    assert M.log_rmse(q, t, mask=mask).tolist() == pytest.approx([1.0, 0.0])
    assert M.log_rmse(q, t).tolist() == pytest.approx([0.5, 0.0])   # √(1/4)


def test_pu21_check_values():
    y = torch.tensor([0.1, 1.0, 100.0, 203.0, 1000.0, 10000.0], dtype=F64)
    ref = [5.7, 36.5, 256.4, 303.8, 420.1, 595.4]
    assert M.pu21_encode(y).tolist() == pytest.approx(ref, abs=0.06)
    # Clamped to [0.005, 10000].
    v = M.pu21_encode(torch.tensor([0.0, 0.005, 1e5, 1e4], dtype=F64)).tolist()
    assert v[0] == v[1] and v[2] == v[3]


def test_pu21_psnr():
    t = torch.full((1, 3, 2, 2), 100.0, dtype=F64)
    p = torch.full((1, 3, 2, 2), 1000.0, dtype=F64)
    d = (M.pu21_encode(torch.tensor(1000.0)) - M.pu21_encode(torch.tensor(100.0))).item()
    got = M.pu21_psnr(p, t, nits_per_unit=1.0).item()
    assert got == pytest.approx(20 * math.log10(256 / d))
    # Relative input with the default 1.0 ↦ 203 nits.
    assert M.pu21_psnr(p / 203, t / 203).item() == pytest.approx(got)
    # Luminance mode on a gray image equals RGB mode (weights sum to 1).
    assert M.pu21_psnr(p, t, nits_per_unit=1.0, mode="y").item() == pytest.approx(got)
    assert math.isinf(M.pu21_psnr(t, t).item())


# --------------------------------------------------------------------------- style energy


def test_style_energy_ratio():
    g = torch.Generator().manual_seed(0)
    ab = torch.randn(2, 2, 8, 8, generator=g, dtype=F64) * 20 + 5
    r = M.style_energy_ratio(0.5 * ab + 3.0, ab)       # halved contrast, shifted mean
    assert r.tolist() == pytest.approx([0.25, 0.25])
    assert M.style_energy_ratio(ab, ab).tolist() == pytest.approx([1.0, 1.0])
    flat = ab.mean(dim=(-2, -1), keepdim=True).expand_as(ab)
    assert M.style_energy_ratio(flat, ab).tolist() == pytest.approx([0.0, 0.0])
    # Uncentred: ratio of mean squares.
    assert M.style_energy_ratio(2 * ab, ab, centered=False).tolist() == pytest.approx([4.0, 4.0])
