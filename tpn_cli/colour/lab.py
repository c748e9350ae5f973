"""sRGB ↔ linear, CIE XYZ and CIE-Lab (D65, 2°; scikit-image / kornia constants), and the
fast whole-frame paths of a colour run (lightness, ab, Lab → RGB on numpy images).
Conventions: :mod:`tpn_cli.colour`."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ._util import _apply_matrix, _check_channels, _pow_pos

if TYPE_CHECKING:
    import numpy as np

#: Divide ab by this to get values in about [-1, 1] (max |ab| over the sRGB cube is 107.9).
AB_SCALE = 110.0


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

    # interleaved by OpenCV from the three planes: the run's ab is a view of a planar
    # (2, H, W) tensor, whose planes are contiguous (numpy's strided copy took 2.4 ms)
    planes = [np.ascontiguousarray(p, dtype=np.float32) for p in (L, ab[..., 0], ab[..., 1])]
    rgb = cv2.cvtColor(cv2.merge(planes), cv2.COLOR_Lab2RGB)
    peak = 65535.0 if np.dtype(dtype) == np.uint16 else 255.0
    rgb *= np.float32(peak)
    np.clip(rgb, 0.0, peak, out=rgb)
    return np.rint(rgb, out=rgb).astype(dtype)
