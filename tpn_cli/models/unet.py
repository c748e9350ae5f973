"""Guidance U-Net: looks at the key-frame's and the target frame's guidance images and
outputs the propagation gates (3 neighbours × 4 directions per weight group)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.1, inplace=True))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad the bottom/right of (N, C, H, W) so H and W divide ``multiple``.

    Returns the padded tensor and the original (H, W) for :func:`crop_to`.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, (h, w)


class GuidanceUNet(nn.Module):
    """Symmetric U-Net, skip links by summation, channels doubling from ``base``.

    Input (N, in_channels, H, W) with H, W multiples of ``2**depth`` (the TPN pads);
    output (N, out_channels, H / out_scale, W / out_scale). The encoder always starts at
    full resolution (gates must see fine edges); the decoder climbs back only to the
    output level (``out_scale`` a power of two ≤ 2**depth), since finer levels would be
    averaged away: on 2 CPU cores that saves about a third of the network's time.
    The last layer starts at zero, so an untrained model propagates nothing (gates 0,
    y = x): training starts from "copy the key-frame" instead of from noise.
    """

    def __init__(self, in_channels: int, out_channels: int, base: int = 8, depth: int = 4,
                 out_scale: int = 1):
        super().__init__()
        if out_scale < 1 or out_scale & (out_scale - 1) or out_scale > 2**depth:
            raise ValueError(f"out_scale must be a power of two ≤ 2**depth, got {out_scale}")
        self.depth = depth
        self.out_scale = out_scale
        self.out_level = out_scale.bit_length() - 1
        chans = [base * 2**i for i in range(depth + 1)]
        self.stem = nn.Sequential(_conv(in_channels, chans[0]), _conv(chans[0], chans[0]))
        self.down = nn.ModuleList(
            nn.Sequential(_conv(chans[i], chans[i + 1], stride=2), _conv(chans[i + 1], chans[i + 1]))
            for i in range(depth))
        # Up path: bilinear ×2, then a conv to the skip's width; the skip is added.
        # (levels below out_level are unused and not built; index i = level i)
        self.up = nn.ModuleList(_conv(chans[i + 1], chans[i]) if i >= self.out_level else nn.Identity()
                                for i in range(depth))
        self.fuse = nn.ModuleList(_conv(chans[i], chans[i]) if i >= self.out_level else nn.Identity()
                                  for i in range(depth))
        self.head = nn.Conv2d(chans[self.out_level], out_channels, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @property
    def multiple(self) -> int:
        """Input sizes must divide this (the TPN pads to it)."""
        return 2**self.depth

    #: run the convolutions in channels-last layout (set by :meth:`TPN.for_inference`;
    #: about twice as fast on CPU, same numbers up to float rounding)
    channels_last = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for i in reversed(range(self.out_level, self.depth)):
            skip = skips.pop()
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = self.fuse[i](self.up[i](y) + skip)
        return self.head(y).contiguous()  # gates at the hidden map's resolution (NCHW)
