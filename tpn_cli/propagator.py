"""The key-frame → frame prediction of colour and HDR, in one class.

:class:`KeyPropagator` is the only place where a key-frame's property becomes a frame's:
`tpn colorize` and `tpn hdr` (through the frame loop of :mod:`tpn_cli.engine`), the
evaluation behind docs/RESULTS.md (:mod:`tpn_eval`, ``scripts/``) and the
training validation (:mod:`tpn_cli.train.validate`) all call it, so what is measured is
what runs. Set the key-frames once, predict many frames::

    prop = KeyPropagator(adapter, model)          # a tpn_cli.adapters object, a TPN
    prop.set_key(0, key_image)                    # + video_frame= for HDR / partial keys
    prop.set_key(20, key_image_20)
    out = prop.predict(7, frame_image, [(0, 0.65), (20, 0.35)])  # the output image

One prediction, step by step (the engine runs the steps in separate threads; the
evaluation reuses one frame's aligned keys for several schedules):

1. :meth:`target`: the frame's guidance V at the working size (``Target``).
2. :meth:`view`: one key moved into the frame (``KeyView``): its property, guidance and
   paint alpha flow-aligned to the frame when the model was trained so
   (:func:`tpn_cli.models.infer.align_key`; a partly painted key's alpha moves with
   the same flow even when the model does not align). The flow is the adapter's when it
   offers one (:meth:`alignment_flows`), else DIS at the working size. :meth:`confidence` is the
   per-pixel fit of an aligned key to the frame.
3. :meth:`frame`: the views of one frame and their blend weights (``FramePrediction``):
   distance weights, × per-pixel confidence when the keys are aligned
   (:func:`tpn_cli.models.infer.blend_weights`), × propagated paint alpha for partly
   painted keys (:func:`tpn_cli.models.infer.paint_weights`); the paint's coverage.
   :meth:`prepare_frame` does 1–3 for a frame and its plan sources.
4. :meth:`correct`: the network on a batch of views, its correction held back where
   the aligned key already fits (:func:`tpn_cli.models.infer.hold_back`); fills
   ``view.out``. :meth:`network` is the same on tensors that are already aligned.
5. :meth:`output`: the blended working-size property (``FramePrediction.u``) → the
   full-resolution output image (the adapter's ``finish``: for colour the chroma
   up-sampling guided by L, the flow mix and the partial-colour coverage). An adapter
   that ``fuses_keys`` (HDR) gets each key's map instead of the blend and fuses them
   with the frame's own inverse camera response (:mod:`tpn_cli.hdr_fusion`). A frame that
   is itself a key-frame is output from the key.

Without a model (``model=None``: ``tpn hdr`` by default) the aligned keys are the
prediction: an adapter that ``fuses_keys`` still has them flow-aligned, and step 4 copies
``view.u`` to ``view.out``. An adapter that also ``warps_keys`` (HDR) is handed each key
with its alignment flow instead (``key_flows=``) and warps the key's full-resolution map
itself: step 2 computes the flow only.

:meth:`propagate` is the tensor-level path (N, C, H, W) without an adapter: alignment,
network, hold-back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from . import timing
from .adapters import PreparedKey
from .models import infer

__all__ = ["FramePrediction", "KeyPropagator", "KeyView", "Target"]


@dataclass
class Target:
    """A frame to predict: ``v`` its guidance at the working size, ``gray`` that as the
    8-bit image the alignment flow runs on (made when first needed), ``ctx`` per-frame
    work the adapter shares between guidance and output (colour: the frame's L)."""

    index: int
    image: np.ndarray
    v: torch.Tensor
    ctx: dict = field(default_factory=dict)
    gray: np.ndarray | None = None


@dataclass
class KeyView:
    """One key-frame as the network sees it for one target: property ``u`` and guidance
    ``v`` (flow-aligned to the target when the model aligns), the paint ``alpha`` moved
    into the target (None: fully painted), the distance ``weight`` from the plan, and
    ``out`` the network's prediction once :meth:`KeyPropagator.correct` ran;
    ``v_target`` is the target's guidance. ``flow``: the alignment flow (working size)
    when the adapter warps the key itself (``warps_keys``, no model): then ``u`` and
    ``v`` are the key's own, unmoved."""

    key: PreparedKey
    weight: float
    u: torch.Tensor
    v: torch.Tensor
    v_target: torch.Tensor
    alpha: torch.Tensor | None = None
    out: torch.Tensor | None = None
    flow: np.ndarray | None = None


@dataclass
class FramePrediction:
    """One frame's prediction: its ``target``, the ``views`` of its keys with their blend
    ``weights`` (floats or (1, h, w) maps), the paint ``coverage`` (None when every key is
    fully painted); ``own_key`` instead of views when the frame is itself a key-frame."""

    index: int
    image: np.ndarray
    target: Target | None
    views: list[KeyView] = field(default_factory=list)
    weights: list = field(default_factory=list)
    coverage: Any = None
    own_key: PreparedKey | None = None

    @property
    def u(self) -> torch.Tensor:
        """The blended working-size property (C, h, w) (after :meth:`KeyPropagator.correct`)."""
        return infer.blend([(view.out, w) for view, w in zip(self.views, self.weights)])


class KeyPropagator:
    """Key-frames → frames for one task's ``adapter`` (:mod:`tpn_cli.adapters`; None for
    the tensor-level :meth:`network` and :meth:`propagate` only) and ``model`` (a TPN in
    eval mode on the adapter's device, or None: the aligned keys are the prediction; see
    the module doc for the steps). ``aligns``: keys are flow-aligned to the frame (the
    model was trained so, or the adapter fuses the keys itself); ``keys``: the prepared
    key-frames by index."""

    def __init__(self, adapter: Any, model: Any) -> None:
        self.adapter, self.model = adapter, model
        # HDR's fusion weighs each aligned key apart from the others
        self.fuses = bool(getattr(adapter, "fuses_keys", False))
        self.aligns = infer.wants_alignment(model) if model is not None else self.fuses
        # no network: a fusing adapter that can warp each key's full-resolution map with
        # the alignment flow itself (the working-size map up-sampled loses the key's detail)
        self.warps = self.fuses and model is None and bool(getattr(adapter, "warps_keys", False))
        # a key's encoded property serves every frame it feeds (not when it is warped to
        # each frame first)
        self.key_codes = not self.aligns and hasattr(model, "encode_key")
        self.keys: dict[int, PreparedKey] = {}

    # -- key-frames ---------------------------------------------------------------------
    def set_key(self, index: int, image: np.ndarray, video_frame: np.ndarray | None = None) -> PreparedKey:
        """Prepare key-frame ``index`` from its property image (colour RGB/RGBA, radiance)
        and, where the adapter needs it (``needs_key_video_frame``), the video frame at
        its index; kept until :meth:`forget_keys_before`."""
        key = self.adapter.prepare_key(index, image, video_frame)
        if self.aligns or key.alpha is not None:
            key.gray = infer.guide_to_gray(key.v)
        if self.key_codes:
            with timing.section("network"):
                key.code = self.model.encode_key(key.u[None])
        self.keys[index] = key
        return key

    def forget_keys_before(self, index: int) -> None:
        """Drop the prepared keys before ``index`` (a monotone plan is done with them)."""
        for k in [k for k in self.keys if k < index]:
            del self.keys[k]

    # -- one frame, step by step ----------------------------------------------------------
    def target(self, index: int, image: np.ndarray) -> Target:
        """Frame ``index``'s guidance at the working size."""
        target = Target(index, image, None)
        target.ctx["index"] = index  # an adapter may weigh keys by their distance to it
        with timing.section("colour"):
            target.v = self.adapter.guide(image, ctx=target.ctx)
        return target

    def view(self, target: Target, key_index: int, weight: float = 1.0,
             flow: np.ndarray | None = None) -> KeyView:
        """Key ``key_index`` (set before) moved into ``target``: flow-aligned when the
        model aligns; a partly painted key's alpha always follows the alignment flow (in
        the same warp call). ``flow``: the alignment flow (h, w, 2) at the working size
        when already known; else the adapter's (:meth:`alignment_flows`), else computed
        here."""
        key = self.keys[key_index]
        if not self.aligns and key.alpha is None:
            return KeyView(key, weight, key.u, key.v, target.v)
        if flow is None:
            flow = self.alignment_flows(target, [key_index])[0]
        if flow is None and target.gray is None:  # the frame's gray image, for the flow
            with timing.section("flow"):
                target.gray = infer.guide_to_gray(target.v)
        if self.warps:  # only the flow here; the adapter's finish warps the key
            if flow is None:
                with timing.section("flow"):
                    flow = infer.alignment_flow(target.gray, key.gray)
            return KeyView(key, weight, key.u, key.v, target.v, flow=flow)
        if not self.aligns:  # the model takes the key where it is; only its alpha moves
            with timing.section("flow"):
                moved, _ = infer.align_key(key.alpha, key.v, target.v, flow=flow, key_gray=key.gray,
                                           tgt_gray=target.gray)
            return KeyView(key, weight, key.u, key.v, target.v, moved)
        c = key.u.shape[0]
        u_in = key.u if key.alpha is None else torch.cat([key.u, key.alpha])
        with timing.section("flow"):
            u, v = infer.align_key(u_in, key.v, target.v, flow=flow, key_gray=key.gray,
                                   tgt_gray=target.gray)
        return KeyView(key, weight, u[:c], v, target.v, u[c:] if key.alpha is not None else None)

    def confidence(self, view: KeyView, target: Target) -> torch.Tensor:
        """(1, h, w) per-pixel fit in (0, 1] of an aligned key to the frame
        (:func:`tpn_cli.models.infer.alignment_confidence`)."""
        return infer.alignment_confidence(view.v, target.v)

    def frame(self, target: Target, views: Sequence[KeyView]) -> FramePrediction:
        """The prediction of ``target`` from ``views``, with their blend weights."""
        views = list(views)
        weights = [view.weight for view in views]
        if self.aligns and len(views) > 1 and not self.fuses:  # per-pixel weights from each key's aligned fit
            with timing.section("flow"):
                weights = infer.blend_weights(weights, [view.v for view in views], target.v)
        alphas = [view.alpha for view in views]
        partial = any(a is not None for a in alphas)
        if partial and len(views) > 1:  # each key counts where its paint landed
            weights = infer.paint_weights(weights, alphas)
        return FramePrediction(target.index, target.image, target, views, weights,
                               infer.paint_coverage(alphas) if partial else None)

    def prepare_frame(self, index: int, image: np.ndarray,
                sources: Sequence[tuple[int, float]]) -> FramePrediction:
        """Steps 1–3 for frame ``index`` fed by ``sources`` [(key index, distance weight)]
        (a plan's :class:`tpn_cli.keyframes.Assignment`): a frame that is its own only
        source is output from the key (no guidance, no network)."""
        if len(sources) == 1 and sources[0][0] == index:
            return FramePrediction(index, image, None, own_key=self.keys[index])
        target = self.target(index, image)
        prepare_flows = getattr(self.adapter, "prepare_flows", None)
        if prepare_flows is not None:  # flows that need only the input frames, computed here
            prepare_flows(target.ctx, [(self.keys[k], w) for k, w in sources])
        flows = self.alignment_flows(target, [k for k, _ in sources])
        return self.frame(target, [self.view(target, k, w, f) for (k, w), f in zip(sources, flows)])

    def ahead_frames(self, height: int, width: int) -> int:
        """How many consecutive frames the adapter wants at once for its backward pass
        (:meth:`chain`; 0: none, frames go in batches of ``batch_size`` pairs)."""
        get = getattr(self.adapter, "ahead_frames", None)
        return get(height, width) if get is not None else 0

    def chain(self, preds: Sequence[FramePrediction]) -> None:
        """After :meth:`prepare_frame` of consecutive frames (the engine's batch: with
        :meth:`ahead_frames`, the frames up to the next key-frame), before their outputs:
        what the adapter carries from frame to frame (colour: the colour carried forward
        from the frame before and back from the next key-frame,
        :meth:`tpn_cli.adapters.ColourAdapter.chain`); then each frame is output on its own."""
        chain = getattr(self.adapter, "chain", None)
        if chain is not None:
            chain([(p.index, p.image, p.target.ctx if p.target is not None else None,
                    [(view.key, view.weight) for view in p.views], p.own_key) for p in preds])

    def alignment_flows(self, target: Target, key_indices: Sequence[int]) -> list:
        """The adapter's alignment flows of ``target`` to the keys, all keys at once
        (:meth:`tpn_cli.adapters.ColourAdapter.alignment_flows`); None per key where the
        adapter offers none (then :meth:`view` computes the flow)."""
        get = getattr(self.adapter, "alignment_flows", None)
        flows = get(target.ctx, [self.keys[k] for k in key_indices]) if get is not None else None
        return list(flows) if flows is not None else [None] * len(key_indices)

    def correct(self, views: Sequence[KeyView]) -> None:
        """The network on ``views`` as one batch; sets each ``view.out`` (without a
        model: the aligned key's property itself)."""
        if self.model is None:
            for view in views:
                view.out = view.u
            return
        u = torch.stack([view.u for view in views])
        vk = torch.stack([view.v for view in views])
        vt = torch.stack([view.v_target for view in views])
        code = None
        if self.key_codes:
            h = torch.cat([view.key.code[0] for view in views])
            dec = None if views[0].key.code[1] is None else torch.cat([view.key.code[1] for view in views])
            code = (h, dec)
        with timing.section("network"):
            out = self.network(u, vk, vt, key_code=code)
        for view, o in zip(views, out.unbind(0)):
            view.out = o

    def output(self, pred: FramePrediction) -> Any:
        """The full-resolution output image of a prepared and corrected frame."""
        kw: dict[str, Any] = {}
        if pred.coverage is not None:
            kw["coverage"] = pred.coverage
        if pred.own_key is not None:
            return self.adapter.finish(pred.image, None, pred.own_key, ctx={}, **kw)
        if self.adapter.uses_sources:
            kw["sources"] = [(view.key, view.weight) for view in pred.views]
        if self.warps:
            kw["key_flows"] = [(view.key, view.flow) for view in pred.views]
            return self.adapter.finish(pred.image, None, None, ctx=pred.target.ctx, **kw)
        if self.fuses:
            kw["key_maps"] = [view.out for view in pred.views]
        return self.adapter.finish(pred.image, pred.u, None, ctx=pred.target.ctx, **kw)

    def predict(self, index: int, image: np.ndarray, sources: Sequence[tuple[int, float]]) -> Any:
        """Frame ``index``'s output image from its ``sources`` [(key index, distance
        weight)], the keys set before: all steps at once."""
        pred = self.prepare_frame(index, image, sources)
        self.chain([pred])
        if pred.views:
            self.correct(pred.views)
        return self.output(pred)

    # -- tensors --------------------------------------------------------------------------
    def network(self, u: torch.Tensor, v_key: torch.Tensor, v_tgt: torch.Tensor,
                key_code: Any = None) -> torch.Tensor:
        """The model on (N, C, H, W) keys already aligned (if it aligns) to their targets,
        its correction held back where the aligned key fits (:func:`infer.hold_back`)."""
        out = self.model(u, v_key, v_tgt) if key_code is None else self.model(u, v_key, v_tgt, key_code=key_code)
        return infer.hold_back(self.model, u, out, v_key, v_tgt)

    @torch.no_grad()
    def propagate(self, u_key: torch.Tensor, v_key: torch.Tensor, v_tgt: torch.Tensor) -> torch.Tensor:
        """Targets' properties (N, C, H, W) from key-frames' (N, C, H, W), without an
        adapter: each key aligned to its target when the model aligns, then
        :meth:`network`."""
        if self.aligns:
            pairs = [infer.align_key(u_key[i], v_key[i], v_tgt[i]) for i in range(len(u_key))]
            u_key = torch.stack([p[0] for p in pairs])
            v_key = torch.stack([p[1] for p in pairs])
        return self.network(u_key, v_key, v_tgt)
