"""Colour and radiance conversions used by every task: small, typed torch functions.

Conventions
  * Images are float tensors with the colour channel at dim -3: (3, H, W), (N, 3, H, W),
    (N, T, 3, H, W) all work. Per-value functions (transfer curves, camera curve,
    log-HDR) are element-wise and accept any shape.
  * dtype and device follow the input; everything is differentiable (branches are
    written so that no NaN gradient leaks from the branch that is not taken).
  * sRGB values are in [0, 1]; linear RGB is scene-referred and may exceed 1.
  * CIE-Lab uses D65 / 2° with the constants of scikit-image and kornia (reference
    hdr-metrics-io.md §4): L in [0, 100], a in about [-86, 98], b in about [-108, 95]
    over the sRGB cube. Because the sRGB→XYZ matrix is the rounded one, sRGB white
    maps to L = 100, a ≈ -0.0025, b ≈ +0.0047, not exactly 0 (same as skimage).
  * HDR radiance is relative: 1.0 is the LDR clip level (f(1) = 1 for the camera
    curve); :data:`REFERENCE_WHITE_NITS` (203 cd/m², BT.2408) is the default mapping
    to absolute luminance for PQ/HLG and PU21.
"""
from __future__ import annotations

import math
from typing import Literal, Union

import torch
import torch.nn.functional as F

__all__ = [
    "AB_SCALE",
    "REFERENCE_WHITE_NITS",
    "LOG_EPS", "CLIP_LEVEL", "CLIP_RAMP",
    "srgb_to_linear",
    "linear_to_srgb",
    "rgb_to_xyz",
    "xyz_to_rgb",
    "xyz_to_lab",
    "lab_to_xyz",
    "rgb_to_lab",
    "lab_to_rgb",
    "CHROMA_UPSAMPLE",
    "upsample_chroma",
    "guided_upsample",
    "camera_curve",
    "inverse_camera_curve",
    "log_encode",
    "log_decode",
    "percentile_threshold",
    "hdr_blend", "fill_saturated",
    "pq_inverse_eotf",
    "pq_eotf",
    "pq_encode",
    "pq_decode",
    "hlg_oetf",
    "hlg_inverse_oetf",
    "hlg_ootf",
    "hlg_inverse_ootf",
    "hlg_eotf",
    "hlg_inverse_eotf",
    "rgb_primaries_matrix",
    "BT709_TO_BT2020",
    "BT2020_TO_BT709",
    "bt709_to_bt2020",
    "bt2020_to_bt709",
]

Number = Union[float, torch.Tensor]

#: Divide ab by this to get values in about [-1, 1] (max |ab| over the sRGB cube is 107.9).
AB_SCALE = 110.0
#: BT.2408 HDR reference white: relative radiance 1.0 maps to this many cd/m² by default.
REFERENCE_WHITE_NITS = 203.0
#: Offset of the log-HDR property U = log(H + LOG_EPS).
LOG_EPS = 0.01
#: HDR output (:func:`fill_saturated`): an LDR pixel clips at this channel max; the
#: propagation is blended in over the ``CLIP_RAMP`` below it.
CLIP_LEVEL, CLIP_RAMP = 0.95, 0.05


def _check_channels(x: torch.Tensor, name: str = "image") -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have 3 channels at dim -3, got shape {tuple(x.shape)}")


def _apply_matrix(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """3×3 matrix times the colour vector at dim -3 of x."""
    _check_channels(x)
    m = m.to(dtype=x.dtype, device=x.device)
    return torch.einsum("ij,...jhw->...ihw", m, x)


def _pow_pos(x: torch.Tensor, p: Number) -> torch.Tensor:
    """x^p where x > 0 and 0 elsewhere, with a finite gradient everywhere.

    The clamp keeps pow away from 0 and negatives, so the branch that torch.where does not
    select never produces inf/NaN gradients.
    """
    tiny = torch.finfo(x.dtype).tiny if x.is_floating_point() else 1e-30
    return torch.where(x > 0, x.clamp(min=tiny).pow(p), torch.zeros_like(x))


# ---------------------------------------------------------------------------------------
# sRGB transfer
# ---------------------------------------------------------------------------------------

def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB decode (IEC 61966-2-1): C/12.92 for C ≤ 0.04045, else ((C + 0.055)/1.055)^2.4."""
    return torch.where(x <= 0.04045, x / 12.92, _pow_pos((x + 0.055) / 1.055, 2.4))


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """sRGB encode: 12.92·C for C ≤ 0.0031308, else 1.055·C^(1/2.4) − 0.055. No clipping."""
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * _pow_pos(x, 1.0 / 2.4) - 0.055)


# ---------------------------------------------------------------------------------------
# CIE XYZ and Lab (D65, 2°), scikit-image / kornia constants
# ---------------------------------------------------------------------------------------

_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423],
     [0.212671, 0.715160, 0.072169],
     [0.019334, 0.119193, 0.950227]], dtype=torch.float64)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_D65_WHITE = (0.95047, 1.0, 1.08883)
_LAB_EPS = 0.008856          # (6/29)^3, as rounded by skimage
_LAB_KAPPA = 7.787           # 1 / (3 (6/29)^2), as rounded by skimage
_LAB_F_EPS = 0.2068966       # 6/29


def _white(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(_D65_WHITE, dtype=x.dtype, device=x.device).view(3, 1, 1)


def rgb_to_xyz(rgb_linear: torch.Tensor) -> torch.Tensor:
    """Linear sRGB/BT.709 → CIE XYZ (D65), (…, 3, H, W)."""
    return _apply_matrix(_RGB_TO_XYZ, rgb_linear)


def xyz_to_rgb(xyz: torch.Tensor) -> torch.Tensor:
    """CIE XYZ (D65) → linear sRGB/BT.709, (…, 3, H, W). No clipping."""
    return _apply_matrix(_XYZ_TO_RGB, xyz)


def xyz_to_lab(xyz: torch.Tensor) -> torch.Tensor:
    """CIE XYZ (D65) → CIE-Lab: L in [0, 100]."""
    _check_channels(xyz, "xyz")
    t = xyz / _white(xyz)
    f = torch.where(t > _LAB_EPS, _pow_pos(t, 1.0 / 3.0), _LAB_KAPPA * t + 16.0 / 116.0)
    fx, fy, fz = f.unbind(dim=-3)
    lightness = 116.0 * fy - 16.0
    a = 500.0 * (fx - fy)
    b = 200.0 * (fy - fz)
    return torch.stack((lightness, a, b), dim=-3)


def lab_to_xyz(lab: torch.Tensor) -> torch.Tensor:
    """CIE-Lab → CIE XYZ (D65). f_z is clamped at 0 (as skimage and kornia do)."""
    _check_channels(lab, "lab")
    lightness, a, b = lab.unbind(dim=-3)
    fy = (lightness + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = (fy - b / 200.0).clamp(min=0.0)
    f = torch.stack((fx, fy, fz), dim=-3)
    t = torch.where(f > _LAB_F_EPS, f * f * f, (f - 16.0 / 116.0) / _LAB_KAPPA)
    return t * _white(lab)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] (…, 3, H, W) → CIE-Lab (L in [0, 100], ab about ±110)."""
    return xyz_to_lab(rgb_to_xyz(srgb_to_linear(rgb)))


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIE-Lab (…, 3, H, W) → sRGB; clipped to [0, 1] unless ``clip=False``.

    A propagated frame is ``lab_to_rgb(torch.cat([L_true, ab_pred], dim=-3))``.
    """
    rgb = linear_to_srgb(xyz_to_rgb(lab_to_xyz(lab)))
    return rgb.clamp(0.0, 1.0) if clip else rgb


# ---------------------------------------------------------------------------------------
# Chroma up-sampling guided by the full-resolution lightness
# ---------------------------------------------------------------------------------------

#: ``--chroma-upsample`` choices; the first is the default.
CHROMA_UPSAMPLE = ("guided", "bilinear")


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)² window of (…, h, w); the border averages only real pixels.

    Separable sums of shifted slices: on CPU this is ~10× faster than avg_pool2d.
    """
    if r == 0:
        return x
    h, w = x.shape[-2:]
    p = F.pad(x, (r, r, r, r))
    rows = p[..., :, 0:w] + p[..., :, 1:1 + w]
    for i in range(2, 2 * r + 1):
        rows += p[..., :, i:i + w]  # in place: this runs on every frame
    total = rows[..., 0:h, :] + rows[..., 1:1 + h, :]
    for i in range(2, 2 * r + 1):
        total += rows[..., i:i + h, :]

    def count(n: int) -> torch.Tensor:  # real pixels in each window along one axis
        i = torch.arange(n, device=x.device)
        return ((i + r).clamp(max=n - 1) - (i - r).clamp(min=0) + 1).to(x.dtype)

    return total.div_(count(h)[:, None] * count(w)[None, :])


def _bilinear(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, h, w) → (N, C, H, W), bilinear, antialiased when shrinking."""
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def shrink_guide(guide: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The guide (1, H, W) down-sampled to ``size`` (h, w): :func:`guided_upsample`'s default
    ``guide_small``. Callers that up-sample several sources against one guide make it once."""
    return _bilinear(guide[None], size)[0]


def guided_upsample(src: torch.Tensor, guide: torch.Tensor, guide_small: torch.Tensor | None = None,
                    radius: int = 1, eps: float = 1e-2) -> torch.Tensor:
    """Up-sample ``src`` (C, h, w) to the size of ``guide`` (1, H, W), edges following the guide.

    Fast guided filter (He & Sun 2015), made safe for up-sampling: the local linear model
    src ≈ A·g + B is fitted at low resolution on ``guide_small`` (1, h, w), the guide
    exactly as ``src`` saw it (default: ``guide`` down-sampled), with (2·radius+1)² box
    windows and regulariser ``eps`` (in guide units squared); A is box-averaged, but
    B = src − A·guide_small is taken per pixel, so that

        out = bilinear(A) · guide + bilinear(B).

    Where the guide is flat or src does not follow it (A ≈ 0) this is plain bilinear;
    the textbook output (B box-averaged too) smooths src there and lost 1–6 dB to
    bilinear on real frames. Across a guide edge the step comes from the full-resolution
    guide. radius 1 and eps 1e-2 (guide in [0, 1]) were the best balance of the grid in
    scripts/eval_upsample.py: a smaller eps gains a little more where the true chroma is
    sharp (4:4:4) but over-sharpens where it is soft (4:2:0 video), and radius 2 is worse
    on both. Equal sizes: ``src`` unchanged.
    Memory: two (C, H, W) tensors at the output size; any device.
    """
    size = tuple(guide.shape[-2:])
    if tuple(src.shape[-2:]) == size:
        return src
    if guide_small is None:
        guide_small = shrink_guide(guide, tuple(src.shape[-2:]))
    g, p = guide_small[None], src[None]
    c = p.shape[1]
    stats = _box(torch.cat([g, p, g * g, g * p], dim=1), radius)  # one pass: fewer small ops
    mean_g, mean_p, mean_gg, mean_gp = stats.split([1, c, 1, c], dim=1)
    var = mean_gg - mean_g * mean_g
    cov = mean_gp - mean_g * mean_p
    slope = _box(cov / (var + eps), radius)  # averaged over the windows covering each pixel
    offset = p - slope * g
    out = _enlarge(slope[0], size).mul_(guide)  # in place: full-size temporaries cost most
    return out.add_(_enlarge(offset[0], size))


def _enlarge(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, h, w) → (C, H, W), bilinear (half-pixel centres, as ``align_corners=False``).
    On the CPU by OpenCV: 9× faster than F.interpolate at 480p, equal to 1e-7."""
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return _bilinear(x[None], size)[0]
    import cv2

    hwc = cv2.resize(x.permute(1, 2, 0).contiguous().numpy(), (size[1], size[0]),
                     interpolation=cv2.INTER_LINEAR)
    return torch.from_numpy(hwc.reshape(size[0], size[1], -1)).permute(2, 0, 1)


def upsample_chroma(ab: torch.Tensor, L: torch.Tensor, L_small: torch.Tensor | None = None,
                    method: str = "guided") -> torch.Tensor:
    """Working-size chroma ab (2, h, w) → the size of the full-resolution lightness L (1, H, W).

    ``method="guided"``: :func:`guided_upsample` guided by L, the linear model fitted on
    ``L_small`` (1, h, w), the lightness the network saw (default: L down-sampled, which
    scored the same); ``"bilinear"``: plain bilinear. Measured in scripts/eval_upsample.py.
    """
    size = tuple(L.shape[-2:])
    if method == "bilinear":
        return ab if tuple(ab.shape[-2:]) == size else _bilinear(ab[None], size)[0]
    if method != "guided":
        raise ValueError(f"method must be one of {CHROMA_UPSAMPLE}, got {method!r}")
    # eps 1e-2 for a guide in [0, 1] is 1e-2·100² for L in [0, 100] (no scaled full-size copy)
    return guided_upsample(ab, L, L_small, radius=1, eps=1e-2 * 100.0**2)


# ---------------------------------------------------------------------------------------
# HDR: camera curve, log domain, blending
# ---------------------------------------------------------------------------------------

def camera_curve(h: torch.Tensor, n: Number = 0.9, sigma: Number = 0.6) -> torch.Tensor:
    """HDRCNN camera curve f(H) = (1 + σ) Hⁿ / (Hⁿ + σ); f(0) = 0, f(1) = 1.

    Negative radiance is treated as 0. The result is not clipped: values above 1 are
    what an 8-bit LDR would saturate.
    """
    hn = _pow_pos(h, n)
    return (1.0 + sigma) * hn / (hn + sigma)


def inverse_camera_curve(d: torch.Tensor, n: Number = 0.9, sigma: Number = 0.6,
                         eps: float = 1e-10) -> torch.Tensor:
    """f⁻¹(D) = (σ D / (1 + σ − D))^(1/n) for D in [0, 1 + σ).

    D is clamped at 0 below and the denominator is floored at ``eps`` (as HDRCNN does),
    so D ≥ 1 + σ gives a large finite value instead of inf/NaN.
    """
    d = d.clamp(min=0.0)
    ratio = sigma * d / (1.0 + sigma - d).clamp(min=eps)
    return _pow_pos(ratio, 1.0 / n)


def log_encode(h: torch.Tensor, eps: float = LOG_EPS) -> torch.Tensor:
    """The HDR property U = log(H + eps) (natural log); negative H is treated as 0."""
    return torch.log(h.clamp(min=0.0) + eps)


def log_decode(u: torch.Tensor, eps: float = LOG_EPS) -> torch.Tensor:
    """Exact inverse of :func:`log_encode` on its range: H = exp(U) − eps (may be > −eps)."""
    return torch.exp(u) - eps


def _reduce_channels(x: torch.Tensor, reduce: Literal["max", "luminance", "mean"]) -> torch.Tensor:
    """(…, 3, H, W) → (…, 1, H, W)."""
    _check_channels(x)
    if reduce == "max":
        return x.amax(dim=-3, keepdim=True)
    if reduce == "mean":
        return x.mean(dim=-3, keepdim=True)
    if reduce == "luminance":
        w = torch.tensor((0.212671, 0.715160, 0.072169), dtype=x.dtype, device=x.device)
        return (x * w.view(3, 1, 1)).sum(dim=-3, keepdim=True)
    raise ValueError(f"reduce must be 'max', 'luminance' or 'mean', got {reduce!r}")


def _quantile_last(x: torch.Tensor, q: float) -> torch.Tensor:
    """Linear-interpolated quantile over the last dim (numpy's default), any size."""
    n = x.shape[-1]
    if n == 0:
        raise ValueError("quantile of an empty tensor")
    s = x.sort(dim=-1).values
    pos = q * (n - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return s[..., lo] + (s[..., hi] - s[..., lo]) * frac


def percentile_threshold(key_hdr: torch.Tensor, q: float = 0.95,
                         reduce: Literal["max", "luminance", "mean"] = "max") -> torch.Tensor:
    """Blending threshold T of a key-frame: the q-quantile of its per-pixel radiance.

    ``key_hdr`` (…, 3, H, W) linear HDR. The per-pixel value is the max over channels by
    default (HDRCNN's mask convention); q = 0.95 "removes the 5 % brightest pixels"
    (TPN). Returns one T per image, shape (…,). Interpolation is linear, like numpy.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q}")
    m = _reduce_channels(key_hdr, reduce)
    return _quantile_last(m.flatten(start_dim=-3), q)


def hdr_blend(pred_hdr: torch.Tensor, ldr: torch.Tensor, threshold: Number,
              width: float = 0.0, n: Number = 0.9, sigma: Number = 0.6,
              mask_from: Literal["pred", "ldr"] = "pred",
              reduce: Literal["max", "luminance", "mean"] = "max") -> torch.Tensor:
    """Final HDR frame: the inverted LDR where the radiance is below T, the propagation above.

    ``pred_hdr`` (…, 3, H, W) propagated linear radiance (``log_decode`` of the output);
    ``ldr`` (…, 3, H, W) the frame's LDR in [0, 1]; ``threshold`` T, a float or one value
    per image (…,), usually :func:`percentile_threshold` of the key-frame.

    With α the blending weight at each pixel (same for the three channels),
    H = (1 − α)·f⁻¹(LDR) + α·pred. The per-pixel value m that decides α is the channel
    max (``reduce``) of the prediction (``mask_from="pred"``, the TPN rule "f⁻¹(D) where
    the predicted H < T") or of f⁻¹(LDR) (``mask_from="ldr"``).
    ``width = 0``: hard switch, α = [m ≥ T]. ``width = w > 0``: smooth ramp
    α = clamp((m − T(1 − w)) / (T w), 0, 1), which avoids seams.
    """
    _check_channels(pred_hdr, "pred_hdr")
    _check_channels(ldr, "ldr")
    inv = inverse_camera_curve(ldr, n=n, sigma=sigma)
    m = _reduce_channels(pred_hdr if mask_from == "pred" else inv, reduce)
    t = torch.as_tensor(threshold, dtype=pred_hdr.dtype, device=pred_hdr.device)
    if t.dim() > 0:
        t = t.reshape(*t.shape, 1, 1, 1)
    if width < 0.0:
        raise ValueError(f"width must be ≥ 0, got {width}")
    if width == 0.0:
        alpha = (m >= t).to(pred_hdr.dtype)
    else:
        alpha = ((m - t * (1.0 - width)) / (t * width)).clamp(0.0, 1.0)
    return (1.0 - alpha) * inv + alpha * pred_hdr


def fill_saturated(pred_hdr: torch.Tensor, ldr: torch.Tensor, level: float = CLIP_LEVEL,
                   ramp: float = CLIP_RAMP, n: Number = 0.9, sigma: Number = 0.6) -> torch.Tensor:
    """Final HDR frame: the propagation where the LDR frame clips, f⁻¹(LDR) elsewhere.

    The weight of the propagation is α = clamp((m − (level − ramp)) / ramp, 0, 1) with m
    the LDR channel max, so it rises from 0 at ``level − ramp`` to 1 at ``level`` (no
    seam; ``ramp = 0``: hard switch at ``level``). Unlike :func:`hdr_blend` (the paper's
    rule, radiance above the key-frame's 95th percentile), the decision comes from the
    frame itself: on held-out pseudo-video it measured log-RMSE 0.131 against 0.192 for
    the percentile blend (docs/RESULTS.md, K = 10): below the clipping level the frame's
    own LDR holds the information, only clipped pixels need the key-frame.
    """
    _check_channels(pred_hdr, "pred_hdr")
    _check_channels(ldr, "ldr")
    if ramp < 0.0:
        raise ValueError(f"ramp must be ≥ 0, got {ramp}")
    inv = inverse_camera_curve(ldr, n=n, sigma=sigma)
    m = ldr.amax(dim=-3, keepdim=True)
    if ramp == 0.0:
        alpha = (m >= level).to(pred_hdr.dtype)
    else:
        alpha = ((m - (level - ramp)) / ramp).clamp(0.0, 1.0).to(pred_hdr.dtype)
    return (1.0 - alpha) * inv + alpha * pred_hdr


# ---------------------------------------------------------------------------------------
# PQ (SMPTE ST 2084 / BT.2100)
# ---------------------------------------------------------------------------------------

_PQ_M1 = 2610.0 / 16384.0
_PQ_M2 = 2523.0 / 4096.0 * 128.0
_PQ_C1 = 3424.0 / 4096.0
_PQ_C2 = 2413.0 / 4096.0 * 32.0
_PQ_C3 = 2392.0 / 4096.0 * 32.0
_PQ_PEAK = 10000.0


def pq_inverse_eotf(nits: torch.Tensor) -> torch.Tensor:
    """Absolute luminance in cd/m² → PQ signal E' in [0, 1] (clamped to [0, 10000] nits)."""
    y = (nits / _PQ_PEAK).clamp(0.0, 1.0)
    ym = _pow_pos(y, _PQ_M1)
    return ((_PQ_C1 + _PQ_C2 * ym) / (1.0 + _PQ_C3 * ym)).pow(_PQ_M2)


def pq_eotf(signal: torch.Tensor) -> torch.Tensor:
    """PQ signal E' in [0, 1] → absolute luminance in cd/m² (ST 2084 EOTF)."""
    e = _pow_pos(signal.clamp(0.0, 1.0), 1.0 / _PQ_M2)
    num = (e - _PQ_C1).clamp(min=0.0)
    den = _PQ_C2 - _PQ_C3 * e
    return _PQ_PEAK * _pow_pos(num / den, 1.0 / _PQ_M1)


#: Aliases: encoding linear light to PQ is the inverse EOTF (PQ is display-referred).
pq_encode = pq_inverse_eotf
pq_decode = pq_eotf


# ---------------------------------------------------------------------------------------
# HLG (ARIB STD-B67 / BT.2100)
# ---------------------------------------------------------------------------------------

_HLG_A = 0.17883277
_HLG_B = 1.0 - 4.0 * _HLG_A
_HLG_C = 0.5 - _HLG_A * math.log(4.0 * _HLG_A)
_BT2020_LUMA = (0.2627, 0.6780, 0.0593)


def hlg_oetf(e: torch.Tensor) -> torch.Tensor:
    """Scene light E in [0, 1] → HLG signal E': √(3E) for E ≤ 1/12, else a·ln(12E − b) + c.

    Negative E is treated as 0. E = 1 gives E' = 1; E = 1/12 gives 0.5 from both sides.
    """
    e = e.clamp(min=0.0)
    low = _pow_pos(3.0 * e, 0.5)
    high = _HLG_A * torch.log((12.0 * e - _HLG_B).clamp(min=1e-12)) + _HLG_C
    return torch.where(e <= 1.0 / 12.0, low, high)


def hlg_inverse_oetf(signal: torch.Tensor) -> torch.Tensor:
    """HLG signal E' → scene light E: E'²/3 for E' ≤ 1/2, else (exp((E' − c)/a) + b)/12."""
    s = signal.clamp(min=0.0)
    low = s * s / 3.0
    high = (torch.exp((s - _HLG_C) / _HLG_A) + _HLG_B) / 12.0
    return torch.where(s <= 0.5, low, high)


def _hlg_gamma(peak_nits: float) -> float:
    """System gamma of BT.2100 for a display of nominal peak L_W: 1.2 + 0.42·log10(L_W/1000)."""
    return 1.2 + 0.42 * math.log10(peak_nits / 1000.0)


def _bt2020_luma(x: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(_BT2020_LUMA, dtype=x.dtype, device=x.device)
    return (x * w.view(3, 1, 1)).sum(dim=-3, keepdim=True)


def hlg_ootf(scene: torch.Tensor, peak_nits: float = 1000.0) -> torch.Tensor:
    """HLG OOTF: scene light RGB E in [0, 1] (…, 3, H, W, BT.2020) → display light in cd/m².

    F_D = L_W · Y_s^(γ − 1) · E with Y_s the BT.2020 luminance of E.
    """
    _check_channels(scene, "scene")
    gamma = _hlg_gamma(peak_nits)
    ys = _bt2020_luma(scene.clamp(min=0.0))
    return peak_nits * _pow_pos(ys, gamma - 1.0) * scene.clamp(min=0.0)


def hlg_inverse_ootf(display: torch.Tensor, peak_nits: float = 1000.0) -> torch.Tensor:
    """Inverse of :func:`hlg_ootf`: display light in cd/m² → scene light E in [0, 1]."""
    _check_channels(display, "display")
    gamma = _hlg_gamma(peak_nits)
    d = display.clamp(min=0.0)
    yd = _bt2020_luma(d)
    scale = _pow_pos(yd / peak_nits, (1.0 - gamma) / gamma)
    return d / peak_nits * scale


def hlg_eotf(signal: torch.Tensor, peak_nits: float = 1000.0, black_nits: float = 0.0) -> torch.Tensor:
    """HLG EOTF (BT.2100-2): signal RGB (…, 3, H, W) → display light in cd/m².

    F_D = OOTF[OETF⁻¹(max(0, (1 − β)E' + β))], β = √(3 (L_B/L_W)^(1/γ)).
    """
    gamma = _hlg_gamma(peak_nits)
    beta = math.sqrt(3.0 * (black_nits / peak_nits) ** (1.0 / gamma))
    return hlg_ootf(hlg_inverse_oetf(((1.0 - beta) * signal + beta).clamp(min=0.0)), peak_nits)


def hlg_inverse_eotf(display: torch.Tensor, peak_nits: float = 1000.0,
                     black_nits: float = 0.0) -> torch.Tensor:
    """Inverse of :func:`hlg_eotf`: display light in cd/m² (…, 3, H, W) → HLG signal."""
    gamma = _hlg_gamma(peak_nits)
    beta = math.sqrt(3.0 * (black_nits / peak_nits) ** (1.0 / gamma))
    s = hlg_oetf(hlg_inverse_ootf(display, peak_nits))
    return (s - beta) / (1.0 - beta)


# ---------------------------------------------------------------------------------------
# Primaries
# ---------------------------------------------------------------------------------------

_PRIMARIES = {
    "bt709": ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060)),
    "bt2020": ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)),
}
_D65_XY = (0.3127, 0.3290)


def rgb_primaries_matrix(primaries: str, white_xy: tuple[float, float] = _D65_XY) -> torch.Tensor:
    """Linear RGB → XYZ matrix (float64, 3×3) from the primaries' and white's xy (Y_white = 1)."""
    try:
        prim = _PRIMARIES[primaries]
    except KeyError:
        raise ValueError(f"unknown primaries {primaries!r}; known: {sorted(_PRIMARIES)}") from None
    cols = torch.tensor([[x / y, 1.0, (1.0 - x - y) / y] for x, y in prim], dtype=torch.float64).T
    wx, wy = white_xy
    white = torch.tensor([wx / wy, 1.0, (1.0 - wx - wy) / wy], dtype=torch.float64)
    scale = torch.linalg.solve(cols, white)
    return cols * scale


#: Linear BT.709 → linear BT.2020 (BT.2087), computed from the primaries (float64).
BT709_TO_BT2020 = torch.linalg.solve(rgb_primaries_matrix("bt2020"), rgb_primaries_matrix("bt709"))
#: Linear BT.2020 → linear BT.709 (may give negative values for wide-gamut colours).
BT2020_TO_BT709 = torch.linalg.inv(BT709_TO_BT2020)


def bt709_to_bt2020(rgb_linear: torch.Tensor) -> torch.Tensor:
    """Linear BT.709/sRGB RGB → linear BT.2020 RGB; apply before PQ or HLG."""
    return _apply_matrix(BT709_TO_BT2020, rgb_linear)


def bt2020_to_bt709(rgb_linear: torch.Tensor) -> torch.Tensor:
    """Linear BT.2020 RGB → linear BT.709 RGB (not clipped)."""
    return _apply_matrix(BT2020_TO_BT709, rgb_linear)


# ---------------------------------------------------------------------------------------
# Fast paths for whole video frames (numpy images, channel last): the run's colour
# conversions at full resolution. Same formulas and constants as above.
# ---------------------------------------------------------------------------------------
_LINEAR_LUTS: dict = {}


def _linear_lut(dtype) -> "np.ndarray":
    """sRGB code value → linear value (float32), computed once per integer dtype with
    :func:`srgb_to_linear` itself, so the table holds exactly its values."""
    import numpy as np

    key = np.dtype(dtype).str
    if key not in _LINEAR_LUTS:
        peak = float(np.iinfo(dtype).max)
        codes = torch.arange(int(peak) + 1, dtype=torch.float32) / peak
        _LINEAR_LUTS[key] = srgb_to_linear(codes).numpy().astype(np.float32)
    return _LINEAR_LUTS[key]


def _f_lab(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t > _LAB_EPS, _pow_pos(t, 1.0 / 3.0), _LAB_KAPPA * t + 16.0 / 116.0)


def lightness(rgb: torch.Tensor) -> torch.Tensor:
    """CIE-Lab L alone, (…, 3, H, W) sRGB → (…, 1, H, W): ``rgb_to_lab(rgb)[..., :1, :, :]``
    without computing a and b (a third of the transfer-curve work)."""
    _check_channels(rgb)
    lin = srgb_to_linear(rgb)
    row = _RGB_TO_XYZ[1].to(dtype=rgb.dtype, device=rgb.device)
    y = torch.einsum("j,...jhw->...hw", row, lin).unsqueeze(-3)  # white Y = 1
    return 116.0 * _f_lab(y) - 16.0


def lightness_image(image: "np.ndarray") -> "np.ndarray":
    """L (H, W) float32 of an (H, W, 3) uint8/uint16 sRGB image (or float in [0, 1]):
    a table lookup for the transfer curve, one channel of cube root. Equal to
    :func:`lightness` up to float32 rounding."""
    import numpy as np

    row = np.asarray(_RGB_TO_XYZ[1], np.float32)  # white Y = 1
    if image.dtype == np.uint8:  # OpenCV's table lookup and weighted sum: 3× numpy's
        import cv2

        lut = _linear_lut(np.uint8).reshape(1, 256, 1).repeat(3, axis=2)
        y = cv2.transform(cv2.LUT(np.ascontiguousarray(image), lut), row[None])
    else:
        if image.dtype == np.uint16:
            lin = _linear_lut(image.dtype)[image]
        else:
            lin = srgb_to_linear(torch.from_numpy(np.ascontiguousarray(image, np.float32))).numpy()
        y = lin[..., 0] * row[0]
        y += lin[..., 1] * row[1]
        y += lin[..., 2] * row[2]
    f = np.where(y > _LAB_EPS, np.cbrt(y), np.float32(_LAB_KAPPA) * y + np.float32(16.0 / 116.0))
    return (np.float32(116.0) * f - np.float32(16.0)).astype(np.float32, copy=False)


def ab_image(image: "np.ndarray") -> "np.ndarray":
    """ab (H, W, 2) float32 of an (H, W, 3) uint8/uint16 sRGB image (or float in [0, 1]), by
    OpenCV's RGB → Lab: the inverse of :func:`lab_image_to_rgb`, 10× faster than
    :func:`rgb_to_lab` at full resolution."""
    import cv2
    import numpy as np

    peak = 65535.0 if image.dtype == np.uint16 else (255.0 if image.dtype == np.uint8 else 1.0)
    rgb = np.ascontiguousarray(image, np.float32)
    if peak != 1.0:
        rgb *= np.float32(1.0 / peak)
    return np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[..., 1:])


def lab_image_to_rgb(L: "np.ndarray", ab: "np.ndarray", dtype) -> "np.ndarray":
    """L (H, W) and ab (H, W, 2) float32 → an (H, W, 3) sRGB image of ``dtype`` (uint8 or
    uint16, rounded, clipped), by OpenCV's Lab → RGB (D65, same matrix; it differs from
    :func:`lab_to_rgb` by at most one 8-bit code on about 0.1 % of pixels, measured on
    real frames) at a fifth of the time."""
    import cv2
    import numpy as np

    lab = np.empty((*L.shape, 3), np.float32)
    lab[..., 0] = L
    lab[..., 1:] = ab
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    peak = 65535.0 if np.dtype(dtype) == np.uint16 else 255.0
    rgb *= np.float32(peak)
    np.clip(rgb, 0.0, peak, out=rgb)
    return np.rint(rgb, out=rgb).astype(dtype)
