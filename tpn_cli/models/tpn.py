"""The temporal propagation network: guidance U-Net → gates; encoder → hidden map;
two cascaded propagation units sharing the gates; decoder.

Conventions (all tensors (N, C, H, W), any H and W; the module pads and crops):
  u_key   the key-frame's property (normalised, see :mod:`tpn_cli.models.tasks`)
  v_key   the key-frame's guidance image
  v_tgt   the target frame's guidance image
  returns the property predicted for the target frame, same shape as u_key.

Two ways to keep the key-frame's detail past the low-resolution hidden map (docs/TRAINING.md):
  residual=True   û = u_key + up(dec(P(P(h))) − dec(h)): only the change the propagation
                  makes goes through the bottleneck; with gates 0 the output is u_key.
  encoder='signed' the hidden map is the property itself, average-pooled by ``scale``
                  and stacked with its negation (so the max-merge of the four scans is
                  not biased towards large values: dec = (y₊ − y₋) / 2).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import ops, timing
from .unet import GuidanceUNet, pad_to_multiple

MODES = ("basic", "switch", "transpose")
SWITCHED_DIRECTIONS = [1, 0, 3, 2]  # L→R ↔ R→L, T→B ↔ B→T


@dataclass
class TPNConfig:
    """Everything needed to rebuild a TPN (stored next to the weights)."""

    task: str = "colour"
    prop_channels: int = 2       # channels of U (ignored when channelwise)
    guide_channels: int = 1      # channels of V, per frame
    hidden_channels: int = 32
    scale: int = 4               # hidden map size = frame size / scale
    encoder: str = "learned"     # 'learned' (paper) or 'signed' (pooled property ±)
    residual: bool = True
    channelwise: bool = False    # each channel of U on its own (segment: any number of objects)
    gate_groups: int = 1         # 1 = the paper's 12 maps shared by all hidden channels
    unet_base: int = 8
    unet_depth: int = 4
    units: int = 2               # cascaded propagation units sharing the gates
    mode: str = "switch"         # reverse term in training: basic | switch | transpose
    reverse_weight: float = 0.1  # λ
    loss: str = "l2"             # 'l2' (paper) or 'bce' (probabilities: segment)
    extra: dict = field(default_factory=dict)  # free-form notes (data, align, ...)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TPNConfig":
        return cls(**d)


def _act() -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=True)


class LearnedEncoder(nn.Module):
    """Convs (stride 2 per halving) from the property to the hidden map; last layer linear."""

    def __init__(self, cin: int, hidden: int, scale: int):
        super().__init__()
        steps = max(1, scale.bit_length() - 1)  # log2(scale), at least one conv
        layers: list[nn.Module] = []
        for i in range(steps):
            stride = 2 if scale > 1 else 1
            layers += [nn.Conv2d(cin if i == 0 else hidden, hidden, 3, stride, 1), _act()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.net(u)


class LearnedDecoder(nn.Module):
    """Hidden map → property, at the hidden resolution (the TPN up-samples)."""

    def __init__(self, hidden: int, cout: int):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(hidden, hidden, 3, 1, 1), _act(),
                                 nn.Conv2d(hidden, cout, 3, 1, 1))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


class SignedEncoder(nn.Module):
    """The property itself, pooled by ``scale``, stacked with its negation."""

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if self.scale > 1:
            u = F.avg_pool2d(u, self.scale)
        return torch.cat([u, -u], dim=1)


class SignedDecoder(nn.Module):
    """Inverse of :class:`SignedEncoder` at the hidden resolution: (y₊ − y₋) / 2."""

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        pos, neg = y.chunk(2, dim=1)
        return 0.5 * (pos - neg)


class TPN(nn.Module):
    """Switchable temporal propagation network for one task (see module docstring)."""

    def __init__(self, config: TPNConfig):
        super().__init__()
        if config.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {config.mode!r}")
        self.config = config
        c = config
        cprop = 1 if c.channelwise else c.prop_channels
        self.guidance = GuidanceUNet(2 * c.guide_channels, 12 * c.gate_groups, base=c.unet_base,
                                     depth=c.unet_depth, out_scale=c.scale)
        if c.encoder == "learned":
            self.encoder = LearnedEncoder(cprop, c.hidden_channels, c.scale)
            self.decoder = LearnedDecoder(c.hidden_channels, cprop)
        elif c.encoder == "signed":
            self.encoder = SignedEncoder(c.scale)
            self.decoder = SignedDecoder()
        else:
            raise ValueError(f"unknown encoder {c.encoder!r}")

    # -- pieces -------------------------------------------------------------------------
    @property
    def multiple(self) -> int:
        return self.guidance.multiple

    def gates(self, v_key: torch.Tensor, v_tgt: torch.Tensor) -> torch.Tensor:
        """Normalised gates (N, 4, 3, groups, h, w) for padded guidance images."""
        x = torch.cat([v_key, v_tgt], dim=1)
        if self.guidance_dtype is not None:  # reduced-precision network, float32 gates
            with torch.autocast(x.device.type, dtype=self.guidance_dtype):
                raw = self.guidance(x)
            raw = raw.float()
        else:
            raw = self.guidance(x)
        n, _, h, w = raw.shape
        raw = raw.view(n, 4, 3, self.config.gate_groups, h, w)
        return ops.normalize_gates(raw)

    def _to_items(self, u: torch.Tensor, w: torch.Tensor):
        """Channelwise models treat each channel of U as its own batch item."""
        if not self.config.channelwise:
            return u, w
        n, k = u.shape[:2]
        return u.reshape(n * k, 1, *u.shape[2:]), w.repeat_interleave(k, dim=0)

    def _from_items(self, u: torch.Tensor, n: int) -> torch.Tensor:
        if not self.config.channelwise:
            return u
        return u.reshape(n, -1, *u.shape[2:])

    def _units(self, h: torch.Tensor, w: torch.Tensor, reverse: bool) -> torch.Tensor:
        """Cascaded propagation units sharing ``w``; ``reverse`` selects the mode's reverse pass."""
        if w.shape[3] not in (1, h.shape[1]):
            # Gate groups split the hidden channels evenly.
            w = w.repeat_interleave(h.shape[1] // w.shape[3], dim=3)
        if reverse and self.config.mode == "switch":
            w = w[:, SWITCHED_DIRECTIONS]
        with timing.section("scan"):
            for _ in range(self.config.units):
                if reverse and self.config.mode == "transpose":
                    h = ops.merge_max(ops.scan_transpose(h, w))
                else:
                    h = ops.propagate(h, w)
        return h

    def encode_key(self, u_key: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The key-frame's part of the work, computed once per key-frame and passed to
        :meth:`forward` as ``key_code`` for every frame it feeds: the hidden map of the
        (padded) property and, for residual models, its decoding. Items follow
        :meth:`forward`'s batch (channelwise models: one item per channel)."""
        u, _ = pad_to_multiple(u_key, self.multiple)
        if self.config.channelwise:
            u = u.reshape(-1, 1, *u.shape[2:])
        h = self.encoder(u)
        return h, (self.decoder(h) if self.config.residual else None)

    def propagate_padded(self, u: torch.Tensor, w: torch.Tensor, reverse: bool = False,
                         key_code: tuple[torch.Tensor, torch.Tensor | None] | None = None) -> torch.Tensor:
        """Carry padded property ``u`` with gates ``w``; output at u's (padded) size."""
        n = u.shape[0]
        u, w = self._to_items(u, w)
        size = u.shape[-2:]
        h, dec_h = key_code if key_code is not None else (self.encoder(u), None)
        dec = self.decoder(self._units(h, w, reverse))
        if self.config.residual:
            dec = dec - (dec_h if dec_h is not None else self.decoder(h))
        dec = F.interpolate(dec, size=size, mode="bilinear", align_corners=False) \
            if dec.shape[-2:] != size else dec
        out = u + dec if self.config.residual else dec
        return self._from_items(out, n)

    # -- public -------------------------------------------------------------------------
    def forward(self, u_key: torch.Tensor, v_key: torch.Tensor, v_tgt: torch.Tensor,
                key_code: tuple[torch.Tensor, torch.Tensor | None] | None = None) -> torch.Tensor:
        """Predict the target frame's property from the key-frame's (see module docstring).
        ``key_code``: :meth:`encode_key` of ``u_key``, when already computed."""
        m = self.multiple
        u, (h, w_) = pad_to_multiple(u_key, m)
        vk, _ = pad_to_multiple(v_key, m)
        vt, _ = pad_to_multiple(v_tgt, m)
        out = self.propagate_padded(u, self.gates(vk, vt), key_code=key_code)
        return out[..., :h, :w_]

    #: dtype the guidance network computes in (None: float32); the gates, the scan and
    #: the property stay float32. Set by :meth:`for_inference`.
    guidance_dtype: torch.dtype | None = None

    def for_inference(self, channels_last: bool = True, precision: str = "fp32") -> "TPN":
        """Eval mode, the guidance network in channels-last layout (measured ×1.9 on
        CPU at 480p; docs/BENCHMARKS.md) and in ``precision`` ('fp32', 'bf16' or 'fp16':
        autocast of the guidance network only). Returns self."""
        self.guidance_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.eval()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.guidance.to(memory_format=fmt)
        self.guidance.channels_last = channels_last
        return self

    def pair_loss(self, u1: torch.Tensor, v1: torch.Tensor, u2: torch.Tensor, v2: torch.Tensor,
                  weight: torch.Tensor | None = None):
        """Switchable training loss ‖U2 − Û2‖² + λ‖U1 − Û1‖² (means over elements).

        Û2 carries U1 to frame 2; Û1 carries U2 back with the same gates, switched
        (paper), exactly transposed, or not at all ('basic'). ``weight`` (N, 1, H, W)
        optionally weights pixels. Returns (loss, {'fwd': .., 'rev': ..}, Û2).
        """
        m = self.multiple
        h, w_ = u1.shape[-2:]
        pads = [pad_to_multiple(t, m)[0] for t in (u1, v1, u2, v2)]
        g = self.gates(pads[1], pads[3])
        pred2 = self.propagate_padded(pads[0], g)[..., :h, :w_]
        fwd = self._loss(pred2, u2, weight)
        parts = {"fwd": fwd.detach()}
        loss = fwd
        if self.config.mode != "basic":
            pred1 = self.propagate_padded(pads[2], g, reverse=True)[..., :h, :w_]
            rev = self._loss(pred1, u1, weight)
            parts["rev"] = rev.detach()
            loss = loss + self.config.reverse_weight * rev
        return loss, parts, pred2


    def _loss(self, pred: torch.Tensor, truth: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        if self.config.loss == "l2":
            return _wmse(pred, truth, weight)
        if self.config.loss == "bce":
            return _wbce(pred, truth, weight)
        raise ValueError(f"unknown loss {self.config.loss!r}")


def _wbce(p: torch.Tensor, t: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Binary cross-entropy of probabilities ``p`` against ``t``, plus a squared penalty on
    the part of ``p`` outside [0, 1]. ``p`` is squeezed into [ε, 1 − ε] before the log, so a
    one-hot prediction (an untrained model's copy of a one-hot key mask) still has gradient."""
    eps = 1e-3
    pc = (eps + (1 - 2 * eps) * p).clamp(1e-6, 1 - 1e-6)
    err = -(t * pc.log() + (1 - t) * (1 - pc).log()) + (p - p.clamp(0, 1)) ** 2
    if weight is None:
        return err.mean()
    return (err * weight).sum() / (weight.sum() * p.shape[1]).clamp(min=1e-8)


def _wmse(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    err = (a - b) ** 2
    if weight is None:
        return err.mean()
    return (err * weight).sum() / (weight.sum() * a.shape[1]).clamp(min=1e-8)
