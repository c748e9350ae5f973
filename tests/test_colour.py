"""Unit tests of tpn_cli.colour against published and hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

import _colour_oracles as O
import tpn_eval.hdr as E
from tpn_cli import colour as C

F64 = torch.float64


def px(*rgb: float) -> torch.Tensor:
    """One pixel as a (3, 1, 1) float64 image."""
    return torch.tensor(rgb, dtype=F64).view(3, 1, 1)


def close(a: torch.Tensor, b, tol: float) -> None:
    b = torch.as_tensor(b, dtype=a.dtype)
    assert torch.allclose(a, b, atol=tol, rtol=0), f"{a} vs {b}"


# --------------------------------------------------------------------------- sRGB


def test_srgb_known_values():
    # 0.5 sRGB → ((0.5 + 0.055) / 1.055)^2.4; the linear segment below 0.04045.
    close(C.srgb_to_linear(torch.tensor([0.0, 0.04, 0.5, 1.0], dtype=F64)),
          [0.0, 0.04 / 12.92, ((0.555 / 1.055) ** 2.4), 1.0], 1e-12)
    close(C.linear_to_srgb(torch.tensor([0.0, 0.002, 0.18, 1.0], dtype=F64)),
          [0.0, 0.002 * 12.92, 1.055 * 0.18 ** (1 / 2.4) - 0.055, 1.0], 1e-12)


def test_srgb_round_trip_and_continuity():
    x = torch.linspace(0, 1, 1001, dtype=F64)
    close(C.linear_to_srgb(C.srgb_to_linear(x)), x, 1e-12)
    # The two pieces meet (to the 4-digit precision of the standard's constants).
    lo = C.srgb_to_linear(torch.tensor([0.04045], dtype=F64))
    hi = ((0.04045 + 0.055) / 1.055) ** 2.4
    assert abs(lo.item() - hi) < 1e-7


# --------------------------------------------------------------------------- Lab


# Published CIE-Lab (D65, 2°) of sRGB colours (e.g. Lindbloom's calculator, exact matrix);
# the rounded skimage/kornia matrix we use differs by at most ~0.003.
PUBLISHED_LAB = {
    (1.0, 0.0, 0.0): (53.2408, 80.0925, 67.2032),
    (0.0, 1.0, 0.0): (87.7347, -86.1827, 83.1793),
    (0.0, 0.0, 1.0): (32.2970, 79.1875, -107.8602),
    (1.0, 1.0, 0.0): (97.1393, -21.5537, 94.4780),
    (1.0, 0.0, 1.0): (60.3199, 98.2542, -60.8430),
    (0.0, 1.0, 1.0): (91.1132, -48.0875, -14.1312),
}


@pytest.mark.parametrize("rgb,lab", list(PUBLISHED_LAB.items()))
def test_lab_of_primaries_matches_published(rgb, lab):
    close(C.rgb_to_lab(px(*rgb)).flatten(), lab, 0.03)


def test_lab_white_black_gray():
    # Black is exactly 0. White: L = 100 exactly (the Y row sums to 1); a, b are the known
    # small offsets of the rounded matrix against the D65 white (-0.0025, +0.0047).
    close(C.rgb_to_lab(px(0, 0, 0)).flatten(), [0, 0, 0], 1e-12)
    close(C.rgb_to_lab(px(1, 1, 1)).flatten(), [100.0, -0.0025, 0.0047], 2e-4)
    # Mid gray 0.5: L = 116·(((0.555/1.055)^2.4)^(1/3)) − 16 = 53.389.
    lin = (0.555 / 1.055) ** 2.4
    assert abs(C.rgb_to_lab(px(0.5, 0.5, 0.5))[0].item() - (116 * lin ** (1 / 3) - 16)) < 1e-9
    assert abs(C.rgb_to_lab(px(0.5, 0.5, 0.5))[0].item() - 53.389) < 1e-3
    # Extremes of the 8-bit cube quoted in the reference: a ∈ [−86.18, 98.23], b ∈ [−107.86, 94.48].
    assert abs(C.rgb_to_lab(px(0, 1, 0))[1].item() - (-86.18)) < 0.01
    assert abs(C.rgb_to_lab(px(1, 0, 1))[1].item() - 98.23) < 0.01
    assert abs(C.rgb_to_lab(px(0, 0, 1))[2].item() - (-107.86)) < 0.01
    assert abs(C.rgb_to_lab(px(1, 1, 0))[2].item() - 94.48) < 0.01


def test_lab_dark_linear_segment():
    # Very dark gray: Y/Yn = lin ≤ 0.008856 uses f = 7.787 t + 16/116, so L = 116·7.787·lin.
    v = 0.02
    lin = v / 12.92
    lab = C.rgb_to_lab(px(v, v, v)).flatten()
    assert abs(lab[0].item() - 116 * 7.787 * lin) < 1e-6


def test_lab_round_trip_batched_and_float32():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 9, generator=g, dtype=F64)
    lab = C.rgb_to_lab(x)
    assert lab.shape == x.shape
    close(C.lab_to_rgb(lab), x, 1e-10)
    assert lab[:, 0].min() >= 0 and lab[:, 0].max() <= 100
    x32 = x.float()
    assert C.rgb_to_lab(x32).dtype == torch.float32
    close(C.lab_to_rgb(C.rgb_to_lab(x32)).double(), x, 1e-4)
    # Unbatched (3, H, W) and 5-D (N, T, 3, H, W) work the same way.
    close(C.rgb_to_lab(x[0]), lab[0], 1e-12)
    close(C.rgb_to_lab(x.unsqueeze(0)).squeeze(0), lab, 1e-12)


def test_lab_to_rgb_clips_out_of_gamut():
    out = C.lab_to_rgb(px(50.0, 120.0, -120.0))
    assert out.min() >= 0 and out.max() <= 1
    raw = C.lab_to_rgb(px(50.0, 120.0, -120.0), clip=False)
    assert raw.min() < 0 or raw.max() > 1


def test_lab_gradients_finite_at_black_and_white():
    x = torch.tensor([[0.0, 1.0], [0.0, 0.5]], dtype=F64).expand(3, 2, 2).clone().requires_grad_(True)
    C.rgb_to_lab(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_bad_channel_count_raises():
    with pytest.raises(ValueError):
        C.rgb_to_lab(torch.zeros(2, 4, 4))


# --------------------------------------------------------------------------- camera curve, log


def test_camera_curve_values():
    h = torch.tensor([0.0, 1.0, 2.0], dtype=F64)
    # f(0) = 0, f(1) = 1, f(2) = 1.6·2^0.9/(2^0.9 + 0.6).
    close(C.camera_curve(h), [0.0, 1.0, 1.6 * 2 ** 0.9 / (2 ** 0.9 + 0.6)], 1e-12)
    # f⁻¹(0.5) = (0.6·0.5/1.1)^(1/0.9) = 0.23610 (the reference's "≈ 0.353" is a slip:
    # f(0.2361) = 0.5 checks it).
    inv = C.inverse_camera_curve(torch.tensor([0.5], dtype=F64))
    close(inv, [(0.3 / 1.1) ** (1 / 0.9)], 1e-12)
    close(C.camera_curve(inv), [0.5], 1e-12)


def test_camera_curve_round_trip_and_params():
    h = torch.logspace(-4, 2, 200, dtype=F64)
    close(C.inverse_camera_curve(C.camera_curve(h)) / h, torch.ones_like(h), 1e-8)
    for n, s in [(0.5, 0.3), (1.4, 1.0)]:
        close(C.camera_curve(torch.tensor([1.0], dtype=F64), n, s), [1.0], 1e-12)
        close(C.inverse_camera_curve(C.camera_curve(h, n, s), n, s) / h, torch.ones_like(h), 1e-7)
    # Per-image parameters as tensors broadcast.
    n = torch.tensor([0.8, 1.0], dtype=F64).view(2, 1, 1, 1)
    x = torch.full((2, 3, 2, 2), 0.5, dtype=F64)
    y = C.camera_curve(x, n, 0.6)
    close(y[0, 0, 0, 0], 1.6 * 0.5 ** 0.8 / (0.5 ** 0.8 + 0.6), 1e-12)
    close(y[1, 0, 0, 0], 1.6 * 0.5 / 1.1, 1e-12)


def test_inverse_camera_curve_saturation_is_finite():
    d = torch.tensor([1.6, 2.0, -0.1], dtype=F64)
    out = C.inverse_camera_curve(d)
    assert torch.isfinite(out).all() and out[2] == 0


def test_log_encode_decode():
    h = torch.tensor([0.0, 0.5, 1.0, 100.0], dtype=F64)
    close(C.log_encode(h), torch.log(h + 0.01), 1e-12)
    close(C.log_encode(torch.tensor([0.0], dtype=F64)), [math.log(0.01)], 1e-12)
    close(C.log_decode(C.log_encode(h)), h, 1e-12)
    close(C.log_encode(torch.tensor([-1.0], dtype=F64)), [math.log(0.01)], 1e-12)


# --------------------------------------------------------------------------- blending


def test_percentile_threshold_matches_numpy_linear():
    # Max-channel values 0..99 → 95th percentile at position 0.95·99 = 94.05.
    v = torch.arange(100, dtype=F64).view(1, 1, 10, 10)
    img = torch.cat([v, v * 0.5, v * 0.1], dim=1)
    close(E.percentile_threshold(img), [94.05], 1e-12)
    close(E.percentile_threshold(img[0]), 94.05, 1e-12)
    close(E.percentile_threshold(img, q=0.5), [49.5], 1e-12)


def test_hdr_blend_hard_and_smooth():
    ldr = torch.full((1, 3, 1, 4), 0.5, dtype=F64)
    inv = (0.3 / 1.1) ** (1 / 0.9)
    pred = torch.tensor([0.1, 1.9, 2.0, 5.0], dtype=F64).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    out = E.hdr_blend(pred, ldr, threshold=2.0)
    close(out[0, 0, 0], [inv, inv, 2.0, 5.0], 1e-12)
    # Per-image thresholds.
    out2 = E.hdr_blend(pred.expand(2, 3, 1, 4), ldr.expand(2, 3, 1, 4),
                       threshold=torch.tensor([2.0, 1.0], dtype=F64))
    close(out2[1, 0, 0], [inv, 1.9, 2.0, 5.0], 1e-12)
    # Smooth ramp of width 0.5 around T = 2: α = clamp((m − 1)/1, 0, 1).
    out3 = E.hdr_blend(pred, ldr, threshold=2.0, width=0.5)
    a = torch.tensor([0.0, 0.9, 1.0, 1.0], dtype=F64)
    close(out3[0, 0, 0], (1 - a) * inv + a * pred[0, 0, 0], 1e-12)
    # The mask uses the channel max: one bright channel switches the whole pixel.
    p = torch.tensor([3.0, 0.1, 0.1], dtype=F64).view(1, 3, 1, 1)
    close(E.hdr_blend(p, ldr[..., :1], threshold=2.0).flatten(), p.flatten(), 1e-12)
    # Mask from the inverted LDR instead.
    out4 = E.hdr_blend(pred, ldr, threshold=0.2, mask_from="ldr")
    close(out4, pred, 1e-12)


def test_fill_saturated_takes_the_propagation_only_where_the_ldr_clips():
    # Channel max 0.5 (kept), 0.925 (half way up the ramp 0.90 → 0.95), 0.95 and 1.0 (filled).
    ldr = torch.tensor([[0.5, 0.1, 0.1], [0.2, 0.925, 0.3], [0.95, 0.0, 0.0], [1.0, 1.0, 1.0]],
                       dtype=F64).T.reshape(1, 3, 1, 4)
    pred = torch.full((1, 3, 1, 4), 7.0, dtype=F64)
    inv = C.inverse_camera_curve(ldr)
    a = torch.tensor([0.0, 0.5, 1.0, 1.0], dtype=F64)
    close(O.fill_saturated(pred, ldr), (1 - a) * inv + a * pred, 1e-12)
    hard = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=F64)
    close(O.fill_saturated(pred, ldr, ramp=0.0), (1 - hard) * inv + hard * pred, 1e-12)
    with pytest.raises(ValueError, match="ramp"):
        O.fill_saturated(pred, ldr, ramp=-0.1)


# --------------------------------------------------------------------------- PQ


def test_pq_check_values():
    nits = torch.tensor([100.0, 203.0, 1000.0, 10000.0], dtype=F64)
    close(C.pq_inverse_eotf(nits), [0.5081, 0.5807, 0.7518, 1.0], 1e-4)
    close(C.pq_inverse_eotf(torch.tensor([10000.0], dtype=F64)), [1.0], 1e-12)
    assert abs(C.pq_inverse_eotf(torch.tensor([100.0], dtype=F64)).item() - 0.508) < 1e-3
    # PQ(0) = c1^m2 (≈ 7.3e-7), and the EOTF of 0 is 0.
    close(C.pq_inverse_eotf(torch.tensor([0.0], dtype=F64)), [(3424 / 4096) ** (2523 / 4096 * 128)], 1e-15)
    close(O.pq_eotf(torch.tensor([0.0, 1.0], dtype=F64)), [0.0, 10000.0], 1e-9)


def test_pq_round_trip_and_gradient():
    nits = torch.logspace(-3, 4, 300, dtype=F64)
    close(O.pq_eotf(C.pq_inverse_eotf(nits)) / nits, torch.ones_like(nits), 1e-9)
    s = torch.linspace(0, 1, 101, dtype=F64)
    close(C.pq_inverse_eotf(O.pq_eotf(s))[1:], s[1:], 1e-9)
    x = torch.tensor([0.0, 1.0, 100.0], dtype=F64, requires_grad=True)
    C.pq_inverse_eotf(x).sum().backward()
    assert torch.isfinite(x.grad).all()


# --------------------------------------------------------------------------- HLG


def test_hlg_oetf_continuity_and_end_points():
    a = 0.17883277
    b, c = 1 - 4 * a, 0.5 - a * math.log(4 * a)
    assert abs(c - 0.55991073) < 1e-8
    e = torch.tensor([0.0, 1 / 12, 1.0], dtype=F64)
    close(C.hlg_oetf(e), [0.0, 0.5, 1.0], 1e-7)
    # Both branches give 0.5 at E = 1/12 (log branch evaluated explicitly).
    assert abs(a * math.log(12 / 12 - b) + c - 0.5) < 1e-12
    eps = 1e-9
    close(C.hlg_oetf(torch.tensor([1 / 12 - eps, 1 / 12 + eps], dtype=F64)), [0.5, 0.5], 1e-7)
    close(C.hlg_oetf(torch.tensor([0.01], dtype=F64)), [math.sqrt(0.03)], 1e-12)


def test_hlg_round_trips():
    e = torch.linspace(0, 1, 401, dtype=F64)
    close(O.hlg_inverse_oetf(C.hlg_oetf(e)), e, 1e-12)
    g = torch.Generator().manual_seed(1)
    sig = torch.rand(2, 3, 4, 5, generator=g, dtype=F64) * 0.9 + 0.05
    for peak, black in [(1000.0, 0.0), (2000.0, 0.0), (1000.0, 0.005)]:
        close(O.hlg_inverse_eotf(O.hlg_eotf(sig, peak, black), peak, black), sig, 1e-9)


def test_hlg_reference_white_and_peak():
    # 75 % HLG → E = 0.26496 → 1000·0.26496^1.2 ≈ 203 cd/m² on a 1000-nit display (gray).
    e = O.hlg_inverse_oetf(torch.tensor([0.75], dtype=F64))
    close(e, [0.26496], 1e-5)
    out = O.hlg_eotf(torch.full((3, 1, 1), 0.75, dtype=F64))
    close(out.flatten(), [1000 * e.item() ** 1.2] * 3, 1e-9)
    assert abs(out[0].item() - 203.0) < 0.5
    close(O.hlg_eotf(torch.ones(3, 1, 1, dtype=F64)).flatten(), [1000.0] * 3, 1e-4)


# --------------------------------------------------------------------------- primaries


def test_bt709_to_bt2020_matrix():
    ref = torch.tensor([[0.627404, 0.329283, 0.043313],
                        [0.069097, 0.919540, 0.011362],
                        [0.016391, 0.088013, 0.895595]], dtype=F64)
    close(C.BT709_TO_BT2020, ref, 2e-6)
    close(C.BT709_TO_BT2020.sum(dim=1), torch.ones(3, dtype=F64), 1e-12)  # white stays white
    x = torch.rand(2, 3, 3, 4, dtype=F64)
    close(O.bt2020_to_bt709(O.bt709_to_bt2020(x)), x, 1e-12)
    close(O.bt709_to_bt2020(px(1, 0, 0)).flatten(), ref[:, 0], 2e-6)


def test_rgb_primaries_matrix_bt709_is_srgb():
    # The exact BT.709/D65 matrix quoted in the reference.
    exact = torch.tensor([[0.412391, 0.357584, 0.180481],
                          [0.212639, 0.715169, 0.072192],
                          [0.019331, 0.119195, 0.950532]], dtype=F64)
    close(C.rgb_primaries_matrix("bt709"), exact, 1e-6)
    with pytest.raises(ValueError):
        C.rgb_primaries_matrix("p3")


def test_fast_frame_conversions_match_the_reference():
    """lightness / lightness_image (table lookup) give rgb_to_lab's L; lab_image_to_rgb
    (OpenCV) is within one code of lab_to_rgb, on a real frame and on every 8-bit grey."""
    from pathlib import Path

    import numpy as np

    from tpn_cli.media import VideoReader

    img = next(VideoReader(Path(__file__).parent / "data" / "dog_2997_audio.mp4").frames()).image
    grey = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)
    for im in (img, grey):
        t = torch.from_numpy(im).permute(2, 0, 1).float() / 255
        lab = C.rgb_to_lab(t)
        assert np.abs(C.lightness_image(im) - lab[0].numpy()).max() < 1e-3
        assert (C.lightness(t)[0] - lab[0]).abs().max() < 1e-3
        ref = (C.lab_to_rgb(lab) * 255).round().permute(1, 2, 0).numpy().astype(np.uint8)
        fast = C.lab_image_to_rgb(lab[0].numpy(), lab[1:].permute(1, 2, 0).numpy(), np.uint8)
        diff = np.abs(fast.astype(int) - ref)
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    im16 = img.astype(np.uint16) * 257
    t16 = torch.from_numpy(im16.astype(np.float32) / 65535).permute(2, 0, 1)
    assert np.abs(C.lightness_image(im16) - C.rgb_to_lab(t16)[0].numpy()).max() < 1e-3

# --------------------------------------------------------------------------- chroma up-sampling


def _disk_scene(size: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-res L (1, H, W) and ab (2, H, W): a bright disk with its own colour on a dark,
    differently coloured ground (the colour edge is exactly the lightness edge)."""
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    inside = (((y - 41.3) ** 2 + (x - 50.7) ** 2) < 27.0 ** 2).float()[None]
    L = 30.0 + 45.0 * inside
    ab = torch.cat([-20.0 + 60.0 * inside, 35.0 - 50.0 * inside])
    return L, ab


def _shrink(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return torch.nn.functional.interpolate(t[None], size=size, mode="bilinear",
                                           align_corners=False, antialias=True)[0]


def test_guided_upsampling_restores_colour_edges_that_follow_lightness():
    L, ab = _disk_scene()
    small = (24, 24)  # 4× smaller: bilinear smears the disk's colour over ~8 pixels
    ab_s, L_s = _shrink(ab, small), _shrink(L, small)
    bil = C.upsample_chroma(ab_s, L, L_s, method="bilinear")
    gui = C.upsample_chroma(ab_s, L, L_s, method="guided")
    err_bil = float(((bil - ab) ** 2).mean())
    err_gui = float(((gui - ab) ** 2).mean())
    assert err_gui < 0.25 * err_bil, (err_gui, err_bil)
    # the default low-res guide (L down-sampled) does as well here
    assert float(((C.upsample_chroma(ab_s, L) - ab) ** 2).mean()) < 0.25 * err_bil


def test_guided_upsampling_keeps_constant_colour_constant():
    torch.manual_seed(0)
    L = torch.rand(1, 61, 83) * 100  # texture in L must not leak into a flat colour
    ab = torch.tensor([12.5, -40.0]).view(2, 1, 1).expand(2, 20, 28).clone()
    out = C.upsample_chroma(ab, L)
    assert out.shape == (2, 61, 83)
    close(out, ab[:, :1, :1].expand(2, 61, 83), 1e-3)


@pytest.mark.parametrize("small,full", [((7, 11), (20, 33)), ((3, 2), (9, 5)), ((1, 1), (4, 6)),
                                        ((17, 23), (51, 70))])
def test_guided_upsampling_odd_sizes(small, full):
    torch.manual_seed(1)
    ab, L = torch.randn(2, *small) * 30, torch.rand(1, *full) * 100
    out = C.upsample_chroma(ab, L)
    assert out.shape == (2, *full) and torch.isfinite(out).all()
    # a radius wider than the image is fine too (windows are clipped to the image)
    assert C.guided_upsample(ab, L / 100, radius=5).shape == (2, *full)


def test_chroma_upsampling_at_equal_size_is_a_no_op():
    ab, L = torch.randn(2, 9, 13), torch.rand(1, 9, 13) * 100
    for method in C.CHROMA_UPSAMPLE:
        assert C.upsample_chroma(ab, L, method=method) is ab
    with pytest.raises(ValueError):
        C.upsample_chroma(torch.randn(2, 3, 3), L, method="bicubic")


def test_box_filter_matches_average_pooling():
    torch.manual_seed(2)
    x = torch.randn(1, 3, 11, 8, dtype=F64)
    for r in (1, 2):
        ref = torch.nn.functional.avg_pool2d(x, 2 * r + 1, 1, r, count_include_pad=False)
        close(C.upsample._box(x, r), ref, 1e-12)
