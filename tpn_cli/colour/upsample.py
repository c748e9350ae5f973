"""Chroma up-sampling guided by the full-resolution lightness (``--chroma-upsample``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


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
    the textbook output (B box-averaged too) smooths src there and measured worse than
    bilinear on real frames (docs/what-we-tried.md, "Colour at full resolution"). Across a
    guide edge the step comes from the full-resolution
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
    out = enlarge(slope[0], size).mul_(guide)  # in place: full-size temporaries cost most
    return out.add_(enlarge(offset[0], size))


def enlarge(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, h, w) → (C, H, W) contiguous, bilinear (half-pixel centres, as
    ``align_corners=False``). On the CPU by OpenCV, plane by plane into one planar array:
    9× faster than F.interpolate at 480p, equal to 1e-7; planar, so that the full-size
    arithmetic after it runs on contiguous memory (on an interleaved view it cost 10×)."""
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return _bilinear(x[None], size)[0]
    import cv2

    return _resize_planes(x, size, cv2.INTER_LINEAR)


def shrink(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) → (C, h, w) area-averaged (F.interpolate's ``mode="area"``). For a whole
    factor on the CPU by OpenCV plane by plane (block means, as torch's): 15× faster on one
    thread, equal to 1e-7. (For other factors the two weigh the border pixels of each
    window differently.)"""
    whole = x.shape[-2] % size[0] == 0 and x.shape[-1] % size[1] == 0
    if x.device.type != "cpu" or x.dtype != torch.float32 or not whole:
        return F.interpolate(x[None], size=size, mode="area")[0]
    import cv2

    return _resize_planes(x, size, cv2.INTER_AREA)


def _resize_planes(x: torch.Tensor, size: tuple[int, int], interpolation: int) -> torch.Tensor:
    """(C, h, w) CPU float32 → (C, *size) by OpenCV's resize plane by plane, into one
    planar (contiguous) array."""
    import cv2
    import numpy as np

    src = x.detach().contiguous().numpy()
    out = np.empty((src.shape[0], *size), np.float32)
    for plane, dst in zip(src, out):
        cv2.resize(plane, (size[1], size[0]), dst=dst, interpolation=interpolation)
    return torch.from_numpy(out)


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
