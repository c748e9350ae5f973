"""The mask tracker of `tpn segment`: masks carried frame to frame (DAVIS protocol: only
the first frame's mask is given). Not a model: it runs the segment TPN (if any) inside a
chain of optical flow, a colour model, a per-video pixel classifier and a direct anchor to
the mask frame. Why each part is there, and what each was measured to give, is in
docs/what-we-tried.md ("Segmentation over long clips").

One step, frame t-1 → t::

    probs_t = TPN(warp(probs_{t-1}, flow_{t←t-1}), warp(rgb_{t-1}), rgb_t)

then, each switchable by a :class:`MaskPropagator` option:

* ``appearance``: where the step disagrees with the mask frame's colour model of each
  object and the near background, the probabilities are pulled back
  (:func:`colour_histograms`, :func:`appearance_fuse`);
* ``classifier``: a small per-video :class:`PixelClassifier` fitted in the mask frame (Lab
  at two scales, gradient, local contrast) multiplies the colour likelihoods; every
  ``refit`` frames it is fine-tuned on the chain's own sure pixels, mixed with the mask
  frame's samples (:meth:`PixelClassifier.refit`);
* ``anchor``: the mask frame's mask warped straight into frame t by DIS flow, mixed in
  where that flow is forward-backward consistent (:func:`anchor_confidence`);
* ``motion``: the motion-consistency fusion (:func:`motion_fuse`);
* ``specks``: pieces much smaller than their object's largest piece go to the background
  (:func:`drop_specks`);
* ``refine``: the returned probabilities (not the chained ones) are snapped to the frame's
  edges by a guided filter (:func:`guided_smooth`).

Probabilities stay soft between steps (clamped to [0, 1], renormalised over the channels,
:func:`normalise_probs`). A model trained with ``mask_guide`` also gets the warped object
probability as a 4th guidance channel of both frames. With no model and
``appearance=0,anchor=0,specks=0,refine=0``: plain flow chaining of probabilities.
Object ids and restarts from later masks are :class:`tpn_cli.chain.MaskChain`'s.

    from tpn_cli.mask_tracker import MaskPropagator
    prop = MaskPropagator(model)            # a segment TPN, or None (flow + colour model + anchor)
    prop.start(rgb0, probs0)                # (3, H, W) in [0, 1]; (K, H, W) one-hot
    for rgb in later_frames:                # in order
        probs = prop.step(rgb)              # (K, H, W); ids = probs.argmax(0)
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from . import timing
from .flow import dis_flow, require_cv2, warp
from .models.infer import guide_to_gray
from .models.tpn import TPN


def normalise_probs(u: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Clamp (K, H, W) (or (N, K, H, W)) to [0, 1] and make the channels sum to 1."""
    u = u.clamp(0.0, 1.0)
    return u / u.sum(dim=-3, keepdim=True).clamp(min=eps)


def _warp_t(t: torch.Tensor, flow: np.ndarray) -> torch.Tensor:
    """Warp a (C, H, W) tensor with a (H, W, 2) flow (see :func:`tpn_cli.flow.warp`)."""
    out = warp(t.permute(1, 2, 0).contiguous().numpy(), flow)
    return torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1)


def _colour_index(rgb: torch.Tensor, bins: int) -> torch.Tensor:
    """(3, H, W) in [0, 1] → (H, W) index of the colour's bin in a bins³ RGB histogram."""
    q = (rgb.clamp(0, 1) * 255.0).round().to(torch.int32).mul_(bins).div_(256, rounding_mode="floor")
    return ((q[0] * bins + q[1]) * bins + q[2]).long()


def _near_objects(probs: torch.Tensor, radius: int) -> torch.Tensor:
    """(H, W) bool: within ``radius`` px (square) of a pixel where an object (channels 1…)
    is above 0.5."""
    objects = (probs[1:] > 0.5).any(0).numpy().astype(np.uint8)
    k = 2 * radius + 1  # OpenCV's rectangular dilation: separable, ~50× faster than max_pool2d
    return torch.from_numpy(require_cv2().dilate(objects, np.ones((k, k), np.uint8)) > 0)


def colour_histograms(rgb: torch.Tensor, probs: torch.Tensor, bins: int = 16,
                      local: int = 0) -> torch.Tensor:
    """Per-channel colour histograms (K, bins³) of ``rgb`` (3, H, W) weighted by ``probs``
    (K, H, W), each normalised to sum 1: the appearance model of every object and the
    background. ``local`` > 0 takes the background (channel 0) only within that many
    pixels of the objects: the background the chain can actually leak into."""
    if local > 0:
        near = _near_objects(probs, local)
        if near.any():
            probs = probs.clone()
            probs[0] = probs[0] * near
    idx = _colour_index(rgb, bins).flatten()
    k = probs.shape[0]
    h = torch.zeros(k, bins ** 3, dtype=torch.float64)
    h.index_add_(1, idx, probs.reshape(k, -1).double())
    return (h / h.sum(1, keepdim=True).clamp(min=1e-12)).float()


def appearance_fuse(probs: torch.Tensor, rgb: torch.Tensor, hist: torch.Tensor, alpha: float,
                    band: int, classifier: "PixelClassifier | None" = None,
                    beta: float = 1.0, features: np.ndarray | None = None) -> torch.Tensor:
    """Bayes update p_k ∝ p_k · (h_k(colour) + ε)^α [· q_k^β] inside a ``band``-pixel ring
    around the objects (channels 1…K−1 above 0.5); pixels outside it are unchanged. q is
    ``classifier``'s class probabilities (:class:`PixelClassifier`), if given;
    ``features``: ``pixel_features(rgb)`` if the caller already has them."""
    bins = round(hist.shape[1] ** (1 / 3))
    lik = (hist[:, _colour_index(rgb, bins)] + 1e-5) ** alpha  # (K, H, W)
    near = _near_objects(probs, band)
    if classifier is not None and beta > 0:
        lik = lik * classifier.likelihood(rgb, near, features) ** beta
    post = normalise_probs(probs * lik)
    return torch.where(near[None], post, probs)


#: Short side (px) of the footage the pixel sizes below were tuned on (DAVIS 480p).
TUNED_SHORT_SIDE = 480


def _scale(shape: tuple[int, ...]) -> float:
    """How a frame of ``shape`` (..., H, W) compares with the footage the pixel sizes were
    tuned on (:data:`TUNED_SHORT_SIDE`): a window that fits a small object at 480p must
    still fit it on a small frame."""
    return min(shape[-2:]) / TUNED_SHORT_SIDE


def _scaled_px(px: float, shape: tuple[int, ...]) -> int:
    """``px`` tuned at :data:`TUNED_SHORT_SIDE` as whole pixels of a frame of ``shape``
    (at least 1; see :func:`_scale`)."""
    return max(1, round(px * min(shape[-2:]) / TUNED_SHORT_SIDE))


def pixel_features(rgb: torch.Tensor) -> np.ndarray:
    """(H, W, 9) float32 per-pixel features of a (3, H, W) frame in [0, 1] for
    :class:`PixelClassifier`: CIE-Lab (scaled to about [-1, 1]), Lab Gaussian-blurred at
    σ = 4 px (the colour of the surroundings: a red shirt on a rider against red graffiti
    on a wall), the gradient magnitude of L and L's local standard deviation in 5×5 and
    13×13 windows (texture: smooth paint or smoke against a textured object). The scales
    are px at a 480-px short side (DAVIS 480p, where they were chosen) and shrink with
    the frame, so that they stay within a small object on a small frame."""
    s = _scale(rgb.shape)
    cv = require_cv2()
    img = np.ascontiguousarray(rgb.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy())
    lab = cv.cvtColor(img, cv.COLOR_RGB2LAB) / np.array([100.0, 127.0, 127.0], np.float32)
    lum = np.ascontiguousarray(lab[..., 0])
    gx = cv.Sobel(lum, cv.CV_32F, 1, 0, ksize=3)
    gy = cv.Sobel(lum, cv.CV_32F, 0, 1, ksize=3)
    out = [lab, cv.GaussianBlur(lab, (0, 0), 4 * s), np.sqrt(gx * gx + gy * gy)[..., None]]
    for r in (2, 6):
        r = _scaled_px(r, rgb.shape)
        k = (2 * r + 1, 2 * r + 1)
        m, m2 = cv.boxFilter(lum, -1, k), cv.boxFilter(lum * lum, -1, k)
        out.append(np.sqrt(np.maximum(m2 - m * m, 0.0))[..., None])
    return np.concatenate(out, -1).astype(np.float32)


def _balanced(y: torch.Tensor, total: float) -> torch.Tensor:
    """Sample weights summing to ``total``, split equally between the classes present in
    the labels ``y``: a small object weighs as much as the large background around it."""
    classes = torch.unique(y)
    w = torch.zeros(len(y))
    for c in classes:
        m = y == c
        w[m] = total / (len(classes) * int(m.sum()))
    return w


class PixelClassifier:
    """A per-video appearance model richer than the colour histograms: a tiny MLP
    (:func:`pixel_features` → 32 → 32 → K) fitted to the mask frame's pixels in a couple
    of seconds (Adam, full batch, classes weighted equally; the background sampled within
    ``local`` px of the objects, the background the chain can leak into). Its class
    probabilities at a balanced prior act as likelihoods in :func:`appearance_fuse`.
    Deterministic: a fixed seed, the global random state untouched. Only fitted when every
    class (objects and background) has at least ``MIN_PIXELS`` pixels in the mask frame:
    on fewer (a 47-px object of a 90×160 test clip) the net memorises them, is sure of
    them in the mask frame and rejects them two frames later, and the object is lost
    (the smallest DAVIS-2016 first mask, drift-chicane's, has 2370 px)."""

    MIN_PIXELS = 400

    def __init__(self, rgb: torch.Tensor, probs: torch.Tensor, local: int = 40, hidden: int = 32,
                 samples: int = 20000, iterations: int = 300, seed: int = 0):
        # fitted with autograd even when called under no_grad / inference_mode (the CLI)
        with torch.inference_mode(False), torch.enable_grad():
            self._fit(rgb, probs, local, hidden, samples, iterations, seed)

    def _fit(self, rgb, probs, local, hidden, samples, iterations, seed) -> None:
        f = pixel_features(rgb)
        d = f.shape[-1]
        f = f.reshape(-1, d)
        ids = probs.argmax(0).numpy().reshape(-1)
        pool = np.ones_like(ids, dtype=bool)
        if local > 0:
            near = _near_objects(probs, local).numpy().reshape(-1)
            if (near & (ids == 0)).any():
                pool = near
        rng = np.random.default_rng(seed)
        xs, ys = [], []
        k = probs.shape[0]
        for c in range(k):
            idx = np.flatnonzero((ids == c) & (pool if c == 0 else True))
            if len(idx) == 0:
                continue
            idx = rng.choice(idx, min(len(idx), samples), replace=False)
            xs.append(f[idx])
            ys.append(np.full(len(idx), c))
        x = torch.from_numpy(np.concatenate(xs))
        y = torch.from_numpy(np.concatenate(ys)).long()
        w = _balanced(y, 1.0)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-4
        x = (x - self.mean) / self.std
        self.local = local
        self._x0, self._y0 = x, y  # the mask frame's samples, mixed into every refit
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(),
                                           torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                                           torch.nn.Linear(hidden, k))
        self._train(x, y, w, iterations, lr=1e-2)
        self.k = k
        self._net0 = copy.deepcopy(self.net.state_dict())

    def refit(self, rgb: torch.Tensor, probs: torch.Tensor, threshold: float = 0.97,
              margin: int = 10, mix: float = 0.1, samples: int = 10000, iterations: int = 50,
              lr: float = 3e-3, seed: int = 0, features: np.ndarray | None = None) -> bool:
        """Fine-tune the net, starting again from its mask-frame fit, on a later frame
        ``rgb`` whose predicted ``probs`` are taken as labels where they are sure (max
        probability above ``threshold``, at least ``margin`` px inside their class's
        region; the background only within ``local`` px of the objects), mixed with the
        mask frame's samples (the new frame weighs ``mix``, each class balanced within
        each frame), so the model follows the objects' appearance without drifting far
        from the annotation. Returns False (and leaves the net alone) when a class has
        fewer than ``MIN_PIXELS`` sure pixels. ``features``: ``pixel_features(rgb)`` if the
        caller already has them (the step that fused this frame did)."""
        cv = require_cv2()
        ids = probs.argmax(0).numpy()
        sure = probs.max(0).values.numpy() > threshold
        kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
        near = _near_objects(probs, self.local).numpy() if self.local > 0 else None
        f = pixel_features(rgb) if features is None else features
        f = f.reshape(-1, f.shape[-1])
        rng = np.random.default_rng(seed)
        xs, ys = [], []
        for c in range(self.k):
            m = (cv.erode((ids == c).astype(np.uint8), kernel) > 0) & sure
            if c == 0 and near is not None:
                m &= near
            idx = np.flatnonzero(m.reshape(-1))
            if len(idx) < self.MIN_PIXELS:
                return False
            xs.append(f[rng.choice(idx, min(len(idx), samples), replace=False)])
            ys.append(np.full(len(xs[-1]), c))
        # tensors made here, not under the caller's inference_mode (the CLI), or autograd refuses them
        with torch.inference_mode(False), torch.enable_grad():
            x1 = (torch.from_numpy(np.concatenate(xs)) - self.mean) / self.std
            y1 = torch.from_numpy(np.concatenate(ys)).long()
            x, y = torch.cat([self._x0, x1]), torch.cat([self._y0, y1])
            w = torch.cat([_balanced(self._y0, 1.0 - mix), _balanced(y1, mix)])
            self.net.load_state_dict(self._net0)
            self._train(x, y, w, iterations, lr)
        return True

    def _train(self, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, iterations: int, lr: float) -> None:
        """Full-batch Adam on the weighted cross-entropy of samples ``x`` with labels ``y``."""
        opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.net.train()
        for _ in range(iterations):
            opt.zero_grad()
            loss = (torch.nn.functional.cross_entropy(self.net(x), y, reduction="none") * w).sum()
            loss.backward()
            opt.step()
        self.net.eval()

    @torch.no_grad()
    def likelihood(self, rgb: torch.Tensor, where: torch.Tensor,
                   features: np.ndarray | None = None) -> torch.Tensor:
        """(K, H, W) class probabilities of ``rgb``'s pixels where ``where`` (H, W) is set
        (clamped to [1e-3, 1]), 1 elsewhere. ``features``: ``pixel_features(rgb)`` if the
        caller already has them."""
        h, w = rgb.shape[-2:]
        out = torch.ones(self.k, h * w)
        idx = torch.from_numpy(np.flatnonzero(where.numpy()))
        if len(idx):
            f = pixel_features(rgb) if features is None else features
            f = torch.from_numpy(f.reshape(h * w, -1))[idx]
            out[:, idx] = torch.softmax(self.net((f - self.mean) / self.std), 1).clamp(min=1e-3).T
        return out.reshape(self.k, h, w)


def anchor_confidence(to_key: np.ndarray, from_key: np.ndarray, sigma: float) -> torch.Tensor:
    """(H, W) in (0, 1]: forward-backward consistency of a direct flow to the mask frame.
    ``to_key`` (frame → key, as :func:`~tpn_cli.flow.dis_flow`), ``from_key`` (key →
    frame); a pixel sent to the key and back landing e px away gets exp(−e²/2σ²)."""
    back = warp(from_key, to_key)  # the key's flow, sampled where each pixel lands
    e2 = ((to_key + back) ** 2).sum(-1)
    return torch.from_numpy(np.exp(-e2 / (2.0 * sigma * sigma)).astype(np.float32))


def motion_fuse(probs: torch.Tensor, flow: np.ndarray, gamma: float, band: int,
                min_sep: float) -> torch.Tensor:
    """Motion cue: near each object (within ``band`` px), reweight the object's and the
    background's probabilities by how close each pixel's flow is to the object's median
    flow and to the nearby background's median flow (Gaussian of the distance, σ = half
    the distance between the two medians, ^ ``gamma``). Only where the two medians are
    more than ``min_sep`` px apart: a static or background-moving object is unaffected.
    Aimed at background of the object's colours (bmx-trees' red graffiti next to the
    red bike) that moves with the camera while the object does not."""
    ids = probs.argmax(0).numpy()
    f = flow.reshape(-1, 2)
    out = probs.clone()
    changed = False
    for k in range(1, probs.shape[0]):
        obj = ids == k
        if obj.sum() < 50:
            continue
        near = _near_objects(probs[[0, k]], band).numpy()
        bg = near & (ids == 0)
        if bg.sum() < 50:
            continue
        m_obj = np.median(flow[obj], 0)
        m_bg = np.median(flow[bg], 0)
        sep = float(np.linalg.norm(m_obj - m_bg))
        if sep <= min_sep:
            continue
        s2 = 2.0 * (0.5 * sep) ** 2
        d_obj = ((f - m_obj) ** 2).sum(-1).reshape(ids.shape)
        d_bg = ((f - m_bg) ** 2).sum(-1).reshape(ids.shape)
        d_min = np.minimum(d_obj, d_bg)  # ratio only matters: both relative to the nearer
        l_obj = np.exp(-gamma * (d_obj - d_min) / s2)
        l_bg = np.exp(-gamma * (d_bg - d_min) / s2)
        nt = torch.from_numpy(near)
        out[k] = torch.where(nt, out[k] * torch.from_numpy(l_obj.astype(np.float32)), out[k])
        out[0] = torch.where(nt, out[0] * torch.from_numpy(l_bg.astype(np.float32)), out[0])
        changed = True
    return normalise_probs(out) if changed else probs


def guided_smooth(probs: torch.Tensor, gray: np.ndarray, radius: int, eps: float) -> torch.Tensor:
    """Edge-aware smoothing of (K, H, W) probabilities with the frame's gray image as the
    guide (He et al.'s guided filter, square windows of ``radius``): within each window the
    output is a linear function of the guide, so a soft or slightly misplaced object edge
    moves onto the frame's own edge; ``eps`` (in (gray/255)²) is the contrast below which
    an edge of the guide is smoothed over. The filter is linear and keeps constants, so
    the background (channel 0) is 1 − Σ objects: one filter fewer than filtering it too."""
    cv = require_cv2()
    k = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv.boxFilter(x, -1, k, borderType=cv.BORDER_REFLECT)

    g = gray.astype(np.float32) / 255.0
    mean_g = box(g)
    var_g = box(g * g) - mean_g * mean_g
    objects = []
    for p in probs[1:].numpy():
        mean_p = box(p)
        a = (box(g * p) - mean_g * mean_p) / (var_g + eps)
        b = mean_p - a * mean_g
        objects.append(box(a) * g + box(b))
    fg = np.stack(objects)
    return normalise_probs(torch.from_numpy(np.concatenate([1.0 - fg.sum(0, keepdims=True), fg])))


def drop_specks(probs: torch.Tensor, fraction: float) -> torch.Tensor:
    """Hand to the background every connected piece of an object (argmax, 8-connected)
    smaller than ``fraction`` of that object's largest piece: the specks the colour model
    and the anchor leave in background of the object's colours, which the chain would
    otherwise carry and grow."""
    cv = require_cv2()
    ids = probs.argmax(0).numpy().astype(np.uint8)
    out = None
    for k in range(1, probs.shape[0]):
        n, lab, stats, _ = cv.connectedComponentsWithStats((ids == k).astype(np.uint8), connectivity=8)
        if n <= 2:
            continue
        area = stats[1:, cv.CC_STAT_AREA]
        small = np.zeros(n, bool)
        small[1:] = area < fraction * area.max()
        if not small.any():
            continue
        m = torch.from_numpy(small[lab])
        out = probs.clone() if out is None else out
        out[0][m] += out[k][m]
        out[k][m] = 0.0
    return probs if out is None else out


class MaskPropagator:
    """Frame-to-frame mask propagation with an optional TPN refinement (module docstring).

    model    a segment TPN (channelwise) or None (plain flow chaining of probabilities)
    preset   DIS preset of the frame-to-frame flow
    sharpen  exponent applied to the probabilities after each step (1 = none); > 1 pulls
             them towards 0/1 so the chain does not blur out
    appearance  α of the first frame's colour model (0 = off; α = 1 and 32 bins measured
             best of α ∈ {0.5, 1, 2, 3}, bins ∈ {16, 32}, band ∈ {8, 15, 30, 40}): each step's probabilities
             are multiplied by the objects' and background's colour likelihoods ^ α
             (:func:`appearance_fuse`), which pulls a drifting chain back onto the object
    classifier  β of the first frame's pixel classifier (:class:`PixelClassifier`, 0 = off),
             whose class probabilities ^ β multiply the colour likelihoods: Lab at two
             scales, gradient and local contrast tell apart what RGB histograms confuse
             (a rider's shirt against graffiti of its colours, smoke against a white car).
             Off with ``appearance=0`` too, and when an object or the background has
             under ``PixelClassifier.MIN_PIXELS`` px. About 2 s to fit once, 20–50 ms a
             frame at 480p.
    band     the colour model acts within this many pixels of the predicted objects
    bins     histogram bins per RGB channel of the colour model
    local    the background's colours are taken within this many pixels of the first
             frame's objects (0 = the whole background); 40 measured better than 0 and 80
    anchor   weight of the direct prediction from the mask frame (0 = off): the mask warped
             by DIS flow straight from the mask frame, mixed into the chained prediction in
             proportion to that flow's forward-backward consistency
             (:func:`anchor_confidence`). Where the direct flow holds, the chain cannot
             drift; where it fails (large motion), it weighs nothing. Costs two DIS flows a
             frame.
    anchor_sigma  px of forward-backward error at which the anchor's weight is e^-1/2
    specks   drop pieces of an object smaller than this fraction of its largest piece
             (:func:`drop_specks`; 0 = off)
    refine   radius (px at a 480-px short side, scaled with the frame) of the guided filter
             that snaps the returned probabilities to the frame's edges (:func:`guided_smooth`;
             0 = off). The radius is tuned on 480p DAVIS: unscaled, a 4-px window wipes out
             an object a few pixels wide on a small frame. Only the output is refined:
             the chain carries the unrefined probabilities (refining them too was worse).
    refine_eps  the guided filter's ε
    refit    every this many frames the pixel classifier is fine-tuned again (from its
             mask-frame fit) on the chain's sure pixels of the current frame, mixed with
             the mask frame's (:meth:`PixelClassifier.refit`; 0 = never). A 1 : 9 mix
             measured best of mix 0.1 / 0.25 / 0.5 (larger mixes lose on the training
             sequences: 0.5 → 0.717, camel −0.06, breakdance −0.04); every 5 frames
             better than every 10 (with the TPN, held-out 0.630 → 0.638) and than every 3
             (0.637); gating it on the anchor's agreement (mean weight ≥ 0.3 over the
             object) never let it run.
    motion   γ of the motion cue (:func:`motion_fuse`, 0 = off): near the object, pixels
             whose flow is closer to the nearby background's median flow than to the
             object's lose object probability (and the reverse), only where the two medians
             are over ``motion_sep`` px apart (px at a 480-px short side) so that objects
             moving with their background are unaffected. Aimed at background of the
             object's colours taken in by the chain (bmx-trees' red graffiti). Session 6,
             cached flows, with the TPN: held-out J&F 0.638 → 0.652, caps 0.385 → 0.409
             (γ 0.5 with 2 px: 0.654 but caps 0.324; docs/what-we-tried.md).
    motion_band  px around the object where the background's median flow is taken and
             the cue acts
    motion_sep  px between the two median flows below which the cue is off
    """

    def __init__(self, model: TPN | None = None, preset: str = "medium", sharpen: float = 1.0,
                 appearance: float = 1.0, classifier: float = 1.0, band: int = 15, bins: int = 32, local: int = 40,
                 anchor: float = 1.0, anchor_sigma: float = 1.0, specks: float = 0.05,
                 refine: int = 4, refine_eps: float = 1e-3, refit: int = 5,
                 motion: float = 0.5, motion_band: int = 40, motion_sep: float = 4.0):
        self.model = model
        self.preset = preset
        self.sharpen = sharpen
        self.appearance = appearance
        self.classifier = float(classifier)
        self.band = int(band)
        self.bins = int(bins)
        self.local = int(local)
        self.anchor = float(anchor)
        self.anchor_sigma = float(anchor_sigma)
        self.specks = float(specks)
        self.refine = int(refine)
        self.refine_eps = float(refine_eps)
        self.refit = int(refit)
        self.motion = float(motion)
        self.motion_band = int(motion_band)
        self.motion_sep = float(motion_sep)
        self._steps = 0
        self.hist: torch.Tensor | None = None
        self.pixel_model: PixelClassifier | None = None
        self.key_gray: np.ndarray | None = None
        self.key_probs: torch.Tensor | None = None
        self.prev_rgb: torch.Tensor | None = None
        self.prev_gray: np.ndarray | None = None
        self.probs: torch.Tensor | None = None

    def start(self, rgb: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Set the first frame (3, H, W) and its probabilities (K, H, W); returns them."""
        if rgb.shape[-2:] != probs.shape[-2:]:
            raise ValueError(f"frame {tuple(rgb.shape)} and mask {tuple(probs.shape)} sizes differ")
        self.prev_rgb = rgb.detach().float().cpu()
        self.prev_gray = guide_to_gray(self.prev_rgb)
        self.probs = normalise_probs(probs.detach().float().cpu())
        self.pixel_model = None  # a restart (tpn segment --masks) refits it or drops it
        self._steps = 0
        if self.appearance > 0:
            self.hist = colour_histograms(self.prev_rgb, self.probs, self.bins, self.local)
            counts = torch.bincount(self.probs.argmax(0).flatten(), minlength=self.probs.shape[0])
            if self.classifier > 0 and (counts >= PixelClassifier.MIN_PIXELS).all():
                self.pixel_model = PixelClassifier(self.prev_rgb, self.probs, self.local)
        self.key_gray, self.key_probs = self.prev_gray, self.probs
        return self.probs

    @torch.no_grad()
    def step(self, rgb: torch.Tensor) -> torch.Tensor:
        """Probabilities (K, H, W) of the next frame ``rgb`` (3, H, W)."""
        if self.probs is None:
            raise RuntimeError("call start() with the first frame and its mask first")
        rgb = rgb.detach().float().cpu()
        with timing.section("flow"):
            gray = guide_to_gray(rgb)
            flow = dis_flow(gray, self.prev_gray, self.preset)
            u = _warp_t(self.probs, flow)
            if self.model is not None:
                v_key, v_tgt = _warp_t(self.prev_rgb, flow), rgb
            if self.anchor > 0:  # the mask frame's own mask, straight to this frame
                to_key = dis_flow(gray, self.key_gray, self.preset)
                direct = _warp_t(self.key_probs, to_key)
                w = self.anchor * anchor_confidence(to_key, dis_flow(self.key_gray, gray, self.preset),
                                                    self.anchor_sigma)
        # the TPN (its scans counted under "scan") and the colour model count as "network"
        with timing.section("network"):
            if self.model is not None:
                if self.model.config.extra.get("mask_guide", False):
                    fg = 1.0 - u[:1]  # where any object is believed to be
                    v_key, v_tgt = torch.cat([v_key, fg]), torch.cat([v_tgt, fg])
                dev = next(self.model.parameters()).device  # the chain's state stays on the CPU
                u = self.model(u[None].to(dev), v_key[None].to(dev), v_tgt[None].to(dev))[0].float().cpu()
            u = normalise_probs(u)
            if self.anchor > 0:
                u = normalise_probs((1.0 - w) * u + w * direct)
            if self.motion > 0:
                u = motion_fuse(u, flow, self.motion, _scaled_px(self.motion_band, gray.shape),
                                self.motion_sep * _scale(gray.shape))
            feats = None
            if self.appearance > 0:
                if self.pixel_model is not None and self.classifier > 0:
                    # computed once: the fuse below and this frame's refit both need them
                    feats = pixel_features(rgb)
                u = appearance_fuse(u, rgb, self.hist, self.appearance, self.band,
                                    self.pixel_model, self.classifier, feats)
            if self.sharpen != 1.0:
                u = normalise_probs(u ** self.sharpen)
            if self.specks > 0:
                u = drop_specks(u, self.specks)
            out = u
            if self.refine > 0:
                out = guided_smooth(u, gray, _scaled_px(self.refine, gray.shape), self.refine_eps)
                if self.specks > 0:  # smoothing can leave a faint speck above 0.5
                    out = drop_specks(out, self.specks)
        self.prev_rgb, self.prev_gray, self.probs = rgb, gray, u
        self._steps += 1
        if self.refit > 0 and self.pixel_model is not None and self._steps % self.refit == 0:
            with timing.section("network"):
                self.pixel_model.refit(rgb, u, margin=_scaled_px(10, gray.shape), seed=self._steps,
                                       features=feats)
        return out


__all__ = ["MaskPropagator", "PixelClassifier", "anchor_confidence", "appearance_fuse", "colour_histograms",
           "drop_specks", "motion_fuse", "normalise_probs", "pixel_features"]
