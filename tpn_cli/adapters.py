"""Per-task conversions between pixels and the model's tensors, for
:class:`tpn_cli.propagator.KeyPropagator` and the mask chain.

Each adapter answers three questions for its task (U and V per task: :mod:`tpn_cli.models.tasks`),
with the same signatures for every task:

* ``guide(rgb, ctx=None)``: the guidance image V of a frame at the working size;
* ``prepare_key(index, key_image, video_rgb=None)``: a key-frame's property U and
  guidance V at the working size, plus what is needed to output the key-frame itself
  exactly (its own full-resolution property: a key-frame's output is the key, not a
  prediction of it);
* ``finish(rgb, u, key, ctx=None, sources=(), coverage=None)``: the (blended)
  working-size property → the full-resolution output of one frame (an RGB image, a
  radiance image or an id map); ``key`` instead of ``u`` for a key-frame's own output.

``ctx`` is a per-frame dict an adapter may fill in ``guide`` and read in ``finish``;
``sources`` (the keys behind ``u``) is given only to an adapter whose ``uses_sources``
is true, ``coverage`` only for partly painted keys (colour). ``needs_key_video_frame``:
``prepare_key`` wants the video frame at the key's index.

Tensors are float32 ``(C, h, w)`` on the run's device; images are numpy arrays as
:mod:`tpn_cli.media` reads and writes them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import camera_response, colour, fill, flow, hdr_fusion, timing
from .models import infer
from .models import tasks as mt

__all__ = ["ColourAdapter", "HdrAdapter", "PreparedKey", "SegmentAdapter", "to_float", "resize"]


def to_float(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, 3) uint8/uint16/float image → (3, H, W) float32 tensor (integers → [0, 1])."""
    image = np.ascontiguousarray(image)
    if not image.flags.writeable:  # decoded frames can be read-only views; torch wants to own
        image = image.copy()
    t = torch.from_numpy(image).to(device)
    if image.dtype == np.uint8:
        t = t.float() / 255.0
    elif image.dtype == np.uint16:
        t = t.float() / 65535.0
    else:
        t = t.float()
    return t.permute(2, 0, 1) if t.ndim == 3 else t[None]


def resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, H, W) → (C, h, w) bilinear (antialiased when shrinking); no-op at equal size."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    shrink = size[0] < t.shape[-2] or size[1] < t.shape[-1]
    return F.interpolate(t[None], size=size, mode="bilinear", align_corners=False,
                         antialias=shrink)[0]


@dataclass
class PreparedKey:
    """A key-frame ready for the model: ``u``/``v`` at the working size, ``exact`` the
    full-resolution property output for the key's own frame.

    Set by the adapter when they apply: ``alpha`` (1, h, w) where a partly painted colour
    key was painted; ``flow_lcc`` (h, w, 3 or 4) its L, chroma (Cb, Cr) (+ alpha) at the colour
    flow part's size (``ColourAdapter.FLOW_SHORT_SIDE``) and
    ``flow_gray`` its 8-bit L that the colour flow mix warps; ``u_full`` (C, H, W) the
    property at full resolution for an adapter that ``warps_keys`` itself. Set by
    :class:`tpn_cli.propagator.KeyPropagator`: ``gray`` the 8-bit guidance the alignment
    flow runs on, ``code`` the model's encoding of ``u`` (reused for every frame)."""

    index: int
    u: torch.Tensor
    v: torch.Tensor
    exact: Any
    alpha: torch.Tensor | None = None
    flow_lcc: np.ndarray | None = None
    flow_gray: np.ndarray | None = None
    u_full: np.ndarray | None = None
    gray: np.ndarray | None = None
    code: Any = None


class ColourAdapter:
    """Colour: U = ab / AB_SCALE, V = L / 100 for the network; the output is the frame's own
    luma Y′ with a chroma (Cb, Cr) (:mod:`tpn_cli.colour.chroma`: what the flow part carries
    and a key's ``exact`` holds; the network's ab, up-sampled guided by L unless
    ``chroma_upsample="bilinear"``, is converted to it).

    Key-frames with partial colour: a key image with a fourth (alpha) channel was painted
    only where alpha > 0. It is laid over the video frame at its index
    (``needs_key_video_frame``, set by the run when a key is partial), so the key holds
    the frame's own luma everywhere and its own colour (gray for a black-and-white film)
    where it is unpainted; its alpha at the working size goes in ``PreparedKey.alpha`` for
    the propagator to move with the key and weigh the blend by
    (:func:`tpn_cli.models.infer.paint_weights`). ``finish`` then keeps the frame's own
    colour (gray for a black-and-white film) where no key's paint reaches (``coverage``).

    A frame's L is the lightness of its luma (:func:`tpn_cli.colour.luma_lightness_image`:
    its own L when it is black and white; for a colour video, what its black-and-white
    version shows, so that keys and frames compare alike), and a key's flow part L likewise.
    It is computed once at full resolution (a table lookup) and shared by ``guide``, the
    flow part (its flows, fits and fill run on L) and ``finish`` through the engine's
    per-frame ``ctx``. At a working size below the
    frame's, L and the key-frame's Lab are shrunk (antialiased bilinear) to it.
    """

    task = "colour"
    #: Default working short side. Chroma is smooth and the ab comes back to full size
    #: guided by the full-resolution L, so 240 scores as 480 at a third of the time
    #: (docs/what-we-tried.md, "Numbers behind the defaults").
    default_work_size = 240
    needs_key_video_frame = False  # the key image carries its own L
    #: Share of the flow part in a flow-aligned model's colour: (1 − m)·TPN + m·flow,
    #: flow = :meth:`flow_prediction` (both neighbouring keys warped by DIS at full size,
    #: up to :data:`FLOW_SHORT_SIDE`, blended by their fit, the unfit pixels filled
    #: edge-aware); m measured
    #: in docs/what-we-tried.md, "Issue 19 (colour)". Set on the adapter by ``tpn colorize``:
    #: this with a flow-aligned model (the default), 1 without a model (``--no-tpn``: the
    #: flow part alone), 0 for a model that does not align (the TPN alone, no full-size flow).
    FLOW_MIX = 0.5
    #: The flow part's per-key fit, the issue-19 baseline's: exp(−e / FIT_SCALE), e the
    #: FIT_BOX × FIT_BOX mean of |warped key L − frame L| in 8-bit L; two keys weighted by
    #: fit / (|t − k| + 1).
    FIT_BOX, FIT_SCALE = 9, 8.0

    def __init__(self, work: tuple[int, int], device: torch.device | str,
                 chroma_upsample: str = "guided", flow_mix: float = 0.0,
                 partial_keys: bool = False) -> None:
        self.work, self.device = work, device  # work = (h, w)
        self.chroma_upsample = chroma_upsample  # a colour.CHROMA_UPSAMPLE method
        self.flow_mix = flow_mix
        # a partly painted key is laid over its video frame (see the class doc)
        self.needs_key_video_frame = partial_keys
        self._previous: _Previous | None = None  # the last frame chained (RECURSIVE_SHARE)
        self._last_prepared: tuple | None = None  # (index, ctx, key ids): prepare_flows

    @property
    def uses_sources(self) -> bool:
        """Whether finish() wants the key-frames behind a prediction (for its flow part)."""
        return self.flow_mix > 0

    @staticmethod
    def mix_flow(cc: torch.Tensor, flow_cc: torch.Tensor, share: float = FLOW_MIX) -> torch.Tensor:
        """A flow-aligned model's chroma with the flow part's mixed in (:data:`FLOW_MIX`)."""
        return (1.0 - share) * cc + share * flow_cc

    @staticmethod
    def _full_L(rgb: np.ndarray, ctx: dict | None) -> np.ndarray:
        if ctx is not None and "L" in ctx:
            return ctx["L"]
        L = colour.luma_lightness_image(rgb)
        if ctx is not None:
            ctx["L"] = L
        return L

    def guide(self, rgb: np.ndarray, ctx: dict | None = None) -> torch.Tensor:
        L = resize(torch.from_numpy(self._full_L(rgb, ctx)).to(self.device)[None], self.work)
        if ctx is not None:
            ctx["L_small"] = L  # finish() fits the chroma up-sampling on it
        return mt.colour_guide(L)

    def _key_pixels(self, key_image: np.ndarray,
                    video_rgb: np.ndarray | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A key image as (3, H, W) RGB in [0, 1] and its alpha (1, H, W) (None: fully
        painted). A partly painted key (RGBA) is laid over the video frame at its index."""
        if key_image.shape[-1] != 4:
            return to_float(key_image, self.device), None
        if video_rgb is None:
            raise ValueError("a partly painted (RGBA) key-frame needs the video frame at its "
                             "index: create the adapter with partial_keys=True")
        rgba = to_float(key_image, self.device)
        alpha = rgba[3:]
        return alpha * rgba[:3] + (1.0 - alpha) * to_float(video_rgb, self.device), alpha

    def prepare_key(self, index: int, key_image: np.ndarray,
                    video_rgb: np.ndarray | None = None) -> PreparedKey:
        """``key_image``: RGB, or RGBA for a partly painted key (then ``video_rgb``, the
        video frame at ``index``, fills the unpainted pixels)."""
        full, alpha = self._key_pixels(key_image, video_rgb)
        L = colour.luma_lightness(full)  # as a frame's (see the class doc)
        cc = colour.chroma(full)
        lab, lcc = torch.cat([L, colour.rgb_to_lab(full)[1:]]), torch.cat([L, cc])
        if alpha is not None:  # what is propagated: a partial key's paint reaches a bit further
            radius = round(self.PAINT_EXTEND * lab.shape[-2] / self.work[0])  # at full size
            lab, lcc = self._extend_paint(lab, alpha, radius), self._extend_paint(lcc, alpha, radius)
        lab_small = resize(lab, self.work)  # as guide() shrinks L: the same L for both
        key = PreparedKey(index, mt.colour_prop(lab_small[1:]), mt.colour_guide(lab_small[:1]), exact=cc)
        if alpha is not None:
            key.alpha = resize(alpha, self.work)
        if self.flow_mix:  # what the flow part of finish() warps (the alpha with it)
            lcc = lcc if alpha is None else torch.cat([lcc, alpha])
            lcc = resize(lcc, self._flow_size(lcc.shape))
            key.flow_lcc = np.ascontiguousarray(lcc.permute(1, 2, 0).cpu().numpy())  # warps 1.5× faster
            key.flow_gray = infer.guide_to_gray(mt.colour_guide(lcc[:1]))
        return key

    #: A partly painted key's colour is extended this many working-size pixels past its
    #: alpha edge before propagation (the alpha itself is not): motion that brings unpainted
    #: pixels into the painted region then brings paint, not gray, and the coverage step
    #: still cuts the colour where the moved alpha ends (docs/what-we-tried.md, "Numbers behind the defaults").
    PAINT_EXTEND = 4

    @staticmethod
    def _extend_paint(lab: torch.Tensor, alpha: torch.Tensor, radius: int) -> torch.Tensor:
        """``lab`` (3, H, W: L and two colour channels, ab or chroma) with its colour beyond
        the paint (``alpha``, (1, H, W)) replaced, up to ``radius`` px from it, by the
        alpha-weighted mean of the paint around."""
        if radius <= 0:
            return lab
        k = 2 * radius + 1
        num = F.avg_pool2d((alpha * lab[1:])[None], k, stride=1, padding=radius, count_include_pad=False)[0]
        den = F.avg_pool2d(alpha[None], k, stride=1, padding=radius, count_include_pad=False)[0]
        near = torch.where(den > 1e-3, num / den.clamp(min=1e-3), lab[1:])  # paint within reach
        return torch.cat([lab[:1], alpha * lab[1:] + (1.0 - alpha) * near])

    def finish(self, rgb: np.ndarray, u: torch.Tensor | None, key: PreparedKey | None,
               ctx: dict | None = None,
               sources: Sequence[tuple[PreparedKey, float]] = (),
               coverage: torch.Tensor | None = None) -> np.ndarray:
        """``sources``: the key-frames behind ``u`` with their distance weights (for the
        flow part, :data:`FLOW_MIX`). ``coverage`` (1, h, w) at the working size: where
        partly painted keys' paint reached (:func:`tpn_cli.models.infer.paint_coverage`);
        elsewhere the frame keeps its own colour (:meth:`keep_own_colour`)."""
        L = self._full_L(rgb, ctx)
        if key is not None:  # the frame is a key-frame: its own colour, at full resolution
            cc = key.exact
        else:
            flow_only = self.uses_sources and sources and self.flow_mix >= 1.0
            cc = None if flow_only else self._network_chroma(L, u, ctx)
            if self.uses_sources and sources:
                flow_cc = self.flow_prediction(L, sources, ctx).to(self.device)
                cc = flow_cc if cc is None else self.mix_flow(cc, flow_cc, self.flow_mix)
            if coverage is not None:
                cc = self.keep_own_colour(cc, rgb, coverage)
        # the readers give uint8/uint16; a float frame (library use) comes back as 8-bit
        dtype = rgb.dtype if rgb.dtype in (np.uint8, np.uint16) else np.dtype(np.uint8)
        return colour.chroma_image_to_rgb(colour.luma_image(rgb), cc.permute(1, 2, 0).cpu().numpy(), dtype)

    def _network_chroma(self, L: np.ndarray, u: torch.Tensor, ctx: dict | None) -> torch.Tensor:
        """The network's colour (its ab at the working size, enlarged to the frame guided by
        L) as chroma (2, H, W)."""
        ab = colour.upsample_chroma(mt.colour_unprop(u), torch.from_numpy(L).to(self.device)[None],
                                    (ctx or {}).get("L_small"), method=self.chroma_upsample)
        cc = colour.lab_image_to_chroma(L, ab.permute(1, 2, 0).cpu().numpy())
        return torch.from_numpy(cc).permute(2, 0, 1).to(self.device)

    #: The paint counts fully where at least 1 / COVERAGE_GAIN of it landed (the moved
    #: alpha ≥ 0.5) (docs/what-we-tried.md, "Numbers behind the defaults").
    COVERAGE_GAIN = 2.0

    @classmethod
    def keep_own_colour(cls, cc: torch.Tensor, rgb: np.ndarray, coverage: torch.Tensor | float) -> torch.Tensor:
        """Chroma ``cc`` (2, H, W) where the keys' paint reached (``coverage``, 1 inside; at
        the working size, enlarged), the frame's own chroma elsewhere (0 for a
        black-and-white frame): a partly painted key does not invent colour where it gave none."""
        if not torch.is_tensor(coverage):
            return cc
        c = resize(coverage.to(cc.device), tuple(cc.shape[-2:]))
        c = (cls.COVERAGE_GAIN * c).clamp(0.0, 1.0)
        own = torch.from_numpy(colour.chroma_image(rgb)).permute(2, 0, 1).to(cc.device)
        return c * cc + (1.0 - c) * own

    #: The flow part (its warps, blends, chains and fill) runs at most at this short side
    #: (its flows are computed at 480, :data:`tpn_cli.flow.BASELINE_SHORT_SIDE`), and its
    #: chroma is enlarged to the frame guided by the frame's full-resolution L
    #: (:func:`tpn_cli.colour.upsample_chroma`). At 1080p: 7.7 s and 3.1 GB against 11.3 s
    #: and 4.6 GB for 30 frames at full size, −0.05 dB; at 480 it was 5.2 s and 1.9 GB but
    #: −0.19 dB (and −0.17 dB at 720p), so video up to 720p keeps its full size
    #: (docs/what-we-tried.md, "Colour: the flow part's work in the background").
    FLOW_SHORT_SIDE = 720

    def _flow_size(self, shape: Sequence[int]) -> tuple[int, int]:
        """(h, w) of the flow part for a frame of ``shape`` (…, H, W): :data:`FLOW_SHORT_SIDE`,
        rounded as :func:`tpn_cli.flow.baseline_flow` rounds (its flows then come at that size)."""
        return flow.capped_size(*shape[-2:], self.FLOW_SHORT_SIDE)

    def _flow_L(self, ctx: dict) -> np.ndarray:
        """The frame's L (from ctx's full-size L) at :meth:`_flow_size`, kept in ``ctx``."""
        if "L_flow" not in ctx:
            L, size = ctx["L"], self._flow_size(ctx["L"].shape)
            ctx["L_flow"] = L if size == L.shape else resize(torch.from_numpy(L)[None], size)[0].numpy()
        return ctx["L_flow"]

    def _gray(self, ctx: dict) -> np.ndarray:
        """The frame's 8-bit L (h, w) uint8 at the flow part's size: what its flows run on."""
        if "gray" not in ctx:
            ctx["gray"] = np.clip(np.rint(self._flow_L(ctx) * (255.0 / 100.0)), 0, 255).astype(np.uint8)
        return ctx["gray"]

    def frame_flows(self, ctx: dict, keys: Sequence[PreparedKey]) -> list[np.ndarray]:
        """Flows (h, w, 2) from the frame (its L in ``ctx``, set by :meth:`guide`) to each
        of ``keys`` at the flow part's size (:meth:`_flow_size`; computed by
        :func:`tpn_cli.flow.baseline_flow` at most at 480 short side, :data:`KEY_FLOW`).
        Computed once per frame and key and kept in ``ctx``: the flow part warps the keys'
        colour with them (and the alignment may reuse them, :data:`ALIGN_WITH_FULL_FLOW`)."""
        return self._flows(ctx, [(k.index, k.flow_gray) for k in keys])

    #: The flow part's DIS settings. To a key-frame: MEDIUM without its variational
    #: refinement and with patches every 4 px instead of 3 (2.8× faster than MEDIUM: 17
    #: against 29 ms without the refinement alone; on the tuning clips with both chains
    #: −0.07 / −0.05 dB at K = 10 / 40 against stride 3, the price of not being slower
    #: than the two-key baseline; FAST or a coarser finest level −0.2 to −0.3 dB). To the
    #: frames before and after (small motion): ULTRAFAST. docs/what-we-tried.md, "Colour:
    #: the previous frame as a candidate" and "Colour: the next key-frame carried back".
    KEY_FLOW = ("medium", flow.DisTuning(finest_scale=1, patch_stride=4, gradient_descent_iterations=25,
                                         variational_refinement_iterations=0))
    PREVIOUS_FLOW = ("ultrafast", None)

    def _flows(self, ctx: dict, images: Sequence[tuple[Any, np.ndarray]]) -> list[np.ndarray]:
        """Flows from the frame to each of ``images`` [(key index, "previous" or "next",
        8-bit gray)] (:data:`KEY_FLOW`, :data:`PREVIOUS_FLOW`), kept in ``ctx`` by id. Several
        run in two threads (OpenCV releases the GIL; one DIS uses one core for a large
        part of its time)."""
        cache = ctx.setdefault("flows", {})
        todo = [(i, g) for i, g in images if i not in cache]
        if todo:
            gray = self._gray(ctx)

            def one(image: tuple[Any, np.ndarray]) -> np.ndarray:
                preset, tuning = self.PREVIOUS_FLOW if image[0] in ("previous", "next") else self.KEY_FLOW
                return flow.baseline_flow(gray, image[1], preset, tuning=tuning)
            with timing.section("flow"):
                flows = [one(todo[0])] if len(todo) == 1 else list(_pool("flow").map(one, todo))
            cache.update(zip([i for i, _ in todo], flows))
        return [cache[i] for i, _ in images]

    #: Align the keys for the TPN with the full-size flows of the flow part, shrunk (one
    #: DIS per key and frame instead of two: −15 % CPU a frame), instead of DIS at the
    #: working size (the flow colour-v1 was trained with). Off: it cost 0.39 dB on the
    #: held-out tennis clip at K = 40 (small moving people; 30.79 against 31.18 dB), and
    #: 0.06 dB on average in an earlier session (docs/what-we-tried.md, "Issue 19 (colour)").
    ALIGN_WITH_FULL_FLOW = False

    def alignment_flows(self, ctx: dict, keys: Sequence[PreparedKey]) -> list[np.ndarray] | None:
        """The flows that align ``keys`` to the frame at the working size when
        :data:`ALIGN_WITH_FULL_FLOW`: the full-size :meth:`frame_flows` shrunk; else None
        (the propagator computes its own at the working size)."""
        if not (self.flow_mix and self.ALIGN_WITH_FULL_FLOW):
            return None
        return [flow.resize_flow(f, self.work) for f in self.frame_flows(ctx, keys)]

    @classmethod
    def key_fit(cls, warped_L: np.ndarray, gray: np.ndarray) -> torch.Tensor:
        """(1, H, W) fit in (0, 1] of a key warped into a frame: exp(−e / :data:`FIT_SCALE`),
        e the :data:`FIT_BOX` box mean of |warped key L (H, W, 0..100) × 2.55 − the
        frame's 8-bit L ``gray`` (H, W)|."""
        cv = flow.require_cv2()
        d = np.abs(np.asarray(warped_L, np.float32) * np.float32(255.0 / 100.0) - gray.astype(np.float32))
        e = cv.blur(d, (cls.FIT_BOX, cls.FIT_BOX), borderType=cv.BORDER_REPLICATE)
        return torch.from_numpy(np.exp(-e / np.float32(cls.FIT_SCALE)))[None]

    #: The colour of the frame before (its keys and the frame before it: :meth:`chain`),
    #: moved into the frame by their flow, joins the keys as a candidate of the flow part
    #: with weight RECURSIVE_SHARE × its fit (a key's is fit / (|t − k| + 1)), and its fit
    #: counts in the fill's confidence: colour carried frame to
    #: frame follows motion that one long flow to a key misses, and reaches where the keys'
    #: views are occluded. On the tuning clips +0.42 / +1.81 dB at K = 10 / 40 over the flow
    #: part without it, warping error halved; 0.25 scored alike on average with lower worst
    #: clips, 0.5 and 1 lower (docs/what-we-tried.md, "Colour: the previous frame as a candidate").
    RECURSIVE_SHARE = 0.15

    @staticmethod
    def _feeding(sources: Sequence[tuple[PreparedKey, float]]) -> list[PreparedKey]:
        """The keys the flow part warps: the distance weights of the flow part are the
        baseline's, not the plan's, but a key the plan gives no weight feeds nothing."""
        return [k for k, w in sources if w > 0] or [k for k, _ in sources]

    def prepare_flows(self, ctx: dict, sources: Sequence[tuple[PreparedKey, float]]) -> None:
        """Start the part of a frame's flow part that needs only the input frames, in a
        background thread (two frames at a time): its flows to its keys and to the frame
        prepared just before it (and that frame's flow to it, for the backward pass), and
        the keys' part of its blend (:meth:`_key_part`, which waits for it). Called in the
        engine's prepare stage, so that this runs while the later stages finish the frames
        before; what is missing later is computed where it is needed."""
        if not self.uses_sources or ctx.get("index") is None:
            return
        keys, t = self._feeding(sources), ctx["index"]
        ids = {k.index for k in keys}
        images = [(k.index, k.flow_gray) for k in keys]
        last, before = self._last_prepared, None
        if self._chains and last is not None and last[0] == t - 1:
            images.append(("previous", self._gray(last[1])))
            if self.AHEAD_SHARE > 0 and last[2] & ids and max(ids) > t:  # carried back into it
                before = last[1]
        self._last_prepared = (t, ctx, ids)

        def work() -> None:
            self._flows(ctx, images)
            if before is not None:
                self._flows(before, [("next", self._gray(ctx))])
            self._blend_keys(ctx, keys)
        ctx["preparing"] = _pool("prepare").submit(work)

    @property
    def _chains(self) -> bool:
        """Whether colour is carried frame to frame (:meth:`chain`, :data:`RECURSIVE_SHARE`;
        not with partly painted keys, whose paint the coverage step cuts after the flow part)."""
        return self.RECURSIVE_SHARE > 0 and not self.needs_key_video_frame

    def _previous_view(self, t: int | None, keys: Sequence[PreparedKey]) -> "_Previous | None":
        """The frame before ``t`` when it was the last one chained and shares a key with
        it (not across a shot cut); else None."""
        p = self._previous
        if p is None or t is None or p.index != t - 1:
            return None
        return p if p.sources & {k.index for k in keys} else None

    def _remember(self, index: int | None, sources: frozenset, L: np.ndarray, gray: np.ndarray,
                  cc: torch.Tensor) -> None:
        """Keep a chained frame's L, its 8-bit ``gray`` and forward chroma ``cc`` (2, H, W)
        for the next frame's flow part."""
        self._previous = None
        if index is None or not self._chains:
            return
        self._previous = _Previous(index, sources, gray, _lcc(L, cc))

    #: The colour carried back from the next key-frame (:meth:`chain`) joins the
    #: flow part as one more candidate, weight AHEAD_SHARE × its fit: the mirror of
    #: :data:`RECURSIVE_SHARE`, so that a frame sees colour carried frame to frame from
    #: both of its keys. On the tuning clips +1.10 / +2.48 dB over the two-key baseline at
    #: K = 10 / 40 against +0.89 / +2.34 with the forward chain alone (key flows at patch
    #: stride 3; +1.03 / +2.43 at the stride 4 of :data:`KEY_FLOW`), warping error lower;
    #: 0.25 (both shares) +0.04 / +0.12 more, within noise; 0.4 no better; the forward
    #: chain carrying the output (the backward colour then counts twice) +0.99 / +2.23
    #: (docs/what-we-tried.md, "Colour: the next key-frame carried back").
    AHEAD_SHARE = 0.15
    #: The backward pass holds the frames between two key-frames (image, L, flows and
    #: blends, ~40–50 bytes a pixel, and the frame loop holds two such batches at a time):
    #: at most AHEAD_FRAMES frames and AHEAD_PIXELS pixels in all (48 frames at 854×480, 9
    #: at 1920×1080); frames further from the next key get the forward chain only. Peak
    #: memory at 854×480: 1.6 GB with a key every 20 frames, 2.4 GB every 40 (0.74 GB
    #: without the backward pass).
    AHEAD_FRAMES, AHEAD_PIXELS = 48, 48 * 854 * 480

    def ahead_frames(self, height: int, width: int) -> int:
        """How many frames of a ``width`` × ``height`` video the frame loop hands to
        :meth:`chain` at once (0: no backward pass; partly painted keys do not chain)."""
        if not (self.uses_sources and self._chains) or self.AHEAD_SHARE <= 0:
            return 0
        return max(2, min(self.AHEAD_FRAMES, self.AHEAD_PIXELS // max(1, height * width)))

    #: Next to a key-frame the output meets that key without a step: a carried candidate
    #: counts fully only from KEY_RAMP frames before the key it runs into (the forward
    #: pass's before the next key, the backward pass's after the previous key), a third at 1
    #: frame. Colour carried from the other side at full weight beside the key made the
    #: output change more where the feeding key changes than elsewhere; on the tuning clips
    #: at K = 10 / 20 / 40 the warping error there 0.413 / 0.402 / 0.376 → 0.384 / 0.373 /
    #: 0.349 (elsewhere 0.38–0.40), PSNR −0.02 / −0.01 / −0.00 dB; 2 frames left the jump
    #: at K = 10, 5 cost 0.04 dB (docs/what-we-tried.md, "Colour: chroma carried as video chroma").
    KEY_RAMP = 3

    @classmethod
    def _toward_key(cls, distances: Sequence[int]) -> float:
        """The share factor of a candidate carried toward the keys at ``distances`` (frames
        ahead of it in its direction; none > 0: no key ahead, 1)."""
        ahead = [d for d in distances if d > 0]
        return min(1.0, min(ahead) / cls.KEY_RAMP) if ahead and cls.KEY_RAMP > 0 else 1.0

    def chain(self, frames: Sequence[tuple]) -> None:
        """The colour carried frame to frame, over consecutive frames [(index, image, ctx,
        sources, own key)] (ctx None and the own key for a key-frame; the frame loop's
        batch, which ends before a key-frame): backwards from the last frame that has a
        later key (:data:`AHEAD_SHARE`) and, side by side, forwards from the frame chained
        last (:data:`RECURSIVE_SHARE`). Each frame's flow part (the keys and the neighbour's
        colour carried in) is carried into the next neighbour, unfilled; both passes'
        candidates wait in ``ctx["carried"]`` for :meth:`flow_prediction`. A shot cut, a gap or a
        frame without a later key stops a chain. Called in the engine's output stage before
        the frames are output, each on its own."""
        if not (self.uses_sources and self._chains):
            return
        between = [(ctx, self._feeding(sources)) for _, _, ctx, sources, own in frames if own is None]
        for ctx, keys in between:  # the keys' part, which both passes read, ready first
            self._key_part(ctx, keys)
        # the two passes, independent of each other, side by side
        back = _pool("chain").submit(self._carry_back, frames) if self.AHEAD_SHARE > 0 else None
        forward = self._carry_forward(frames)
        ahead = back.result() if back is not None else {}
        for ctx, _ in between:  # the output's blend: both chains' candidates
            ctx["carried"] = forward.get(ctx["index"], []) + ahead.get(ctx["index"], [])

    def _carry_forward(self, frames: Sequence[tuple]) -> dict:
        """:meth:`chain`'s forward pass: {frame index: [the colour of the frame before it
        carried in]}. Each frame carries its own direction on (the colour from the next
        key carried forward would count again), unfilled (the fill is for the output:
        filled colour carried on would be trusted as measured)."""
        out: dict = {}
        for index, image, ctx, sources, own in frames:
            if own is not None:  # a key-frame: its own colour on the video frame's L
                at = {"L": colour.luma_lightness_image(image)}
                cc = resize(own.exact, self._flow_size(own.exact.shape))
                self._remember(index, frozenset([index]), self._flow_L(at), self._gray(at), cc)
                continue
            keys = self._feeding(sources)
            prev = self._previous_view(index, keys)
            share = self.RECURSIVE_SHARE * self._toward_key([k.index - index for k in keys])
            out[index] = [self._carried(ctx, prev, "previous", share)] if prev else []
            cc, _ = self._blend(ctx, keys, out[index])
            self._remember(index, frozenset(k.index for k in keys), self._flow_L(ctx), self._gray(ctx), cc)
        return out

    def _carry_back(self, frames: Sequence[tuple]) -> dict:
        """:meth:`chain`'s backward pass: {frame index: [the colour of the frame after it
        carried in]}, from the next key-frame itself (the frame just before it takes the
        key's colour carried back one frame, as the frame just after a key takes it forward:
        tuning clips +0.01 dB, warping error where the key changes 0.373 → 0.366 at K = 20)."""
        ctxs = [(ctx, sources) for _, _, ctx, sources, _ in frames]
        out: dict = {}
        later: _Previous | None = None
        for ctx, sources in reversed(ctxs):
            if ctx is None:
                later = None
                continue
            keys, t = self._feeding(sources), ctx["index"]
            ids = frozenset(k.index for k in keys)
            if later is not None and (later.index != t + 1 or not later.sources & ids):
                later = None
            if later is None and max(ids) <= t:  # nothing later to carry back from
                continue
            if later is None and max(ids) == t + 1:  # the next key itself, as the forward pass
                key = next(k for k in keys if k.index == t + 1)  # starts from its key
                later = _Previous(key.index, frozenset([key.index]), key.flow_gray,
                                  np.ascontiguousarray(key.flow_lcc[..., :3]))
            share = self.AHEAD_SHARE * self._toward_key([t - k.index for k in keys])
            out[t] = [self._carried(ctx, later, "next", share)] if later else []
            cc, _ = self._blend(ctx, keys, out[t])
            later = _Previous(t, ids, self._gray(ctx), _lcc(self._flow_L(ctx), cc))
        return out

    def flow_prediction(self, L: np.ndarray, sources: Sequence[tuple[PreparedKey, float]],
                        ctx: dict | None = None) -> torch.Tensor:
        """The flow part's chroma (2, H, W) for a frame of lightness ``L`` (H, W): each key's
        L and chroma (+ paint alpha) warped by :meth:`frame_flows`; the keys weighted per
        pixel by their fit (:data:`FIT_SCALE`) / (|t − k| + 1) (t = ``ctx["index"]``;
        without it, by fit alone) and by their warped alpha when partly painted
        (:func:`tpn_cli.models.infer.paint_weights`); with the neighbours' colour that
        :meth:`chain` carried in, when it ran; the pixels no candidate fits filled from the
        fitting ones around (:func:`tpn_cli.fill.fill_unfit`, confidence = the best fit).
        One key alone: that key, filled the same way. All at :data:`FLOW_SHORT_SIDE`, the
        chroma then enlarged to L's size guided by L."""
        ctx = {"L": L} if ctx is None else ctx
        ctx.setdefault("L", L)
        cc, best = self._blend(ctx, self._feeding(sources), ctx.get("carried", []))
        small = self._flow_L(ctx)
        with timing.section("scan"):
            cc = fill.fill_unfit(cc, best[0], torch.from_numpy(np.ascontiguousarray(small)))
        if small.shape == L.shape:
            return cc
        with timing.section("colour"):
            return colour.upsample_chroma(cc, torch.from_numpy(np.ascontiguousarray(L))[None],
                                          torch.from_numpy(small)[None], method=self.chroma_upsample)

    def _carried(self, ctx: dict, frame: "_Previous", flow_id: str, share: float) -> tuple:
        """An earlier or later frame's colour as a candidate of this frame's flow part:
        its L and chroma warped by the flow ``flow_id`` ("previous" or "next") → (chroma
        (2, H, W), ``share``, fit (1, H, W)): its weight is ``share`` × fit (held as the two,
        and the chroma apart from the warped L, since the frame keeps it until it is output)."""
        f = self._flows(ctx, [(flow_id, frame.gray)])[0]
        ctx["flows"].pop(flow_id)  # used once: the held frames keep less
        with timing.section("flow"):
            lcc = flow.warp(frame.lcc, f)
            fit = self.key_fit(lcc[..., 0], self._gray(ctx))
        return torch.from_numpy(lcc[..., 1:]).permute(2, 0, 1).contiguous(), share, fit

    def _key_part(self, ctx: dict, keys: Sequence[PreparedKey]) -> tuple:
        """The keys' share of the flow part's blend (:meth:`flow_prediction`): (Σ w·chroma,
        Σ w, best fit, the single key's chroma when one key feeds the frame, else None), kept in
        ``ctx`` (the backward and forward passes both use it); made in the background by
        :meth:`prepare_flows` when it ran (waited for here)."""
        job = ctx.pop("preparing", None)
        if job is not None:
            job.result()
        return ctx["key_part"] if "key_part" in ctx else self._blend_keys(ctx, keys)

    def _blend_keys(self, ctx: dict, keys: Sequence[PreparedKey]) -> tuple:
        """:meth:`_key_part` made: the keys warped and weighed; their flows are dropped."""
        t = ctx.get("index")
        flows = self._flows(ctx, [(k.index, k.flow_gray) for k in keys])
        gray = self._gray(ctx)
        with timing.section("flow"):
            warped = [flow.warp(k.flow_lcc, f) for k, f in zip(keys, flows)]  # (H, W, 3[+1]) L, chroma(+alpha)
            fits = [self.key_fit(x[..., 0], gray) for x in warped]
        warped_t = [torch.from_numpy(x).permute(2, 0, 1) for x in warped]
        with timing.section("colour"):
            raw = [c / (abs(t - k.index) + 1.0 if t is not None else 1.0) for c, k in zip(fits, keys)]
            alphas = [x[3:] if x.shape[0] > 3 else None for x in warped_t]
            if any(a is not None for a in alphas):
                raw = infer.paint_weights(raw, alphas)  # normalises
            num = sum(r * x[1:3] for r, x in zip(raw, warped_t))
            part = (num, sum(raw), torch.stack(fits).amax(0), warped_t[0][1:3] if len(keys) == 1 else None)
        for k in keys:
            ctx["flows"].pop(k.index, None)
        ctx["key_part"] = part
        return part

    @staticmethod
    def _with(part: tuple, carried: Sequence[tuple]) -> tuple:
        """A blend ``part`` (:meth:`_key_part`) with the ``carried`` candidates [(chroma,
        share, fit)] of :meth:`_carried` added (weight share × fit)."""
        if not carried:
            return part
        num, den, best, _ = part
        with timing.section("colour"):
            for cc, share, fit in carried:
                w = share * fit
                num, den, best = num + w * cc, den + w, torch.maximum(best, fit)
        return num, den, best, None

    def _blend(self, ctx: dict, keys: Sequence[PreparedKey], carried: Sequence[tuple]) -> tuple:
        """The frame's keys' part (:meth:`_key_part`) with the ``carried`` candidates
        (:meth:`_with`) → (chroma (2, h, w), best fit (1, h, w)), unfilled."""
        num, den, best, single = self._with(self._key_part(ctx, keys), carried)
        return (single if single is not None else num / den.clamp(min=1e-12)), best


@dataclass
class _Previous:
    """A chained frame as a neighbour's flow part uses it (the frame before, or in the
    backward pass the frame after)."""
    index: int
    sources: frozenset
    gray: np.ndarray  # (H, W) uint8, what the flow runs on
    lcc: np.ndarray   # (H, W, 3) float32: its L and the chroma it carries


def _lcc(L: np.ndarray, cc: torch.Tensor) -> np.ndarray:
    """(H, W, 3) float32 of a frame's L (H, W) and a chroma (2, H, W), as the flow warps it."""
    cv = flow.require_cv2()
    return cv.merge([np.asarray(L, np.float32), *(c.cpu().numpy().astype(np.float32, copy=False) for c in cc)])


_POOLS: dict = {}


def _pool(name: str):
    """Two threads (made when first needed): "prepare" for the frames' background work
    (:meth:`ColourAdapter.prepare_flows`), "flow" for the flows of one frame, "chain" for
    :meth:`ColourAdapter.chain`'s backward pass (each its own, so that no task waits for
    a thread held by a task that waits for it)."""
    if name not in _POOLS:
        from concurrent.futures import ThreadPoolExecutor
        _POOLS[name] = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"tpn-{name}")
    return _POOLS[name]


class HdrAdapter:
    """HDR: U = log(H + 0.01), V = LDR RGB; the output of a frame fuses, per channel, the
    frame's own LDR inverted with the camera response f⁻¹ and the radiance of each of its
    key-frames (:func:`tpn_cli.hdr_fusion.fuse_keys`): f⁻¹ where the channel is
    well exposed, the keys where it clips, each weighted by its measured error.

    ``response`` is f⁻¹ (:mod:`tpn_cli.camera_response`) with its per-level variance:
    the generic curve by default; ``tpn hdr`` sets the one fitted to the clip's key-frames
    before any frame is finished.
    """

    task = "hdr"
    default_work_size = 480  # smaller sizes not measured for this task
    needs_key_video_frame = True  # guidance of a key = the LDR video frame at its index
    uses_sources = False
    #: ``finish`` takes each key's map separately (``key_maps``), not their blend, and the
    #: keys are flow-aligned to the frame even without a network (the fusion weighs each
    #: key by its own error, so the keys must stay apart).
    fuses_keys = True
    #: Without a network, ``finish`` takes each key's alignment flow (``key_flows``) and
    #: warps the key's full-resolution log radiance itself, instead of a working-size map
    #: up-sampled: the 480 → full-size round trip blurred the key's highlights, which the
    #: clipped pixels take from the keys alone (docs/what-we-tried.md, "HDR: keys warped
    #: at full resolution").
    warps_keys = True

    def __init__(self, work: tuple[int, int], device: torch.device | str,
                 response: camera_response.CameraResponse | None = None) -> None:
        self.work, self.device = work, device
        self.response = response if response is not None else camera_response.generic()

    def guide(self, rgb: np.ndarray, ctx: dict | None = None) -> torch.Tensor:
        return resize(to_float(rgb, self.device), self.work)

    def prepare_key(self, index: int, key_image: np.ndarray,
                    video_rgb: np.ndarray | None = None) -> PreparedKey:
        rad = to_float(key_image.astype(np.float32), self.device).clamp(min=0)
        u = mt.hdr_prop(resize(rad, self.work))
        u_full = mt.hdr_prop(rad).cpu().numpy().astype(np.float32, copy=False)  # for key_flows
        return PreparedKey(index, u, self.guide(video_rgb), exact=rad, u_full=u_full)

    def finish(self, rgb: np.ndarray, u: torch.Tensor | None, key: PreparedKey | None,
               ctx: dict | None = None, sources: Sequence[tuple[PreparedKey, float]] = (),
               coverage: torch.Tensor | None = None,
               key_maps: Sequence[torch.Tensor] = (),
               key_flows: Sequence[tuple[PreparedKey, np.ndarray]] = ()) -> np.ndarray:
        """Radiance (H, W, 3) float32 of frame ``rgb``: the key's own for a key-frame, else
        the fusion of f⁻¹(rgb) with each key's log radiance moved into the frame: from
        ``key_flows`` [(key, its alignment flow to the frame at any size)], each key's
        full-resolution map warped here (:data:`warps_keys`), else each working-size log
        map of ``key_maps`` (one per key; ``u`` alone when none is given) up-sampled."""
        if key is not None:
            return np.ascontiguousarray(key.exact.permute(1, 2, 0).cpu().numpy().astype(np.float32))
        size = tuple(rgb.shape[:2])
        outside = None
        if key_flows:
            with timing.section("flow"):
                u_keys, outside = zip(*(flow.warp_planes(k.u_full, f) for k, f in key_flows))
        else:  # up-sampled in the log domain (radiance spans decades)
            u_keys = [resize(m, size).cpu().numpy() for m in (key_maps or [u])]
        r = self.response

        def planes(x: np.ndarray) -> np.ndarray:  # (H, W, 3) → (3, H, W), as the fusion wants
            return np.ascontiguousarray(x.transpose(2, 0, 1))

        with timing.section("fusion"):
            fused = hdr_fusion.fuse_keys(planes(camera_response.levels(rgb)), planes(r.log_radiance(rgb)),
                                         planes(r.variance(rgb)), u_keys,
                                         r.log_table[:, camera_response.LEVELS - 2], outside=outside)
            np.exp(fused, out=fused)
            fused -= np.float32(colour.LOG_EPS)
            return np.ascontiguousarray(fused.transpose(1, 2, 0))


class SegmentAdapter:
    """Segment: U = one-hot object probabilities, V = RGB; output = arg-max id map at full
    resolution, with the input's ids (``object_ids`` maps channel c ≥ 1 to an id)."""

    task = "segment"
    default_work_size = 480  # smaller sizes not measured for this task
    needs_key_video_frame = True  # guidance of a key = the video frame the mask belongs to
    uses_sources = False

    def __init__(self, work: tuple[int, int], device: torch.device | str,
                 object_ids: Sequence[int]) -> None:
        self.work, self.device = work, device
        self.ids = np.array([0, *object_ids], dtype=np.int64)  # channel → id
        self.lut = np.zeros(int(self.ids.max()) + 1, dtype=np.int64)  # id → channel
        self.lut[self.ids] = np.arange(len(self.ids))

    def guide(self, rgb: np.ndarray, ctx: dict | None = None) -> torch.Tensor:
        return resize(to_float(rgb, self.device), self.work)

    def prepare_key(self, index: int, key_image: np.ndarray,
                    video_rgb: np.ndarray | None = None) -> PreparedKey:
        ids = np.asarray(key_image)
        known = np.isin(ids, self.ids)
        channels = self.lut[np.where(known, ids, 0)]  # void / unknown ids count as background
        onehot = mt.segment_prop(torch.from_numpy(channels)[None], len(self.ids) - 1)[0]
        u = resize(onehot.to(self.device), self.work)
        return PreparedKey(index, u, self.guide(video_rgb), exact=ids)

    def finish(self, rgb: np.ndarray, u: torch.Tensor | None, key: PreparedKey | None,
               ctx: dict | None = None, sources: Sequence[tuple[PreparedKey, float]] = (),
               coverage: torch.Tensor | None = None) -> np.ndarray:
        if key is not None:
            return key.exact
        probs = resize(u, rgb.shape[:2])
        channel = mt.segment_unprop(probs[None])[0].cpu().numpy()
        ids = self.ids[channel]
        return ids.astype(np.uint8 if self.ids.max() <= 255 else np.uint16)
