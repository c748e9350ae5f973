"""HDR: the issue-19 baselines (inverse curve; one-key and two-key flow warps into the
clipped pixels, each with the TRUE camera curve and with the curve fitted from the keys),
today's `tpn hdr` path and candidate fusions, on a declared tuning / held-out split of
pseudo-videos (tpn_eval.hdr_sequence, the RESULTS clips' generator).

    PYTHONPATH=. python scripts/hdr_twokey.py [--split tune|heldout] [--Ks 10,20]
        [--seeds 2] [--setting standard|hard] [--methods a,b,...] [--model M.tpn] [--json OUT]

Split (declared before measuring, docs/what-we-tried.md "HDR: two key-frames"):
tuning = the training-validation stills plus one more never trained on; held-out = the
remaining readable real-photo stills that tpn_cli.train.hdr_video never reads. Scores:
log-RMSE of log(H + 0.01) and PU21-PSNR (tpn_cli.metrics), mean over non-key frames.

Methods ("true": the clip's own camera curve; "fit": the response tpn_cli.camera_response
fits to the run's key-frames, as `tpn hdr` does):
  icc_*         f⁻¹(LDR) everywhere (the issue's "inverse camera curve alone")
  one_*, two_*  f⁻¹ where the LDR channel max < 0.95, else the nearest key / both
                neighbouring keys DIS-warped (MEDIUM, full resolution, 8-bit gray) and blended
                by exp(−e/8)/(|t − k| + 1) (the issue's baselines)
  tpn_nearest   today's `tpn hdr` (nearest key, TPN, 0.90→0.95 ramp into f⁻¹ fitted)
  tpn_blend     `tpn hdr --mode blend` (engine blend of both keys' TPN outputs)
  tpn_two_conf  both keys' TPN radiance blended with the issue's weights, product's fill
  fuse_*_pc     per-channel inverse-variance fusion (fuse_all) of the frame's own f⁻¹
                (variance per code measured on the keys) with the keys' propagated log
                radiance: two = two-key flow (issue weights, log domain), one = nearest key
                flow, tpn = tpn_two_conf's radiance, blend = tpn_blend's, near = the nearest
                key's TPN, flowin = the TPN's own aligned inputs blended as the engine does
                (no TPN); tpn_on_blend_pc = ONE TPN pass on the blended aligned inputs
  two_pc_fill   per channel, no fusion: keys where the channel's code is 255, f⁻¹ elsewhere
  shipped       the default `tpn hdr` as shipped (KeyPropagator, HdrAdapter's fusion of both
                aligned keys, no network); shipped_tpn: `tpn hdr --tpn`; shipped_dist:
                candidate, each key's variance × (|t − k| + 1)
  fuse_two      fusion only in unclipped pixels, max-channel mask (first version)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tpn_cli import camera_response, colour, metrics  # noqa: E402
import tpn_eval as ev  # noqa: E402
from tpn_cli.flow import dis_flow, warp  # noqa: E402
from tpn_cli.train.hdr_video import HDR_ROOT, read_hdr  # noqa: E402

#: The split, fixed before any measurement (tpn_eval.HDR_SPLIT). hdr_video.hdr_images
#: trains on polyhaven/*.hdr and openexr ScanLines/*.exr except HDR_VAL; none of the
#: held-out files is among them.
SPLIT = ev.HDR_SPLIT

#: The issue's baseline: clipped = the LDR channel max ≥ 0.95; two keys weighted by
#: exp(−e/8)/(|t − k| + 1), e = 9×9 box mean of |warped key gray − frame gray| (8-bit).
CLIP = 0.95
CONF_BOX, CONF_SCALE = 9, 8.0


def make_clip(name: str, seed: int, frames: int, image: np.ndarray, setting: str = "standard"):
    """One pseudo-video (radiance, LDR frames) and its true camera curve (n, σ): the RESULTS
    generator (tpn_eval.hdr_sequence) with one of its HDR_SETTINGS."""
    info: dict = {}
    hdr, ldr = ev.hdr_sequence(ev.hdr_clip_rng(name, seed), image, frames, info=info,
                               **ev.HDR_SETTINGS[setting])
    return hdr, ldr, (info["n"], info["sigma"])


def gray8(code: np.ndarray) -> np.ndarray:
    """8-bit luma of an 8-bit RGB frame (what the baseline's flow and confidence see)."""
    import cv2
    return cv2.cvtColor(code, cv2.COLOR_RGB2GRAY)


def box(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)² box, edges replicated."""
    import cv2
    return cv2.blur(x.astype(np.float32), (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REPLICATE)


def confidence(warped_gray: np.ndarray, gray: np.ndarray, scale: float = CONF_SCALE,
               size: int = CONF_BOX) -> np.ndarray:
    """exp(−e/scale), e = box mean of |warped key gray − frame gray| (8-bit units)."""
    e = box(np.abs(warped_gray.astype(np.float32) - gray.astype(np.float32)), size // 2)
    return np.exp(-e / scale)


class Clip:
    """One pseudo-video with its 8-bit codes, grays, and cached full-resolution flows."""

    def __init__(self, hdr, ldr, curve):
        self.hdr, self.ldr, self.curve = hdr, ldr, curve
        self.codes = [np.rint(x * 255.0).astype(np.uint8) for x in ldr]
        self.grays = [gray8(c) for c in self.codes]
        self._warps = {}

    def warped(self, t: int, k: int):
        """Key k's radiance and gray warped to frame t by DIS (MEDIUM) on the 8-bit grays."""
        if (t, k) not in self._warps:
            fl = dis_flow(self.grays[t], self.grays[k])
            self._warps[(t, k)] = (warp(self.hdr[k], fl).astype(np.float64), warp(self.grays[k], fl))
        return self._warps[(t, k)]

    def true_inverse(self, t: int) -> np.ndarray:
        n, s = self.curve
        return colour.inverse_camera_curve(torch.from_numpy(self.ldr[t]).double(), n=n, sigma=s).numpy()


def neighbours(t: int, keys: list[int]) -> list[int]:
    """The key before and the key after t (one at the ends)."""
    prev = [k for k in keys if k <= t]
    nxt = [k for k in keys if k >= t]
    return sorted({prev[-1]} | ({nxt[0]} if nxt else set())) if prev else [nxt[0]]


def nearest(t: int, keys: list[int]) -> int:
    """Nearest key, ties to the earlier one (as tpn_cli.keyframes' nearest)."""
    return min(keys, key=lambda k: (abs(t - k), k))


def two_key_radiance(clip: Clip, t: int, ks: list[int], scale=CONF_SCALE, size=CONF_BOX,
                     domain: str = "linear") -> np.ndarray:
    """The issue's fusion of the neighbouring keys' warped radiance (all pixels)."""
    ws, hs = [], []
    for k in ks:
        hk, gk = clip.warped(t, k)
        ws.append(confidence(gk, clip.grays[t], scale, size) / (abs(t - k) + 1))
        hs.append(hk)
    tot = sum(ws) + 1e-12
    if domain == "log":
        return np.exp(sum(w[..., None] * np.log(h + 0.01) for w, h in zip(ws, hs)) / tot[..., None]) - 0.01
    return sum(w[..., None] * h for w, h in zip(ws, hs)) / tot[..., None]


def fill_hard(ldr: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """``inside`` where the LDR channel max ≥ CLIP, ``outside`` elsewhere."""
    sat = ldr.max(-1, keepdims=True) >= CLIP
    return np.where(sat, inside, outside)


def fill_ramp(ldr: np.ndarray, inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """The product's rule (HdrAdapter.finish): ramp 0.90 → 0.95 of the LDR channel max."""
    m = ldr.max(-1, keepdims=True)
    a = np.clip((m - (colour.CLIP_LEVEL - colour.CLIP_RAMP)) / colour.CLIP_RAMP, 0, 1)
    return (1 - a) * outside + a * inside


def level_variance(clip: "Clip", keys: list[int], fitted) -> np.ndarray:
    """(3, 256) variance of the key pixels' log(H + 0.01) around the fitted table, per
    channel and 8-bit code: how far f⁻¹ of one code can be trusted (noise, quantisation),
    measured on the run's own key-frames."""
    sq, cnt = np.zeros((3, 256)), np.zeros((3, 256))
    for k in keys:
        u = np.log(clip.hdr[k].astype(np.float64) + 0.01)
        tab = fitted.log_radiance(clip.codes[k]).astype(np.float64)
        for c in range(3):
            lv = clip.codes[k][..., c].ravel()
            sq[c] += np.bincount(lv, weights=((u[..., c] - tab[..., c]) ** 2).ravel(), minlength=256)
            cnt[c] += np.bincount(lv, minlength=256)
    # sparse codes: fall back on the pooled variance of the channel (4 pixels' weight)
    pooled = sq.sum(1, keepdims=True) / np.maximum(cnt.sum(1, keepdims=True), 1)
    return (sq + 4 * pooled) / (cnt + 4) + VAR_FLOOR


#: Smallest variance (log units²) of either estimate in :func:`fuse_everywhere`.
VAR_FLOOR = 1e-5
FUSE_BOX = 4  # radius of the box over which the warped keys' error is measured


def fuse_everywhere(code: np.ndarray, u_table: np.ndarray, var_table: np.ndarray,
                    u_keys: np.ndarray, r: int | None = None) -> np.ndarray:
    """Inverse-variance fusion, in unclipped pixels, of the frame's own f⁻¹ (variance per
    code from the keys) with the keys' propagated log radiance (variance: the local mean of
    their squared difference minus the table's share). Returns the fused log radiance."""
    r = FUSE_BOX if r is None else r
    vt = np.stack([var_table[c][code[..., c]] for c in range(3)], -1)
    d2 = ((u_keys - u_table) ** 2).mean(-1)
    vk = np.maximum(box(d2, r) - box(vt.mean(-1), r), VAR_FLOOR)[..., None]
    return (u_table / vt + u_keys / vk) / (1 / vt + 1 / vk)


def fuse_all(code: np.ndarray, u_table: np.ndarray, var_table: np.ndarray, u_keys: np.ndarray,
             r: int | None = None, clipped_code: int | None = None) -> np.ndarray:
    """:func:`fuse_everywhere` per channel over the whole frame: a clipped code's table
    variance is large, so there the keys win by themselves, with no mask. The keys' error
    is measured only on codes below the clip (mask-normalised box)."""
    r = FUSE_BOX if r is None else r
    vt = np.stack([var_table[c][code[..., c]] for c in range(3)], -1)
    if clipped_code is not None:  # a clipped code measures nothing but a lower bound
        vt = np.where(code >= clipped_code, 1e6, vt)
    ok = (code < round(CLIP * 255)).astype(np.float32)
    d2 = ((u_keys - u_table) ** 2 - vt) * ok
    vk = np.maximum(box(d2.sum(-1), r) / np.maximum(box(ok.sum(-1), r), 1e-3), VAR_FLOOR)[..., None]
    # far from any unclipped pixel the mask is empty: keys' variance unknown, trust them
    vk = np.where(box(ok.sum(-1), r)[..., None] > 1e-3, vk, VAR_FLOOR)
    u = (u_table / vt + u_keys / vk) / (1 / vt + 1 / vk)
    return u


def key_variance(code: np.ndarray, u_table: np.ndarray, vt: np.ndarray, u_key: np.ndarray,
                 radii=(4, 16, 64)) -> np.ndarray:
    """(H, W, 1) local error variance of one key's propagated log radiance: the box mean of
    (u_key − u_table)² − the table's variance over unclipped codes, at the smallest of
    ``radii`` whose box holds enough of them (deep inside a clipped area a wider box)."""
    ok = (code < round(CLIP * 255)).astype(np.float32)
    d2 = ((u_key - u_table) ** 2 - vt) * ok
    out = None
    for r in reversed(radii):  # wide first, then overwrite where a tighter box has data
        n = box(ok.sum(-1), r)
        v = np.maximum(box(d2.sum(-1), r) / np.maximum(n, 1e-3), VAR_FLOOR)
        out = v if out is None else np.where(n > 0.5, v, out)
    return out[..., None]


def fuse_keys(code: np.ndarray, u_table: np.ndarray, var_table: np.ndarray,
              u_keys: list[np.ndarray], lo: np.ndarray) -> np.ndarray:
    """Inverse-variance fusion, per channel, of the frame's own f⁻¹ (none at code 255) with
    EACH key's propagated log radiance, each key weighted by its own local error; clipped
    channels lower-bounded by the last code's radiance ``lo`` (3,)."""
    vt = np.stack([var_table[c][code[..., c]] for c in range(3)], -1)
    vt = np.where(code >= 255, 1e6, vt)
    num, den = u_table / vt, 1.0 / vt
    for u_k in u_keys:
        vk = key_variance(code, u_table, vt, u_k)
        num, den = num + u_k / vk, den + 1.0 / vk
    u = num / den
    return np.where(code == 255, np.maximum(u, lo), u)


def scores(pred: np.ndarray, truth: np.ndarray, ldr: np.ndarray) -> dict:
    p = torch.from_numpy(np.ascontiguousarray(pred.transpose(2, 0, 1)))[None].double()
    g = torch.from_numpy(np.ascontiguousarray(truth.transpose(2, 0, 1)))[None].double()
    sat = torch.from_numpy(ldr.max(-1) >= CLIP)[None, None]
    out = {"log_rmse": float(metrics.log_rmse(p, g)[0]), "pu21": float(metrics.pu21_psnr(p, g)[0])}
    out["sat"] = float(metrics.log_rmse(p, g, mask=sat)[0]) if bool(sat.any()) else float("nan")
    out["unsat"] = float(metrics.log_rmse(p, g, mask=~sat)[0]) if bool((~sat).any()) else float("nan")
    return out


class Product:
    """Today's `tpn hdr` per-frame path (as tpn_eval runs it): HdrAdapter with the
    response fitted to the run's keys, the key flow-aligned at the working size, the TPN,
    output filled into the clipped pixels with the 0.90→0.95 ramp."""

    def __init__(self, model, clip: Clip, keys: list[int], response):
        from tpn_cli.adapters import HdrAdapter
        from tpn_cli.engine import work_shape
        h, w = clip.codes[0].shape[:2]
        self.model, self.clip = model, clip
        self.adapter = HdrAdapter(work_shape(w, h, HdrAdapter.default_work_size), "cpu", response)
        self.prepared, self.cache = {}, {}

    @torch.no_grad()
    def u(self, t: int, k: int):
        """(TPN log radiance at work size, aligned key log radiance, aligned key guide, guide)."""
        from tpn_cli.models import infer
        if (t, k) not in self.cache:
            if k not in self.prepared:
                self.prepared[k] = self.adapter.prepare_key(k, self.clip.hdr[k], self.clip.codes[k])
            pk, v_t = self.prepared[k], self.adapter.guide(self.clip.codes[t])
            u_in, v_in = infer.align_key(pk.u, pk.v, v_t)
            out = self.model(u_in[None], v_in[None], v_t[None])[0]
            self.cache[(t, k)] = (out, u_in, v_in, v_t)
        return self.cache[(t, k)]

    def finish(self, t: int, u: torch.Tensor) -> np.ndarray:
        return self.adapter.finish(self.clip.codes[t], u, None)

    def radiance(self, t: int, u: torch.Tensor) -> np.ndarray:
        """Full-resolution radiance of a work-size log map, without any fill."""
        from tpn_cli.adapters import resize
        from tpn_cli.models import tasks as mt
        return mt.hdr_unprop(resize(u, tuple(self.clip.codes[t].shape[:2]))).permute(1, 2, 0).numpy()


class Shipped:
    """`tpn hdr` as shipped, through the one prediction path: KeyPropagator + HdrAdapter
    (response fitted to the run's keys), both neighbouring keys (blend schedule), no
    network (``model`` None, the default) or the HDR TPN on each key (``--tpn``)."""

    def __init__(self, clip: Clip, keys: list[int], response, model=None):
        from tpn_cli.adapters import HdrAdapter
        from tpn_cli.engine import work_shape
        from tpn_cli.keyframes import plan
        from tpn_cli.propagator import KeyPropagator
        h, w = clip.codes[0].shape[:2]
        self.clip = clip
        self.prop = KeyPropagator(HdrAdapter(work_shape(w, h, HdrAdapter.default_work_size), "cpu", response),
                                  model)
        self.sources = {a.frame: a.sources for a in plan(len(clip.codes), keys, "blend")}

    @torch.no_grad()
    def predict(self, t: int) -> np.ndarray:
        for k, _ in self.sources[t]:
            if k not in self.prop.keys:
                self.prop.set_key(k, self.clip.hdr[k], self.clip.codes[k])
        return self.prop.predict(t, self.clip.codes[t], self.sources[t])

    @torch.no_grad()
    def predict_distance(self, t: int) -> np.ndarray:
        """As :meth:`predict`, but each key's variance × (|t − k| + 1) (the two-key
        baseline's distance prior on top of the measured error): candidate, not shipped."""
        from tpn_cli import hdr_fusion
        from tpn_cli.adapters import resize
        from tpn_cli.flow import warp_planes
        for k, _ in self.sources[t]:
            if k not in self.prop.keys:
                self.prop.set_key(k, self.clip.hdr[k], self.clip.codes[k])
        pred = self.prop.prepare_frame(t, self.clip.codes[t], self.sources[t])
        self.prop.correct(pred.views)
        r, code = self.prop.adapter.response, self.clip.codes[t]
        planes = lambda x: np.ascontiguousarray(np.asarray(x).transpose(2, 0, 1))  # noqa: E731
        lv, ut, vt0 = planes(code), planes(r.log_radiance(code)), planes(r.variance(code))
        clipped = lv >= 255
        vt = np.where(clipped, np.float32(hdr_fusion.NO_WEIGHT), vt0).astype(np.float32)
        unclipped = (lv < hdr_fusion.UNCLIPPED_CODE).astype(np.float32)
        n = unclipped.sum(0)
        counts = {rr: hdr_fusion._box(n, rr) for rr in hdr_fusion.KEY_RADII}
        num, den = ut / vt, 1.0 / vt
        for view in pred.views:
            outside = None
            if view.flow is not None:  # the default: the key's full-size map warped (HdrAdapter.warps_keys)
                u_k, outside = warp_planes(view.key.u_full, view.flow)
            else:
                u_k = resize(view.out, code.shape[:2]).numpy()
            v_k = hdr_fusion.key_variance(u_k, ut, vt, unclipped, counts) * (abs(t - view.key.index) + 1)
            if outside is not None:
                v_k *= 1.0 + np.square(outside / np.float32(hdr_fusion.UNSEEN_PX))
            w_k = 1.0 / v_k
            num, den = num + u_k * w_k, den + w_k
        u = num / den
        lo = r.log_table[:, 254][:, None, None]
        u = np.where(clipped, np.maximum(u, lo), u)
        return (np.exp(u) - 0.01).transpose(1, 2, 0)


def engine_blend(prod: Product, t: int, ks: list[int]) -> torch.Tensor:
    """`tpn hdr --mode blend`: log maps blended by linear distance × (alignment confidence
    + floor) (tpn_cli.models.infer.blend_weights, the engine's rule)."""
    from tpn_cli.models import infer
    if len(ks) == 1:
        return prod.u(t, ks[0])[0]
    a, b = ks
    dist = [(b - t) / (b - a), (t - a) / (b - a)]
    outs = [prod.u(t, k) for k in ks]
    ws = infer.blend_weights(dist, [o[2] for o in outs], outs[0][3])
    return sum(w * o[0] for w, o in zip(ws, outs))


def methods_for(clip: Clip, t: int, keys: list[int], fitted, prod: Product | None, want: set,
                var_table: np.ndarray | None = None, shipped: dict | None = None) -> dict:
    """Every requested method's radiance for frame t (``shipped``: name → Shipped)."""
    ldr, code = clip.ldr[t], clip.codes[t]
    inv_true = clip.true_inverse(t)
    inv_fit = fitted.radiance(code).astype(np.float64)
    ks, kn = neighbours(t, keys), nearest(t, keys)
    out = {name: sh.predict(t) for name, sh in (shipped or {}).items()}
    if "shipped_dist" in want and shipped:
        out["shipped_dist"] = next(iter(shipped.values())).predict_distance(t)

    def want_(m):
        return m in want or "all" in want

    one = clip.warped(t, kn)[0] if (want & {"all", "one_true", "one_fit"}) else None
    two = two_key_radiance(clip, t, ks) if (want & {"all", "two_true", "two_fit", "two_fit_ramp"}) else None
    for tag, inv in (("true", inv_true), ("fit", inv_fit)):
        if want_(f"icc_{tag}"):
            out[f"icc_{tag}"] = inv
        if want_(f"one_{tag}"):
            out[f"one_{tag}"] = fill_hard(ldr, one, inv)
        if want_(f"two_{tag}"):
            out[f"two_{tag}"] = fill_hard(ldr, two, inv)
    if want_("two_fit_ramp"):
        out["two_fit_ramp"] = fill_ramp(ldr, two, inv_fit)
    if want_("two_fit_log"):
        out["two_fit_log"] = fill_hard(ldr, two_key_radiance(clip, t, ks, domain="log"), inv_fit)
    lo = np.log(fitted.radiance(np.full((1, 1, 3), 254, np.uint8))[0, 0] + 0.01)

    def bounded(u_k):  # a clipped channel is at least as bright as the last code below it
        return np.where(code == 255, np.maximum(u_k, lo), u_k)

    if want_("fuse3_two"):  # each key (DIS MEDIUM warp) weighted by its own local error
        u_ks = [np.log(clip.warped(t, k)[0] + 0.01) for k in ks]
        out["fuse3_two"] = np.exp(fuse_keys(code, np.log(inv_fit + 0.01), var_table, u_ks, lo)) - 0.01
    if want_("fuse_two_pc"):  # flow only: two keys (log domain) fused per channel
        u_k = np.log(two_key_radiance(clip, t, ks, domain="log") + 0.01)
        out["fuse_two_pc"] = np.exp(fuse_all(code, np.log(inv_fit + 0.01), var_table, bounded(u_k),
                                             clipped_code=255)) - 0.01
    if want_("two_pc_fill") or want_("two_pc_fill_nolb"):  # per channel, no fusion: f⁻¹ below code 255, keys at 255
        u_k = np.log(two_key_radiance(clip, t, ks, domain="log") + 0.01)
        u_tab = np.log(inv_fit + 0.01)
        out["two_pc_fill"] = np.exp(np.where(code == 255, bounded(u_k), u_tab)) - 0.01
        out["two_pc_fill_nolb"] = np.exp(np.where(code == 255, u_k, u_tab)) - 0.01
    if want_("fuse_two_pc_nolb"):
        u_k = np.log(two_key_radiance(clip, t, ks, domain="log") + 0.01)
        out["fuse_two_pc_nolb"] = np.exp(fuse_all(code, np.log(inv_fit + 0.01), var_table, u_k,
                                                  clipped_code=255)) - 0.01
    if want_("fuse_two_pc_lin"):
        u_k = np.log(two_key_radiance(clip, t, ks, domain="linear") + 0.01)
        out["fuse_two_pc_lin"] = np.exp(fuse_all(code, np.log(inv_fit + 0.01), var_table, bounded(u_k),
                                                 clipped_code=255)) - 0.01
    if want_("fuse_one_pc"):  # nearest key only
        u_k = np.log(clip.warped(t, kn)[0] + 0.01)
        out["fuse_one_pc"] = np.exp(fuse_all(code, np.log(inv_fit + 0.01), var_table, bounded(u_k),
                                             clipped_code=255)) - 0.01
    if want & {"all", "fuse_two", "fuse_two_log"}:
        u_tab = np.log(inv_fit + 0.01)
        for m, dom in (("fuse_two", "linear"), ("fuse_two_log", "log")):
            if want_(m):
                u_k = np.log(two_key_radiance(clip, t, ks, domain=dom) + 0.01)
                fused = np.exp(fuse_everywhere(code, u_tab, var_table, u_k)) - 0.01
                out[m] = fill_hard(ldr, np.exp(u_k) - 0.01, fused)
    if prod is not None:
        if want_("tpn_nearest"):
            out["tpn_nearest"] = prod.finish(t, prod.u(t, kn)[0])
        if want_("tpn_blend"):
            out["tpn_blend"] = prod.finish(t, engine_blend(prod, t, ks))
        if want_("tpn_two_conf") or want_("fuse_tpn"):  # each key's TPN radiance, fused with the weights
            ws, rs = [], []
            for k in ks:
                _, gk = clip.warped(t, k)
                ws.append(confidence(gk, clip.grays[t]) / (abs(t - k) + 1))
                rs.append(prod.radiance(t, prod.u(t, k)[0]))
            fused = sum(w[..., None] * r for w, r in zip(ws, rs)) / (sum(ws) + 1e-12)[..., None]
            out["tpn_two_conf"] = fill_ramp(ldr, fused, inv_fit)
            if want_("fuse_tpn"):
                u_tab = np.log(inv_fit + 0.01)
                u_k = np.log(fused + 0.01)
                out["fuse_tpn"] = fill_ramp(ldr, fused, np.exp(fuse_everywhere(code, u_tab, var_table, u_k)) - 0.01)
                if want_("fuse_tpn_all"):  # per channel, clipped codes fused too
                    out["fuse_tpn_all"] = np.exp(fuse_all(code, u_tab, var_table, u_k)) - 0.01
                out["fuse_tpn_pc"] = np.exp(fuse_all(code, u_tab, var_table, bounded(u_k),
                                                      clipped_code=255)) - 0.01
        u_tab = np.log(inv_fit + 0.01)

        def pc(u_work):  # a work-size log map → per-channel fusion with the frame's f⁻¹
            u_full = np.log(prod.radiance(t, u_work) + 0.01)
            return np.exp(fuse_all(code, u_tab, var_table, bounded(u_full), clipped_code=255)) - 0.01

        if want_("fuse_near_pc"):  # one key (nearest), per-channel fusion
            out["fuse_near_pc"] = pc(prod.u(t, kn)[0])
        if want_("fuse_blend_pc"):  # the engine's blend (product's own flow), per-channel fusion
            out["fuse_blend_pc"] = pc(engine_blend(prod, t, ks))
        def aligned_blend():  # the keys' aligned inputs (u, v) blended by the engine's weights
            from tpn_cli.models import infer
            a, b = ks
            outs = [prod.u(t, k) for k in ks]
            ws = infer.blend_weights([(b - t) / (b - a), (t - a) / (b - a)], [o[2] for o in outs], outs[0][3])
            return (sum(w * o[1] for w, o in zip(ws, outs)), sum(w * o[2] for w, o in zip(ws, outs)),
                    outs[0][3])

        if want_("fuse_flowin_pc"):  # the TPN's aligned input itself (no TPN), engine blend weights
            out["fuse_flowin_pc"] = pc(prod.u(t, ks[0])[1] if len(ks) == 1 else aligned_blend()[0])
        for m, idx in (("fuse3_flowin", 1), ("fuse3_tpn", 0)):  # product's flow; aligned inputs / TPN
            if want_(m):
                u_ks = [np.log(prod.radiance(t, prod.u(t, k)[idx]) + 0.01) for k in ks]
                out[m] = np.exp(fuse_keys(code, u_tab, var_table, u_ks, lo)) - 0.01
        if want_("tpn_on_blend_pc"):  # ONE TPN pass on the blended aligned keys, then fusion
            if len(ks) == 1:
                u_tp = prod.u(t, ks[0])[0]
            else:
                u_in, v_in, v_t = aligned_blend()
                with torch.no_grad():
                    u_tp = prod.model(u_in[None], v_in[None], v_t[None])[0]
            out["tpn_on_blend_pc"] = pc(u_tp)
    return out


def run(split: str, Ks, seeds: int, frames: int, setting: str, want: set, model_path: str | None,
        log=print, images: list[str] | None = None) -> dict:
    """{K: {method: {score: mean over non-key frames}}} and per-image means."""
    model = None
    if want & {"all", "tpn_nearest", "tpn_blend", "tpn_two_conf", "fuse_tpn", "fuse_near_pc",
               "fuse_blend_pc", "fuse_flowin_pc", "tpn_on_blend_pc", "fuse3_flowin", "fuse3_tpn",
               "shipped_tpn"}:
        from tpn_cli import weights
        from tpn_cli.models import load_model
        model = load_model(str(model_path or weights.resolve(None, "hdr"))).eval()
    vals = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    per_image = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for name, rel in SPLIT[split].items():
        if images and name not in images:
            continue
        image = read_hdr(HDR_ROOT / rel)
        for seed in range(seeds):
            t0 = time.time()
            clip = Clip(*make_clip(name, seed, frames, image, setting))
            sat = np.mean([(x.max(-1) >= CLIP).mean() for x in clip.ldr])
            for K in Ks:
                keys = ev.key_frames(frames, K)
                fitted = camera_response.fit((clip.codes[k], clip.hdr[k]) for k in keys)
                prod = Product(model, clip, keys, fitted) if model is not None else None
                var_table = level_variance(clip, keys, fitted)
                shipped = {}
                if want & {"all", "shipped", "shipped_dist"}:
                    shipped["shipped"] = Shipped(clip, keys, fitted)
                if model is not None and want & {"all", "shipped_tpn"}:
                    shipped["shipped_tpn"] = Shipped(clip, keys, fitted, model)
                for t in range(frames):
                    if t in keys:
                        continue
                    for m, pred in methods_for(clip, t, keys, fitted, prod, want, var_table, shipped).items():
                        for q, v in scores(pred, clip.hdr[t], clip.ldr[t]).items():
                            vals[K][m][q].append(v)
                            if q == "log_rmse":
                                per_image[K][m][name].append(v)
            log(f"{name} seed {seed}: saturated {100 * sat:.1f} %, {time.time() - t0:.0f} s")
    summary = {K: {m: {q: float(np.nanmean(v)) for q, v in qs.items()} for m, qs in ms.items()}
               for K, ms in vals.items()}
    images = {K: {m: {n: float(np.mean(v)) for n, v in ns.items()} for m, ns in ms.items()}
              for K, ms in per_image.items()}
    return {"summary": summary, "per_image": images}


def table(summary: dict, K: int) -> str:
    rows = ["| method | log-RMSE | saturated | unsaturated | PU21-PSNR |", "|---|---:|---:|---:|---:|"]
    for m, s in summary[K].items():
        rows.append(f"| {m} | {s['log_rmse']:.4f} | {s['sat']:.4f} | {s['unsat']:.4f} | {s['pu21']:.2f} |")
    return "\n".join(rows)


def main(argv=None) -> None:
    global FUSE_BOX
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--split", default="tune", choices=sorted(SPLIT))
    p.add_argument("--Ks", default="10,20")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--frames", type=int, default=41)
    p.add_argument("--setting", default="standard", choices=sorted(ev.HDR_SETTINGS),
                   help="pseudo-video setting (tpn_eval.HDR_SETTINGS: frame size, speed, clipping)")
    p.add_argument("--methods", default="all")
    p.add_argument("--images", default=None, help="comma-separated stills of the split (default all)")
    p.add_argument("--model", default=None)
    p.add_argument("--json", default=None)
    p.add_argument("--fuse-box", type=int, default=FUSE_BOX, help="radius of the keys' error box")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    FUSE_BOX = a.fuse_box
    Ks = [int(k) for k in a.Ks.split(",")]
    res = run(a.split, Ks, a.seeds, a.frames, a.setting, set(a.methods.split(",")), a.model,
              images=a.images.split(",") if a.images else None)
    for K in Ks:
        print(f"\n{a.split}, K = {K}, {a.seeds} clip(s) per image, {a.frames} frames, setting {a.setting}")
        print(table(res["summary"], K))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
