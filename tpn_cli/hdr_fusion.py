"""The HDR output of one frame: its own LDR inverted and the key-frames' radiance, fused
per channel by inverse variance (:func:`fuse_keys`).

Why: where a channel of the LDR frame does not clip, f⁻¹(code) (the camera response
fitted to the key-frames, :mod:`tpn_cli.camera_response`) already says a lot about the
radiance, but not everything (noise and 8-bit quantisation make dark codes uncertain);
each key-frame moved into the frame says something too, unless the motion was
misjudged. Neither is right everywhere, so each pixel takes the weighted mean of all of
them, each weighted by 1 / its variance, measured on this clip:

* f⁻¹: the variance of the key-frames' log radiance around the table at that code and
  channel (``CameraResponse.log_variance``). A clipped code (the top one) measures
  nothing but a lower bound, so it has no weight there: the keys decide alone, and the
  result is at least the radiance of the code below the clip.
* each key: the local mean of its squared difference from the frame's f⁻¹ over the
  channels that do not clip, minus the table's own share (:func:`key_variance`). Inside
  a clipped area the nearest unclipped surroundings judge the key: a key that was moved
  well there is trusted inside.

The channels are judged one by one: a pixel whose red clips keeps its green and blue
from f⁻¹. Measured on pseudo-video against the issue-19 two-key baseline (keys warped and
blended into the pixels whose channel max clips) in docs/what-we-tried.md, "HDR: two
key-frames and per-channel fusion".

All in the log domain u = log(H + 0.01), channel-first (3, H, W) float32 numpy arrays at
the frame's full size.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from . import colour
from .camera_response import LEVELS, VARIANCE_FLOOR

__all__ = ["KEY_RADII", "UNCLIPPED_CODE", "UNSEEN_PX", "fuse_keys", "key_variance"]

#: Box radii (px at the frame's full size) over which a key's error is measured: the
#: smallest whose box holds unclipped values wins, so deep inside a clipped area a wider
#: box looks for the nearest surroundings. Starting at 1 (3×3) rather than 4 (the issue's
#: 9×9) follows a key's misalignment more closely: better on every tuning setting once the
#: keys are warped at full resolution (radius 0 was worse; docs/what-we-tried.md, "HDR:
#: keys warped at full resolution").
KEY_RADII = (1, 4, 16, 64)
#: A key's error is measured only where the frame's channel is below the clipping level
#: (f⁻¹ is reliable there): level < CLIP_LEVEL × (LEVELS − 1).
UNCLIPPED_CODE = round(colour.CLIP_LEVEL * (LEVELS - 1))
#: Stand-in for an infinite variance (f⁻¹ of a clipped code).
NO_WEIGHT = 1e6
#: Where the frame's point lies d px outside a key's frame (its warp repeats the key's
#: border there), that key's variance is × (1 + (d / UNSEEN_PX)²): a few px out the
#: repeated border is still close, far out the key never saw the point and the other key
#: decides. With fast pans a far key misses a wide strip of the frame, and inside a
#: clipped area its error there cannot be measured (docs/what-we-tried.md, "HDR: keys
#: warped at full resolution"; a hard cut at 0 px lost on the tuning clips).
UNSEEN_PX = 8.0


def _box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r + 1)² box, edges replicated."""
    import cv2

    return cv2.blur(x, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REPLICATE)


def key_variance(u_key: np.ndarray, u_table: np.ndarray, var_table: np.ndarray,
                 unclipped: np.ndarray, counts: dict[int, np.ndarray]) -> np.ndarray:
    """(H, W) local error variance of one key's log radiance ``u_key`` (3, H, W) moved into
    the frame: the box mean of (u_key − u_table)² − var_table over the ``unclipped``
    channels (float 0/1, (3, H, W)), at the smallest radius of ``counts`` (radius → box
    mean of the unclipped channels per pixel) whose box holds on average more than half
    an unclipped channel per pixel, the widest box elsewhere; at least
    :data:`VARIANCE_FLOOR` (so a key with no unclipped surroundings at all is trusted)."""
    d = u_key - u_table
    d *= d
    d -= var_table
    d *= unclipped
    d2 = d[0] + d[1] + d[2]
    out = None
    for r in sorted(counts, reverse=True):  # widest first; tighter boxes overwrite where they hold data
        v = _box(d2, r)
        v /= np.maximum(counts[r], 1e-3)
        np.maximum(v, VARIANCE_FLOOR, out=v)
        out = v if out is None else np.where(counts[r] > 0.5, v, out)
    return out


def fuse_keys(levels: np.ndarray, u_table: np.ndarray, var_table: np.ndarray,
              u_keys: Sequence[np.ndarray], floor: np.ndarray,
              radii: Sequence[int] = KEY_RADII,
              outside: Sequence[np.ndarray | None] | None = None) -> np.ndarray:
    """The frame's log radiance (3, H, W) float32: per channel, the inverse-variance mean
    of f⁻¹ (``u_table``, variance ``var_table``, none where the channel's LDR level
    ``levels`` is the top, clipped one) and of each key's log radiance in ``u_keys``
    (variance :func:`key_variance` over boxes of ``radii``, × (1 + (d / :data:`UNSEEN_PX`)²)
    where the key's ``outside`` (H, W) says the point was d px outside its frame); where
    the channel clips, at least ``floor`` (3,) (the log radiance of the level below the clip).

    Every array is channel-first (3, H, W) (channel sums are then contiguous); ``levels``
    holds the integer LDR levels 0 … LEVELS − 1 (8-bit codes), the others float32."""
    clipped = levels >= LEVELS - 1
    vt = np.where(clipped, np.float32(NO_WEIGHT), var_table).astype(np.float32)
    den = 1.0 / vt
    num = u_table * den
    unclipped = (levels < UNCLIPPED_CODE).astype(np.float32)
    n = unclipped[0] + unclipped[1] + unclipped[2]
    counts = {r: _box(n, r) for r in radii}  # the same for every key
    for i, u_k in enumerate(u_keys):
        v_k = key_variance(u_k, u_table, vt, unclipped, counts)
        if outside is not None and outside[i] is not None:
            v_k *= 1.0 + np.square(outside[i] / np.float32(UNSEEN_PX))
        w_k = 1.0 / v_k
        num = num + u_k * w_k
        den = den + w_k
    u = (num / den).astype(np.float32, copy=False)
    lo = np.broadcast_to(np.asarray(floor, np.float32)[:, None, None], u.shape)
    return np.where(clipped, np.maximum(u, lo), u)
