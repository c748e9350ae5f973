"""The video's inverse camera response, calibrated from its HDR key-frames.

Why: ``tpn hdr`` keeps the LDR frame's own information where it does not clip, as
radiance f⁻¹(LDR). A generic curve (HDRCNN's, n = 0.9, σ = 0.6) is a guess about a camera
we do not know, and below the clipping level that guess is the whole error: on held-out
pseudo-video the unsaturated 72 % of the pixels carried most of the log-RMSE
(docs/what-we-tried.md, "HDR: calibrated camera response"). But at every key index the
user gives us both sides of the camera, the LDR codes and the true radiance of the same
pixels, so the response of *this* video can be measured instead of guessed.

How (:func:`fit`): for every LDR level (256 bins of [0, 1] per channel) the estimate is
the mean of log(H + 0.01) over the key pixels at that level: the value that minimises the
log-RMSE the output is scored by, and an average over the camera's noise (so a noisy dark
code maps to the typical radiance behind it, not to the curve's value at that code). Levels
with few samples are pulled towards a parametric fit (HDRCNN's curve times an exposure
scale, n, σ and scale fitted by least squares in the log domain to the well-exposed levels),
with weight count / (count + :data:`PRIOR_PIXELS`) (one curve shape for the three
channels, each its own exposure scale: white balance); the table is then made non-decreasing
(weighted pool-adjacent-violators), as every camera response is.

Assumptions:
  * one fixed response and one exposure over the clip (a locked camera, or a graded clip);
  * key radiance and LDR frame are the same pixels (the key-frame is the radiance of the
    video frame at its index, as ``tpn hdr`` requires). The radiance scale is whatever the
    keys use: the table maps codes to the keys' units, so keys in absolute units or with
    a different clip level still give a consistent output (the generic curve assumes
    1.0 = the clip level).
  * If the camera's auto-exposure changes over the clip, the table is the average response
    over the key-frames' exposures: a frame exposed e× brighter than that average is off by
    log(e) in its unsaturated pixels (as with any fixed curve), while the clipped pixels still
    come from the key-frames. A per-frame exposure scale is not estimated (it cannot improve
    a fixed-exposure clip, and nothing measured here has varying exposure).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
import torch

from . import colour

__all__ = ["LEVELS", "PRIOR_PIXELS", "VARIANCE_PRIOR_PIXELS", "VARIANCE_FLOOR", "GENERIC_VARIANCE",
           "CameraResponse", "fit", "generic", "levels"]

#: Bins of the LDR value [0, 1]: level i holds the values that round to i / (LEVELS − 1)
#: (8-bit codes exactly; finer inputs share the bins and are interpolated between them).
LEVELS = 256
#: The parametric fit counts as this many pixels at every level: levels seen in a few
#: pixels follow the fitted curve, well-sampled levels their own mean (with one 32×32 key,
#: 16 was as good as 4 or 64 and better than 0.5: docs/what-we-tried.md).
PRIOR_PIXELS = 16.0
#: The parametric fit uses levels below the clipping level only (above it the mean is of
#: clipped, censored radiance), with at least this many pixels.
FIT_MIN_PIXELS = 8
#: The per-level variance of the keys' log radiance around the table (how far f⁻¹ of one
#: code can be trusted: noise, quantisation, clipping) is pulled towards its channel's
#: pooled variance with this many pixels' weight, so a code seen in one or two key pixels
#: does not claim a near-zero variance (docs/what-we-tried.md, "HDR: two key-frames").
VARIANCE_PRIOR_PIXELS = 4.0
#: Smallest variance (log units²) of any estimate the HDR fusion weighs: no estimate is
#: ever exact, and 1/0 must not happen.
VARIANCE_FLOOR = 1e-5
#: Variance given to every level of the generic curve (no key-frame measured it): a
#: generic curve is off by ~0.2 in log radiance on the clips measured (log-RMSE of icc,
#: docs/RESULTS.md).
GENERIC_VARIANCE = 0.04


@dataclass(frozen=True)
class CameraResponse:
    """f⁻¹ as a table: ``log_table[c, i]`` = log(H + 0.01) of channel c at LDR level
    i / (LEVELS − 1); between levels linear in the log domain.

    ``log_variance[c, i]`` is the variance of the key pixels' log(H + 0.01) around
    ``log_table[c, i]`` (what :mod:`tpn_cli.hdr_fusion` weighs f⁻¹ by; the top level is
    the clipped code, whose table value is only a lower bound). ``params`` is the
    parametric fit per channel, (n, σ, exposure scale) with H = scale·f⁻¹(D; n, σ), that
    stands in for sparse levels, and ``key_rmse`` / ``generic_key_rmse`` the log-RMSE of
    this table and of the generic curve on the key-frames' values below the clipping level
    (NaN when not fitted): how much the calibration changed, and a sign of mismatched keys
    when even the fit is far off."""

    log_table: np.ndarray
    log_variance: np.ndarray = field(default_factory=lambda: np.full((3, LEVELS), GENERIC_VARIANCE, np.float32))
    params: tuple[tuple[float, float, float], ...] = ((0.9, 0.6, 1.0),) * 3
    key_rmse: float = float("nan")
    generic_key_rmse: float = float("nan")
    _luts: dict = field(default_factory=dict, repr=False, compare=False)

    def log_radiance(self, ldr: np.ndarray) -> np.ndarray:
        """log(H + 0.01) (H, W, 3) float32 of an (H, W, 3) LDR image: uint8, uint16 or float
        in [0, 1] (clipped to it)."""
        if ldr.dtype in (np.uint8, np.uint16):
            return _lookup(ldr, self._lut(ldr.dtype, "log"))
        x = np.clip(np.asarray(ldr, np.float32), 0.0, 1.0) * (LEVELS - 1)
        return np.stack([self._interp(x[..., c], c) for c in range(3)], axis=-1)

    def variance(self, ldr: np.ndarray) -> np.ndarray:
        """(H, W, 3) float32 variance of :meth:`log_radiance` at each value of an (H, W, 3)
        LDR image (its level's, no interpolation)."""
        if ldr.dtype == np.uint8:  # one level per code: a table lookup
            return _lookup(ldr, np.ascontiguousarray(self.log_variance.T, np.float32))
        return self.log_variance[np.arange(3), levels(ldr)].astype(np.float32, copy=False)

    def radiance(self, ldr: np.ndarray) -> np.ndarray:
        """Radiance H = exp(log table) − 0.01 (H, W, 3) float32 of an LDR image (integer
        images by a table of radiance per code: no exp per pixel)."""
        if ldr.dtype in (np.uint8, np.uint16):
            return _lookup(ldr, self._lut(ldr.dtype, "radiance"))
        return colour.log_decode(torch.from_numpy(self.log_radiance(ldr))).numpy()

    def _interp(self, pos: np.ndarray, c: int) -> np.ndarray:
        """Channel c's table at fractional level positions (linear between levels)."""
        return np.interp(pos, np.arange(LEVELS), self.log_table[c]).astype(np.float32)

    def _lut(self, dtype, kind: str) -> np.ndarray:
        """(codes, 3) table of log radiance or radiance for every code of an integer
        dtype, computed once."""
        key = (np.dtype(dtype).str, kind)
        if key not in self._luts:
            peak = np.iinfo(dtype).max
            pos = np.arange(peak + 1, dtype=np.float64) * ((LEVELS - 1) / peak)
            log = np.stack([self._interp(pos, c) for c in range(3)], axis=-1)
            self._luts[key] = log if kind == "log" else colour.log_decode(torch.from_numpy(log)).numpy()
        return self._luts[key]


def _lookup(ldr: np.ndarray, table: np.ndarray) -> np.ndarray:
    """table[code, channel] for every value of a uint8/uint16 (H, W, 3) image."""
    if ldr.dtype == np.uint8:  # OpenCV's per-channel table lookup: 5× numpy's indexing
        import cv2

        return cv2.LUT(np.ascontiguousarray(ldr), np.ascontiguousarray(table).reshape(256, 1, 3))
    return table[ldr, np.arange(3)]


def levels(ldr: np.ndarray) -> np.ndarray:
    """The LDR level (the row of the tables) (0 … LEVELS − 1) of every value of a uint8/uint16/float image."""
    if ldr.dtype == np.uint8 and LEVELS == 256:  # one level per code: the codes themselves
        return ldr
    if ldr.dtype == np.uint16:
        x = ldr.astype(np.float32) / np.float32(np.iinfo(ldr.dtype).max)
    else:
        x = np.clip(np.asarray(ldr, np.float32), 0.0, 1.0)
    return np.rint(x * (LEVELS - 1)).astype(np.int64)


def _centres() -> np.ndarray:
    return np.arange(LEVELS, dtype=np.float64) / (LEVELS - 1)


def _curve_log(params: np.ndarray, d: np.ndarray) -> np.ndarray:
    """log(s·f⁻¹(D; n, σ) + 0.01) for params (n, σ, log s)."""
    n, sigma, log_s = params
    h = colour.inverse_camera_curve(torch.from_numpy(d), n=float(n), sigma=float(sigma)).numpy()
    return np.log(math.exp(log_s) * h + colour.LOG_EPS)


def generic() -> CameraResponse:
    """The generic response (HDRCNN's curve, n = 0.9, σ = 0.6, 1.0 = the clip level): what
    ``tpn hdr`` assumes without key-frames to learn from."""
    row = _curve_log(np.array([0.9, 0.6, 0.0]), _centres())
    return CameraResponse(np.repeat(row[None], 3, axis=0).astype(np.float32))


def _least_squares(residual: Callable[[np.ndarray], np.ndarray], x0: np.ndarray,
                   lo: np.ndarray, hi: np.ndarray, iterations: int = 100) -> np.ndarray:
    """Minimise |residual(x)|² within [lo, hi]: Levenberg-Marquardt with a forward-difference
    Jacobian (a handful of parameters; no optimiser library needed)."""
    x, damping = x0.astype(np.float64), 1e-3
    r = residual(x)
    cost = float(r @ r)
    for _ in range(iterations):
        jac = np.stack([(residual(x + e) - r) / 1e-7 for e in np.eye(len(x)) * 1e-7], axis=1)
        a, g = jac.T @ jac, jac.T @ r
        step = np.linalg.solve(a + damping * np.diag(np.diag(a) + 1e-12), -g)
        x_new = np.clip(x + step, lo, hi)
        r_new = residual(x_new)
        if float(r_new @ r_new) < cost:
            x, r, cost, damping = x_new, r_new, float(r_new @ r_new), damping / 3
        else:
            damping *= 4
        if np.abs(step).max() < 1e-8 or damping > 1e8:
            break
    return x


def _fit_curves(mean: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(3, 3) rows (n, σ, log s) of HDRCNN's curve fitting the levels' means (3, LEVELS),
    count-weighted, in the log domain: one shape (n, σ) for the three channels and one
    exposure scale per channel (white balance). Levels at or above the clipping level are
    left out (their radiance is censored)."""
    d = _centres()
    use = (count >= FIT_MIN_PIXELS) & (d < colour.CLIP_LEVEL) & (d > 0)
    generic = np.array([0.9, math.log(0.6), 0.0, 0.0, 0.0])  # n, log σ, log s per channel
    if use.sum() < 3:  # nothing to fit to: keep the generic curve
        return np.array([[0.9, 0.6, 0.0]] * 3)
    w = np.sqrt(count[use] / count[use].sum())

    def curves(p: np.ndarray) -> np.ndarray:
        return np.array([[p[0], math.exp(p[1]), p[2 + c]] for c in range(3)])

    def residual(p: np.ndarray) -> np.ndarray:
        model = np.stack([_curve_log(row, d) for row in curves(p)])
        # σ and the scale trade off against each other unless the levels near the clip are
        # well sampled: a weak pull towards the generic curve keeps a sparse fit sane
        # (pixel weights normalised; the pull is 1/16 per unit of n, log σ, log s, per pixel)
        pull = (p - generic) / (4.0 * math.sqrt(count[use].sum()))
        return np.concatenate([w * (model[use] - mean[use]), pull])

    lo = np.array([0.2, math.log(0.05), -20.0, -20.0, -20.0])
    hi = np.array([5.0, math.log(5.0), 20.0, 20.0, 20.0])
    return curves(_least_squares(residual, generic, lo, hi))


def _monotone(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-decreasing fit of y (pool adjacent violators)."""
    means, weights, sizes = [], [], []
    for yi, wi in zip(y.tolist(), w.tolist()):
        means.append(yi)
        weights.append(wi)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:  # merge the violating blocks
            m2, w2, s2 = means.pop(), weights.pop(), sizes.pop()
            m1, w1 = means[-1], weights[-1]
            means[-1] = (m1 * w1 + m2 * w2) / (w1 + w2)
            weights[-1] = w1 + w2
            sizes[-1] += s2
    return np.repeat(means, sizes)


def _rmse_below_clip(total: float, count: float) -> float:
    return math.sqrt(max(total, 0.0) / count) if count > 0 else float("nan")


def _level_variance(sums: np.ndarray, squares: np.ndarray, counts: np.ndarray,
                    table: np.ndarray) -> np.ndarray:
    """(3, LEVELS) variance of the key pixels' log radiance around ``table`` per channel
    and level, from the per-level sums (Σ (u − t)² = Σu² − 2tΣu + n t²), each shrunk
    towards its channel's pooled value with :data:`VARIANCE_PRIOR_PIXELS`' weight, plus
    :data:`VARIANCE_FLOOR`."""
    sq = np.maximum(squares - 2 * table * sums + counts * table ** 2, 0.0)
    pooled = sq.sum(1, keepdims=True) / np.maximum(counts.sum(1, keepdims=True), 1)
    var = (sq + VARIANCE_PRIOR_PIXELS * pooled) / (counts + VARIANCE_PRIOR_PIXELS) + VARIANCE_FLOOR
    return var.astype(np.float32)


def fit(pairs: Iterable[tuple[np.ndarray, np.ndarray]], per_channel: bool = True) -> CameraResponse:
    """The response of one video from its key-frames (see the module doc).

    ``pairs``: (LDR frame (H, W, 3) uint8/uint16/float in [0, 1], radiance (H, W, 3) of the
    same pixels) per key-frame; consumed one at a time (only per-level sums are kept).
    Besides the table, the variance of the keys' log radiance around it per level
    (``log_variance``).
    ``per_channel``: one table per channel (cameras' channels differ by white balance), or
    one shared by the three. Without any pair the result is :func:`generic`.
    """
    counts = np.zeros((3, LEVELS))
    sums = np.zeros((3, LEVELS))
    squares = np.zeros((3, LEVELS))
    for ldr, rad in pairs:
        if ldr.shape != rad.shape or ldr.ndim != 3 or ldr.shape[-1] != 3:
            raise ValueError(f"LDR {ldr.shape} and radiance {rad.shape} must be the same (H, W, 3)")
        for c in range(3):  # one channel at a time, contiguous: bincount wants flat arrays
            u = colour.log_encode(torch.from_numpy(np.ascontiguousarray(rad[..., c], np.float64))).numpy().ravel()
            lv = levels(np.ascontiguousarray(ldr[..., c])).ravel()
            counts[c] += np.bincount(lv, minlength=LEVELS)
            sums[c] += np.bincount(lv, weights=u, minlength=LEVELS)
            squares[c] += np.bincount(lv, weights=u * u, minlength=LEVELS)
    if counts.sum() == 0:
        return generic()
    if not per_channel:
        counts, sums, squares = (np.repeat(a.sum(0, keepdims=True), 3, axis=0) for a in (counts, sums, squares))
    params = _fit_curves(sums / np.maximum(counts, 1), counts)
    table = np.empty((3, LEVELS))
    for c in range(3):
        prior = _curve_log(params[c], _centres())
        shrunk = (sums[c] + PRIOR_PIXELS * prior) / (counts[c] + PRIOR_PIXELS)
        table[c] = _monotone(shrunk, counts[c] + PRIOR_PIXELS)
    # log-RMSE on the key pixels below the clipping level: Σ (u − t)² = Σu² − 2tΣu + n t²
    below = _centres() < colour.CLIP_LEVEL
    n_below = counts[:, below].sum()
    generic_row = generic().log_table[0].astype(np.float64)

    def sq_error(t: np.ndarray) -> float:
        return float((squares - 2 * t * sums + counts * t ** 2)[:, below].sum())

    curves = tuple((float(n), float(sigma), math.exp(log_s)) for n, sigma, log_s in params)
    return CameraResponse(table.astype(np.float32), _level_variance(sums, squares, counts, table), curves,
                          _rmse_below_clip(sq_error(table), n_below),
                          _rmse_below_clip(sq_error(generic_row[None]), n_below))
