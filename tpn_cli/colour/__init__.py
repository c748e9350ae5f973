"""Colour and radiance conversions used by every task: small, typed torch functions, one
concept per module (as kornia keeps one colour space per file), all re-exported here:

  lab.py        sRGB ↔ linear, XYZ, CIE-Lab; the fast whole-frame paths of a colour run
  chroma.py     video chroma (BT.601 Y′, Cb, Cr): what the colour flow part carries
  upsample.py   chroma up-sampling guided by the full-resolution lightness
  hdr.py        camera curve, log-HDR, the clipping level of the HDR output
  transfer.py   PQ and HLG (BT.2100): the encoding directions the outputs use
  primaries.py  RGB primaries, BT.709 → BT.2020

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

from .lab import (AB_SCALE, ab_image, lab_image_to_rgb, lab_to_rgb, lab_to_xyz, lightness, lightness_image,
                  linear_to_srgb, rgb_to_lab, rgb_to_xyz, srgb_to_linear, xyz_to_lab, xyz_to_rgb)
from .chroma import (chroma, chroma_image, chroma_image_to_rgb, lab_image_to_chroma, luma_image, luma_lightness,
                     luma_lightness_image)
from .upsample import CHROMA_UPSAMPLE, guided_upsample, shrink_guide, upsample_chroma
from .hdr import CLIP_LEVEL, CLIP_RAMP, LOG_EPS, camera_curve, inverse_camera_curve, log_decode, log_encode
from .transfer import REFERENCE_WHITE_NITS, hlg_oetf, pq_inverse_eotf
from .primaries import BT709_TO_BT2020, rgb_primaries_matrix

__all__ = [
    "AB_SCALE",
    "REFERENCE_WHITE_NITS",
    "LOG_EPS",
    "CLIP_LEVEL",
    "CLIP_RAMP",
    "srgb_to_linear",
    "linear_to_srgb",
    "rgb_to_xyz",
    "xyz_to_rgb",
    "xyz_to_lab",
    "lab_to_xyz",
    "rgb_to_lab",
    "lab_to_rgb",
    "lightness",
    "lightness_image",
    "ab_image",
    "lab_image_to_rgb",
    "chroma",
    "chroma_image",
    "chroma_image_to_rgb",
    "lab_image_to_chroma",
    "luma_image",
    "luma_lightness",
    "luma_lightness_image",
    "CHROMA_UPSAMPLE",
    "upsample_chroma",
    "guided_upsample",
    "shrink_guide",
    "camera_curve",
    "inverse_camera_curve",
    "log_encode",
    "log_decode",
    "pq_inverse_eotf",
    "hlg_oetf",
    "rgb_primaries_matrix",
    "BT709_TO_BT2020",
]
