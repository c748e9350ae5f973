"""Quality metrics: colour RMSE/PSNR, DAVIS J/F/J&F, HDR log-RMSE and PU21-PSNR, style energy.

Conventions
  * Inputs are torch tensors or numpy arrays (converted with ``torch.as_tensor``);
    computation is in float64 on the CPU-or-input device.
  * "Per frame" functions take a batch (N, …) and return a float64 tensor of shape (N,),
    reducing over every dim but the first; an unbatched frame (3, H, W) / (H, W) for masks
    gives a 0-d tensor.
  * Colour metrics are on RGB 0–255 (reference hdr-metrics-io.md §2b): reconstruct the
    frame as ``lab_to_rgb(cat(L_true, ab_pred))`` (clipped to [0, 1]), then
    :func:`to_rgb255` (× 255, rounded to 8 bits by default, which is what a saved frame
    holds). Key-frames are excluded from averages (:func:`mean_non_key`).
  * DAVIS follows davis2017-evaluation, semi-supervised protocol (§2a): masks binarised
    per object id, no void pixels, first and last frame excluded, boundary tolerance
    0.008 of the image diagonal, seg2bmap boundaries, disk dilation; statistics per
    object, then mean over objects.
  * HDR radiance is relative (1.0 = LDR clip level); PU21 needs absolute cd/m², by
    default 1.0 ↦ 203 cd/m² (BT.2408 reference white).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Literal, Optional, Sequence, Union

import numpy as np
import torch

__all__ = [
    "to_rgb255",
    "rmse",
    "psnr",
    "mean_non_key",
    "boundary_radius",
    "disk",
    "dilate_disk",
    "seg2bmap",
    "region_similarity",
    "boundary_f_measure",
    "davis_statistics",
    "DavisSequenceResult",
    "evaluate_davis_sequence",
    "davis_summary",
    "log_rmse",
    "PU21_BANDING_GLARE",
    "pu21_encode",
    "pu21_psnr",
    "style_energy_ratio",
]

ArrayLike = Union[torch.Tensor, np.ndarray]


def _f64(x: ArrayLike) -> torch.Tensor:
    return torch.as_tensor(x).to(torch.float64)


def _per_frame_mean(x: torch.Tensor, frame_dims: int) -> torch.Tensor:
    """Per-frame mean: the whole tensor if it has at most ``frame_dims`` dims (one frame),
    else everything but dim 0 (a batch of frames)."""
    if x.dim() <= frame_dims:
        return x.mean()
    return x.flatten(start_dim=1).mean(dim=1)


def _check_same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")


# ---------------------------------------------------------------------------------------
# Colour: RMSE / PSNR on RGB 0–255
# ---------------------------------------------------------------------------------------

def to_rgb255(rgb01: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """sRGB in [0, 1] → float values on the 0–255 scale, clipped, rounded if ``quantize``."""
    x = rgb01.clamp(0.0, 1.0) * 255.0
    return torch.round(x) if quantize else x


def rmse(pred: ArrayLike, target: ArrayLike) -> torch.Tensor:
    """Root-mean-square error per frame: (N, C, H, W) → (N,), (C, H, W) → 0-d.

    On RGB 0–255 this is √((1/3HW) Σ_{pixels, c} (I − Î)²), reference §2b.
    """
    p, t = _f64(pred), _f64(target)
    _check_same_shape(p, t, "rmse")
    return torch.sqrt(_per_frame_mean((p - t) ** 2, 3))


def psnr(pred: ArrayLike, target: ArrayLike, peak: float = 255.0) -> torch.Tensor:
    """PSNR in dB per frame, 20·log10(peak / RMSE); +inf for identical frames."""
    e = rmse(pred, target)
    return 20.0 * torch.log10(peak / e)


def mean_non_key(values: Union[Sequence[float], ArrayLike], key_frames: Iterable[int] = (),
                 frame_indices: Optional[Sequence[int]] = None) -> float:
    """Mean of per-frame ``values`` over the frames that are not key-frames.

    ``frame_indices[i]`` is the frame index of ``values[i]`` (default ``range(len)``);
    key-frames are trivially exact for colour (L and ab from the ground truth) and are
    left out. NaN if no frame is left. An identical non-key frame (PSNR = +inf) makes the
    mean +inf: that is a real result, not silently capped.
    """
    v = _f64(values).flatten()
    idx = list(range(len(v))) if frame_indices is None else list(frame_indices)
    if len(idx) != len(v):
        raise ValueError(f"{len(v)} values but {len(idx)} frame indices")
    keys = set(int(k) for k in key_frames)
    keep = [i for i, f in enumerate(idx) if int(f) not in keys]
    if not keep:
        return float("nan")
    return float(v[keep].mean())


# ---------------------------------------------------------------------------------------
# DAVIS: J (region IoU) and F (boundary F-measure)
# ---------------------------------------------------------------------------------------

def boundary_radius(height: int, width: int, bound_th: float = 0.008) -> int:
    """Dilation radius in pixels: bound_th if ≥ 1, else ceil(bound_th · √(H² + W²)).

    854×480 → 8 (a 17×17 disk); 1920×1080 → 18.
    """
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(height, width)))


def disk(radius: int) -> torch.Tensor:
    """Disk structuring element (2r+1, 2r+1) bool: x² + y² ≤ r² (as skimage's ``disk``)."""
    r = torch.arange(-radius, radius + 1)
    return (r.view(-1, 1) ** 2 + r.view(1, -1) ** 2) <= radius * radius


def dilate_disk(mask: ArrayLike, radius: int) -> torch.Tensor:
    """Binary dilation of (…, H, W) masks by :func:`disk` (``radius``); outside = 0.

    Decomposed into horizontal runs: for each row offset dy the disk is a run of
    half-width ⌊√(r² − dy²)⌋, so the result is the OR over dy of vertically shifted
    horizontal dilations: 4r + 1 shifted ORs instead of a (2r+1)² convolution.
    """
    m = torch.as_tensor(mask).to(torch.bool)
    if radius <= 0:
        return m.clone()
    h, w = m.shape[-2:]
    r = int(radius)
    p = torch.nn.functional.pad(m.to(torch.uint8), (r, r, r, r)).to(torch.bool)
    wp = w + 2 * r
    # horiz[k] = OR over |dx| ≤ k of p shifted by dx along the width (zeros shifted in).
    horiz = [p]
    cur = p
    for k in range(1, r + 1):
        nxt = cur.clone()
        nxt[..., k:] |= p[..., : wp - k]
        nxt[..., : wp - k] |= p[..., k:]
        horiz.append(nxt)
        cur = nxt
    out = torch.zeros_like(m)
    for dy in range(-r, r + 1):
        half = math.isqrt(r * r - dy * dy)
        out |= horiz[half][..., r + dy: r + dy + h, r: r + w]
    return out


def seg2bmap(mask: ArrayLike) -> torch.Tensor:
    """One-pixel boundary map of binary masks (…, H, W), David Martin's ``seg2bmap``.

    A pixel is on the boundary when it differs from its east, south or south-east
    neighbour; the last row compares only east, the last column only south, and the
    bottom-right corner is 0. The boundary sits half a pixel toward the origin.
    """
    s = torch.as_tensor(mask).to(torch.bool)
    e = torch.zeros_like(s)
    so = torch.zeros_like(s)
    se = torch.zeros_like(s)
    e[..., :, :-1] = s[..., :, 1:]
    so[..., :-1, :] = s[..., 1:, :]
    se[..., :-1, :-1] = s[..., 1:, 1:]
    b = (s ^ e) | (s ^ so) | (s ^ se)
    b[..., -1, :] = s[..., -1, :] ^ e[..., -1, :]
    b[..., :, -1] = s[..., :, -1] ^ so[..., :, -1]
    b[..., -1, -1] = False
    return b


def region_similarity(pred: ArrayLike, gt: ArrayLike, void: Optional[ArrayLike] = None) -> torch.Tensor:
    """DAVIS J per frame: |P ∩ G ∖ V| / |P ∪ G ∖ V|, 1 when the union is empty.

    Binary masks (N, H, W) → (N,) float64, or (H, W) → 0-d.
    """
    p = torch.as_tensor(pred).to(torch.bool)
    g = torch.as_tensor(gt).to(torch.bool)
    _check_same_shape(p, g, "region_similarity")
    inter, union = p & g, p | g
    if void is not None:
        keep = ~torch.as_tensor(void).to(torch.bool)
        inter, union = inter & keep, union & keep
    i = inter.flatten(start_dim=-2).sum(-1).to(torch.float64)
    u = union.flatten(start_dim=-2).sum(-1).to(torch.float64)
    return torch.where(u > 0, i / u.clamp(min=1), torch.ones_like(u))


def boundary_f_measure(pred: ArrayLike, gt: ArrayLike, void: Optional[ArrayLike] = None,
                       bound_th: float = 0.008, return_pr: bool = False):
    """DAVIS F per frame: boundary F-measure with a disk tolerance (davis2017-evaluation).

    Binary masks (N, H, W) → (N,) float64 (or (H, W) → 0-d). Void pixels, if given, are
    removed from both masks before the boundaries are taken. The tolerance radius is
    :func:`boundary_radius` of the frame size. Precision = matched predicted boundary /
    predicted boundary, recall = matched true boundary / true boundary; both empty gives
    P = R = 1 (F = 1), one empty gives F = 0. With ``return_pr`` the result is (F, P, R).
    """
    p = torch.as_tensor(pred).to(torch.bool)
    g = torch.as_tensor(gt).to(torch.bool)
    _check_same_shape(p, g, "boundary_f_measure")
    if void is not None:
        keep = ~torch.as_tensor(void).to(torch.bool)
        p, g = p & keep, g & keep
    r = boundary_radius(p.shape[-2], p.shape[-1], bound_th)
    bp, bg = seg2bmap(p), seg2bmap(g)
    n_p = bp.flatten(start_dim=-2).sum(-1).to(torch.float64)
    n_g = bg.flatten(start_dim=-2).sum(-1).to(torch.float64)
    match_p = (bp & dilate_disk(bg, r)).flatten(start_dim=-2).sum(-1).to(torch.float64)
    match_g = (bg & dilate_disk(bp, r)).flatten(start_dim=-2).sum(-1).to(torch.float64)
    precision = torch.where(n_p > 0, match_p / n_p.clamp(min=1), torch.ones_like(n_p))
    recall = torch.where(n_g > 0, match_g / n_g.clamp(min=1), torch.ones_like(n_g))
    # One side empty: the official code sets P = 0 (empty GT) or R = 0 (empty prediction).
    precision = torch.where((n_p > 0) & (n_g == 0), torch.zeros_like(precision), precision)
    recall = torch.where((n_p == 0) & (n_g > 0), torch.zeros_like(recall), recall)
    s = precision + recall
    f = torch.where(s > 0, 2 * precision * recall / s.clamp(min=1e-300), torch.zeros_like(s))
    return (f, precision, recall) if return_pr else f


def davis_statistics(values: ArrayLike) -> tuple[float, float, float]:
    """(mean, recall, decay) of one object's per-frame J or F, as ``db_statistics``.

    mean = nanmean(x); recall = nanmean(x > 0.5); decay = mean of the first quarter − mean
    of the last quarter, with bin edges round(linspace(1, N, 5)) − 1 (ends inclusive).
    """
    x = np.asarray(torch.as_tensor(values).to(torch.float64).cpu(), dtype=np.float64).ravel()
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    with np.errstate(invalid="ignore"):
        valid = ~np.isnan(x)
        mean = float(x[valid].mean()) if valid.any() else float("nan")
        recall = float((x[valid] > 0.5).mean()) if valid.any() else float("nan")
        edges = [int(math.floor(v + 1e-10 + 0.5)) - 1 for v in np.linspace(1, x.size, 5)]
        bins = [x[edges[i]: edges[i + 1] + 1] for i in range(4)]
        first, last = bins[0][~np.isnan(bins[0])], bins[3][~np.isnan(bins[3])]
        decay = (float(first.mean()) - float(last.mean())) if first.size and last.size else float("nan")
    return mean, recall, decay


@dataclass
class DavisSequenceResult:
    """Per-object DAVIS results of one sequence (objects are ids 1..K).

    ``j`` and ``f`` are (K, T') per-frame values on the evaluated frames ``frames``;
    ``j_mean``/``f_mean``… are per object (lists of length K).
    """

    frames: list[int]
    j: torch.Tensor
    f: torch.Tensor
    j_mean: list[float] = field(default_factory=list)
    j_recall: list[float] = field(default_factory=list)
    j_decay: list[float] = field(default_factory=list)
    f_mean: list[float] = field(default_factory=list)
    f_recall: list[float] = field(default_factory=list)
    f_decay: list[float] = field(default_factory=list)

    @property
    def n_objects(self) -> int:
        return int(self.j.shape[0])

    @property
    def J(self) -> float:
        """J-Mean over the objects of this sequence."""
        return float(np.mean(self.j_mean)) if self.j_mean else float("nan")

    @property
    def F(self) -> float:
        """F-Mean over the objects of this sequence."""
        return float(np.mean(self.f_mean)) if self.f_mean else float("nan")

    @property
    def JF(self) -> float:
        """(J-Mean + F-Mean) / 2 over the objects of this sequence."""
        return (self.J + self.F) / 2.0


def evaluate_davis_sequence(pred_ids: ArrayLike, gt_ids: ArrayLike, n_objects: Optional[int] = None,
                            void_id: int = 255, exclude_first_last: bool = True,
                            bound_th: float = 0.008) -> DavisSequenceResult:
    """DAVIS semi-supervised evaluation of one sequence of id maps (T, H, W).

    ``gt_ids``: 0 background, 1..K objects, ``void_id`` (255) void; void is treated as
    background and not otherwise used, as the official semi-supervised evaluation does.
    K defaults to the largest object id in the first GT frame (as the toolkit's
    ``num_objects``). Objects missing from the prediction score as empty masks; a predicted
    id above K is an error. Frames 1…T−2 are evaluated (first and last excluded) unless
    ``exclude_first_last=False``.
    """
    p = torch.as_tensor(pred_ids).to(torch.int64)
    g = torch.as_tensor(gt_ids).to(torch.int64)
    if g.dim() != 3:
        raise ValueError(f"id maps must be (T, H, W), got {tuple(g.shape)}")
    _check_same_shape(p, g, "evaluate_davis_sequence")
    g = torch.where(g == void_id, torch.zeros_like(g), g)
    if n_objects is None:
        n_objects = int(g[0].max()) if g.shape[0] else 0
    p_max = int(p[p != void_id].max()) if (p != void_id).any() else 0
    if p_max > n_objects:
        raise ValueError(f"prediction has object id {p_max} but the ground truth has {n_objects} objects")
    t = g.shape[0]
    frames = list(range(1, t - 1)) if exclude_first_last else list(range(t))
    p, g = p[frames], g[frames]
    js, fs = [], []
    for obj in range(1, n_objects + 1):
        js.append(region_similarity(p == obj, g == obj))
        fs.append(boundary_f_measure(p == obj, g == obj, bound_th=bound_th))
    shape = (n_objects, len(frames))
    res = DavisSequenceResult(
        frames=frames,
        j=torch.stack(js) if js else torch.zeros(shape, dtype=torch.float64),
        f=torch.stack(fs) if fs else torch.zeros(shape, dtype=torch.float64),
    )
    for k in range(n_objects):
        jm, jr, jd = davis_statistics(res.j[k])
        fm, fr, fd = davis_statistics(res.f[k])
        res.j_mean.append(jm), res.j_recall.append(jr), res.j_decay.append(jd)
        res.f_mean.append(fm), res.f_recall.append(fr), res.f_decay.append(fd)
    return res


def davis_summary(results: Iterable[DavisSequenceResult]) -> dict[str, float]:
    """Global DAVIS numbers over sequences: means over all (sequence, object) tracks.

    Returns J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay and J&F-Mean =
    (J-Mean + F-Mean)/2. A sequence with 3 objects weighs 3×, as in the toolkit.
    """
    acc: dict[str, list[float]] = {k: [] for k in ("j_mean", "j_recall", "j_decay",
                                                  "f_mean", "f_recall", "f_decay")}
    for r in results:
        for k in acc:
            acc[k].extend(getattr(r, k))

    def m(v: list[float]) -> float:
        a = np.asarray(v, dtype=np.float64)
        return float(np.nanmean(a)) if a.size and not np.isnan(a).all() else float("nan")

    out = {
        "J-Mean": m(acc["j_mean"]), "J-Recall": m(acc["j_recall"]), "J-Decay": m(acc["j_decay"]),
        "F-Mean": m(acc["f_mean"]), "F-Recall": m(acc["f_recall"]), "F-Decay": m(acc["f_decay"]),
    }
    out["J&F-Mean"] = (out["J-Mean"] + out["F-Mean"]) / 2.0
    return out


# ---------------------------------------------------------------------------------------
# HDR
# ---------------------------------------------------------------------------------------

def log_rmse(pred_hdr: ArrayLike, true_hdr: ArrayLike, eps: float = 0.01,
             mask: Optional[ArrayLike] = None) -> torch.Tensor:
    """RMSE of log(H + eps) (natural log) per frame: (N, C, H, W) → (N,).

    Negative radiance is treated as 0. ``mask`` (broadcastable to the inputs, e.g.
    (N, 1, H, W)) restricts the mean to selected pixels (e.g. the saturated ones); a frame
    with an empty mask gives NaN.
    """
    p, t = _f64(pred_hdr), _f64(true_hdr)
    _check_same_shape(p, t, "log_rmse")
    d2 = (torch.log(p.clamp(min=0) + eps) - torch.log(t.clamp(min=0) + eps)) ** 2
    if mask is None:
        return torch.sqrt(_per_frame_mean(d2, 3))
    w = torch.as_tensor(mask).to(torch.float64).expand_as(d2)
    if d2.dim() <= 3:
        return torch.sqrt((d2 * w).sum() / w.sum())
    return torch.sqrt((d2 * w).flatten(1).sum(1) / w.flatten(1).sum(1))


#: PU21 "banding_glare" parameters p1…p7 (Mantiuk & Azimi 2021), the recommended set.
PU21_BANDING_GLARE = (0.353487901, 0.3734658629, 8.277049286e-05, 0.9062562627,
                      0.09150303166, 0.9099517204, 596.3148142)
_PU21_MIN, _PU21_MAX = 0.005, 10000.0


def pu21_encode(nits: ArrayLike, params: Sequence[float] = PU21_BANDING_GLARE) -> torch.Tensor:
    """PU21 perceptually uniform encoding of absolute luminance/linear RGB in cd/m².

    V = p7·(((p1 + p2·Yᵖ⁴)/(1 + p3·Yᵖ⁴))ᵖ⁵ − p6), Y clamped to [0.005, 10000].
    PU(100) ≈ 256.4, PU(1000) ≈ 420.1, PU(10000) ≈ 595.4.
    """
    p1, p2, p3, p4, p5, p6, p7 = params
    y = _f64(nits).clamp(_PU21_MIN, _PU21_MAX)
    yp = y ** p4
    return p7 * (((p1 + p2 * yp) / (1 + p3 * yp)) ** p5 - p6)


def pu21_psnr(pred_hdr: ArrayLike, true_hdr: ArrayLike, nits_per_unit: float = 203.0,
              mode: Literal["rgb", "y"] = "rgb", peak: float = 256.0) -> torch.Tensor:
    """PU21-PSNR per frame (dB): PSNR of PU21-encoded values with peak 256 (pu21_metric).

    Inputs are relative linear RGB (N, 3, H, W) (1.0 = LDR clip level), scaled to cd/m² by
    ``nits_per_unit`` (default 203, BT.2408 reference white; pass 1.0 for absolute input).
    ``mode="rgb"`` encodes each channel (pu21_metric 'PSNR'); ``"y"`` encodes the luminance
    Y = 0.212656 R + 0.715158 G + 0.072186 B ('PSNRY').
    """
    p, t = _f64(pred_hdr) * nits_per_unit, _f64(true_hdr) * nits_per_unit
    _check_same_shape(p, t, "pu21_psnr")
    if mode == "y":
        w = torch.tensor((0.212656, 0.715158, 0.072186), dtype=torch.float64).view(3, 1, 1)
        p, t = (p * w).sum(-3, keepdim=True), (t * w).sum(-3, keepdim=True)
    elif mode != "rgb":
        raise ValueError(f"mode must be 'rgb' or 'y', got {mode!r}")
    return psnr(pu21_encode(p), pu21_encode(t), peak=peak)


# ---------------------------------------------------------------------------------------
# Style energy
# ---------------------------------------------------------------------------------------

def style_energy_ratio(pred_ab: ArrayLike, true_ab: ArrayLike, centered: bool = True) -> torch.Tensor:
    """Ratio of propagated to true ab "energy" per frame: (N, 2, H, W) → (N,).

    ``centered=True``: Σ_c Var_pixels(ab_pred[c]) / Σ_c Var_pixels(ab_true[c]) (spatial
    variance per channel, summed over a and b). ``centered=False``: mean squares instead
    (‖U‖² ratio, the quantity an orthogonal G preserves). 1 means no loss of colour
    contrast; < 1 means washed-out propagation. NaN/inf when the truth has no energy.
    """
    p, t = _f64(pred_ab), _f64(true_ab)
    _check_same_shape(p, t, "style_energy_ratio")

    def energy(x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(start_dim=-2)
        if centered:
            flat = flat - flat.mean(dim=-1, keepdim=True)
        return (flat ** 2).mean(dim=-1).sum(dim=-1)

    return energy(p) / energy(t)
