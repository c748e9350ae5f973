"""Candidate colour methods for issue 19, measured by scripts/eval_colour_split.py as
``cand:NAME`` (each a function (frames, n, keys, wanted) → {frame: RGB} and the schedule
whose key changes count as "switch" for its warping error).

Everything here works at the frame's full resolution from both neighbouring key-frames;
the tuning set only (scripts/eval_colour_split.py SPLITS["tune"]).
"""
from __future__ import annotations

import numpy as np
import torch

import baselines_colour as bc
from tpn_cli.flow import DisTuning, dis_flow, warp
from tpn_cli.keyframes import plan
from tpn_cli import ops


def _frames_of(frames, n, keys, wanted, predict):
    """Run ``predict(target Frame, t, [(k, Frame)], truth Frame)`` → ab on the wanted
    non-key frames of the blend schedule; key-frames give themselves."""
    out, cache = {}, {}

    def F(i):
        if i not in cache:
            cache[i] = bc.Frame(frames[i])
        return cache[i]

    for a in plan(n, keys, "blend"):
        if a.frame not in wanted:
            continue
        if a.frame in keys:
            out[a.frame] = frames[a.frame]
            continue
        tgt = F(a.frame)
        ab = predict(tgt, a.frame, [(k, F(k)) for k, _ in a.sources])
        out[a.frame] = bc.rgb_of(tgt, ab)
        for k in [k for k in cache if k < min(k for k, _ in a.sources)]:
            del cache[k]
    return out


def warped_keys(tgt, keys, preset="medium", tuning=None, fb=False):
    """Per key: (k, warped ab, warped 8-bit L, flow, forward-backward error or None)."""
    res = []
    for k, key in keys:
        flow = dis_flow(tgt.gray, key.gray, preset, tuning)
        both = np.concatenate([key.ab, key.gray[..., None].astype(np.float32)], axis=2)
        w = warp(both, flow)
        fbe = None
        if fb:
            back = dis_flow(key.gray, tgt.gray, preset, tuning)
            fbe = np.sqrt(np.sum((flow + warp(back, flow)) ** 2, axis=2))
        res.append((k, w[..., :2], w[..., 2], flow, fbe))
    return res


def fuse(tgt, t, wk, box=9, scale=8.0, dist_pow=1.0, fb_scale=None):
    """Weighted blend of warped keys: exp(−e/scale) [× exp(−fb/fb_scale)] / (|t−k|+1)^p.
    Returns (ab, per-key weights before normalising)."""
    ws = []
    for k, ab, g, flow, fbe in wk:
        w = np.exp(-bc.photometric_error(g, tgt.gray, box) / scale)
        if fb_scale is not None and fbe is not None:
            w = w * np.exp(-np.minimum(fbe, 50.0) / fb_scale)
        ws.append(w / (abs(t - k) + 1.0) ** dist_pow)
    den = np.maximum(sum(ws), 1e-12)
    ab = sum(w[..., None] * x[1] for w, x in zip(ws, wk)) / den[..., None]
    return ab, ws


# ---- edge-aware normalised fill with the compiled scan (C = 3: weighted a, b, weight) ---
def edge_gates(L: np.ndarray, sigma: float, strength: float) -> torch.Tensor:
    """Gates (1, 4, 3, 1, H, W) of the four scans from the frame's L (0..100): each of the
    three neighbours gets strength/3 × exp(−|ΔL|/sigma), so the scan spreads along
    regions of like lightness and stops at edges."""
    Lt = torch.from_numpy(L.astype(np.float32))
    H, W = Lt.shape
    P = torch.nn.functional.pad(Lt[None, None], (1, 1, 1, 1), mode="replicate")[0, 0]
    c = Lt

    def nb(dy, dx):
        return P[1 + dy:1 + dy + H, 1 + dx:1 + dx + W]

    # directions L→R (prev column w−1), R→L (w+1), T→B (prev row h−1), B→T (h+1);
    # gate order: "-1" side across the scan, straight, "+1" side
    spec = [[(-1, -1), (0, -1), (1, -1)], [(-1, 1), (0, 1), (1, 1)],
            [(-1, -1), (-1, 0), (-1, 1)], [(1, -1), (1, 0), (1, 1)]]
    g = torch.stack([torch.stack([torch.exp(-(c - nb(dy, dx)).abs() / sigma) for dy, dx in d])
                     for d in spec])  # (4, 3, H, W)
    g = g * (strength / 3.0)
    return g[None, :, :, None]


def edge_gates_fast(L: np.ndarray, sigma: float, strength: float) -> torch.Tensor:
    """:func:`edge_gates` from 4 exp maps instead of 12: the gate towards neighbour −o at x
    is the one towards +o at x − o, so the maps of offsets (0, 1), (1, 0), (1, 1), (1, −1)
    are computed once and shifted. Gates towards neighbours outside the image are 0 here
    (edge_gates gives them a value); the scan drops those neighbours either way."""
    Lt = torch.from_numpy(L.astype(np.float32))
    H, W = Lt.shape
    k = strength / 3.0

    def g(dy, dx):  # G_o(x) = k·exp(−|L(x) − L(x+o)|/σ) where x + o is inside, else 0
        out = torch.zeros(H, W)
        ys, yn = (slice(0, H - dy), slice(dy, H)) if dy >= 0 else (slice(-dy, H), slice(0, H + dy))
        xs, xn = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W), slice(0, W + dx))
        out[ys, xs] = torch.exp(-(Lt[ys, xs] - Lt[yn, xn]).abs() / sigma) * k
        return out

    def flip(e, dy, dx):  # G_{−o}(x) = G_o(x − o)
        out = torch.zeros(H, W)
        ys, yd = (slice(0, H - dy), slice(dy, H)) if dy >= 0 else (slice(-dy, H), slice(0, H + dy))
        xs, xd = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W), slice(0, W + dx))
        out[yd, xd] = e[ys, xs]
        return out

    r, d, dr, dl = g(0, 1), g(1, 0), g(1, 1), g(1, -1)
    lft, up, ul, ur = flip(r, 0, 1), flip(d, 1, 0), flip(dr, 1, 1), flip(dl, 1, -1)
    # per direction, neighbours in edge_gates' order ("-1" side, straight, "+1" side)
    spec = [[ul, lft, dl], [ur, r, dr], [ul, up, ur], [dl, d, dr]]
    return torch.stack([torch.stack(x) for x in spec])[None, :, :, None]


def edge_fill(num: np.ndarray, den: np.ndarray, L: np.ndarray, sigma=4.0, strength=0.98,
              passes=2, average=False, fast_gates=False) -> tuple[np.ndarray, np.ndarray]:
    """Edge-aware spreading of (num (H, W, 2), den (H, W)): each pass runs L→R then R→L then
    T→B then B→T (one linear scan after another, so numerator and weight see the same
    linear operator); ``average``: each pass is instead the mean of the four scans of its
    input (one op call, also linear); returns the spread (num, den)."""
    gates = (edge_gates_fast if fast_gates else edge_gates)(L, sigma, strength)
    x = torch.from_numpy(np.concatenate([num, den[..., None]], axis=2)).permute(2, 0, 1)[None].float()
    for _ in range(passes):
        if average:
            x = ops.scan(x.contiguous(), gates).mean(dim=1)
            continue
        for d in range(4):
            x = ops.scan(x.contiguous(), gates)[:, d]
    y = x[0].permute(1, 2, 0).numpy()
    return y[..., :2], y[..., 2]


def ncfill_predict(sigma=4.0, strength=0.98, passes=2, keep=1.0, fb_scale=None,
                   per_key=False, box=9, scale=8.0, average=False, fast_gates=True):
    """The baseline's blend, with the pixels where no warped key fits filled by an
    edge-aware, confidence-weighted spreading of the fitting ones (:func:`edge_fill`).
    ``per_key``: spread each key's own confidence-weighted colour (Σ c_k ab_k / Σ c_k)
    instead of the blend weighted by the best key's confidence; ``box``/``scale``: the
    fill's confidence exp(−box-mean error / scale)."""
    def predict(tgt, t, keys):
        wk = warped_keys(tgt, keys, fb=fb_scale is not None)
        ab, ws = fuse(tgt, t, wk, fb_scale=fb_scale)
        # confidence-weighted numerator: only keys' own fit, no distance (a far key that
        # fits is as good a colour source as a near one)
        conf = [np.exp(-bc.photometric_error(x[2], tgt.gray, box) / scale) for x in wk]
        c = np.maximum.reduce(conf)
        if per_key:
            num = sum(ck[..., None] * x[1] for ck, x in zip(conf, wk))
            n2, d2 = edge_fill(num, sum(conf), tgt.L, sigma, strength, passes, average, fast_gates)
        else:
            num = c[..., None] * ab
            n2, d2 = edge_fill(num, c, tgt.L, sigma, strength, passes, average, fast_gates)
        filled = n2 / np.maximum(d2, 1e-6)[..., None]
        m = np.clip(keep * c, 0, 1)[..., None]
        return m * ab + (1 - m) * filled
    return predict


def oracle_predict(truth_frames):
    """Diagnostic: per pixel, the warped key whose ab is closer to the truth."""
    def predict(tgt, t, keys):
        wk = warped_keys(tgt, keys)
        if len(wk) == 1:
            return wk[0][1]
        err = [np.sum((x[1] - tgt.ab) ** 2, axis=2) for x in wk]
        pick = (err[1] < err[0])[..., None]
        return np.where(pick, wk[1][1], wk[0][1])
    return predict


def fused_predict(**kw):
    tuning = kw.pop("tuning", None)
    fb = kw.get("fb_scale") is not None

    def predict(tgt, t, keys):
        return fuse(tgt, t, warped_keys(tgt, keys, tuning=tuning, fb=fb), **kw)[0]
    return predict


FINE = DisTuning(finest_scale=0, patch_stride=4, gradient_descent_iterations=16,
                 variational_refinement_iterations=5)
REFINE = DisTuning(finest_scale=1, patch_stride=4, gradient_descent_iterations=16,
                   variational_refinement_iterations=20)


def _c(predict):
    return (lambda fr, n, keys, wanted: _frames_of(fr, n, keys, wanted, predict)), "blend"


CANDIDATES = {
    "oracle": _c(oracle_predict(None)),
    "sharp4": _c(fused_predict(scale=4.0)),
    "box5": _c(fused_predict(box=5)),
    "dist2": _c(fused_predict(dist_pow=2.0)),
    "fb": _c(fused_predict(fb_scale=2.0)),
    "dis_fine": _c(fused_predict(tuning=FINE)),
    "dis_refine": _c(fused_predict(tuning=REFINE)),
    "ncfill": _c(ncfill_predict()),
    "ncfill_s8": _c(ncfill_predict(sigma=8.0)),
    "ncfill_keep2": _c(ncfill_predict(keep=2.0)),
    "ncfill_avg": _c(ncfill_predict(average=True)),
    "ncfill_avg4": _c(ncfill_predict(average=True, passes=4)),
    "ncfill_perkey": _c(ncfill_predict(per_key=True)),
    "ncfill_b5s4": _c(ncfill_predict(box=5, scale=4.0)),
    "ncfill_s2": _c(ncfill_predict(sigma=2.0)),
    "ncfill_p1": _c(ncfill_predict(passes=1)),
    "ncfill_st995": _c(ncfill_predict(strength=0.995)),
}


# ---- the product (`tpn colorize --mode blend`) with a different flow part ----------------
class _LabFrame:
    """What the fusions need of a frame, from its full-resolution L (and ab)."""

    def __init__(self, L, ab=None):
        self.L = L
        self.ab = ab
        self.gray = np.clip(np.rint(L * (255.0 / 100.0)), 0, 255).astype(np.uint8)


def product_hook(flow_predict=None, share=None, per_pixel=None):
    """An adapter hook for eval_colour_split.run_product (phase 1: the product of then,
    whose flow part was the baseline's blend): the flow part of the product's
    colour (ColourAdapter.flow_prediction, mixed in at FLOW_MIX) replaced by
    ``flow_predict(target, t, keys)`` (default: the issue's baseline), mixed in at
    ``share`` (default FLOW_MIX) or per pixel at ``per_pixel(conf)`` with conf the best
    warped key's exp(−e/8)."""
    def hook(adapter):
        state = {}

        def flow_prediction(L, sources, ctx=None):
            tgt = _LabFrame(L)
            # the product now carries chroma (Cb, Cr), not ab: the candidates blend it alike
            ks = [(pk.index, _LabFrame(pk.flow_lcc[..., 0], pk.flow_lcc[..., 1:3])) for pk, _ in sources]
            if len(sources) == 2:
                (k1, w1), (k2, _) = [(pk.index, w) for pk, w in sources]
                t = round(k2 - w1 * (k2 - k1))
            else:
                t = ks[0][0] + 1  # one key: its distance does not matter
            f = flow_predict or (lambda tg, tt, kk: bc.two_key(tg, tt, kk))
            ab = f(tgt, t, ks)
            if per_pixel is not None:
                wk = warped_keys(tgt, ks)
                conf = np.maximum.reduce([np.exp(-bc.photometric_error(x[2], tgt.gray) / 8.0) for x in wk])
                state["m"] = torch.from_numpy(per_pixel(conf).astype(np.float32))[None]
            return torch.from_numpy(ab.astype(np.float32)).permute(2, 0, 1)

        def mix_flow(ab, flow_ab, s=None):
            m = state.get("m", share if share is not None else adapter.FLOW_MIX)
            return (1.0 - m) * ab + m * flow_ab

        adapter.flow_prediction = flow_prediction
        adapter.mix_flow = mix_flow
        if share is not None and not adapter.flow_mix:
            adapter.flow_mix = share
    return hook


def _p(hook):
    def run(fr, n, keys, wanted):
        import eval_colour_split as ev
        return ev.run_product(fr, n, keys, wanted, "blend", tpn=True, adapter_hook=hook)
    return run, "blend"


_NC = ncfill_predict(average=True)
CANDIDATES.update({
    "pb_base": _p(product_hook()),                       # = product:blend, through the hook
    "pb_nc03": _p(product_hook(_NC)),                    # flow part = ncfill, m 0.3
    "pb_nc05": _p(product_hook(_NC, share=0.5)),
    "pb_nc07": _p(product_hook(_NC, share=0.7)),
    "pb_conf": _p(product_hook(per_pixel=lambda c: c)),  # baseline where it fits, TPN elsewhere
    "pb_nc_conf": _p(product_hook(_NC, per_pixel=lambda c: np.maximum(c, 0.3))),
})


def _no_flow_reuse(adapter):
    """The shipped product with its own working-size alignment flow (DIS at 240 px, the
    flow colour-v1 was trained with) instead of the full-size flows shrunk."""
    adapter.alignment_flows = lambda ctx, keys: None


CANDIDATES["ship_align240"] = _p(_no_flow_reuse)
