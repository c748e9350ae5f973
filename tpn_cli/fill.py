"""Edge-aware fill: colour where the flow-warped key-frames do not fit the frame, spread
from the pixels where they do, along regions of like lightness and never across an edge.

Where both warped keys are wrong (disocclusions, flow failures) their blend is a guess;
the nearest well-warped pixels of the same surface are a better one. The fill is a
normalised convolution whose kernel is the propagation op itself (:func:`tpn_cli.ops.scan`,
compiled, at the frame's full resolution): the confidence-weighted colour ``c·ab`` and the
confidence ``c`` are spread by the same linear operator, and their ratio is the fill.
The scan's gates come from the frame's own lightness, so the spreading stops at L edges::

    out = c·ab + (1 − c)·spread(c·ab) / spread(c)

Measured in issue 19 (docs/what-we-tried.md, "Issue 19 (colour)"): the two-key flow
blend + this fill, mixed into `tpn colorize --mode blend` at 0.5, +0.2 dB over the same
without the fill at K = 20 on the tuning clips, held-out clips never below the two-key
baseline.
"""
from __future__ import annotations

import torch

from . import ops

__all__ = ["SIGMA", "STRENGTH", "PASSES", "edge_gates", "spread", "fill_unfit"]

#: Each neighbour's gate is (STRENGTH / 3)·exp(−|ΔL| / SIGMA), L in 0..100: 4 L units
#: (a faint edge) already halves it twice; STRENGTH < 1 keeps every scan stable and the
#: reach finite (a few hundred pixels). 2 and 8 for SIGMA, 0.995 for STRENGTH scored lower
#: on the tuning clips (docs/what-we-tried.md).
SIGMA, STRENGTH = 4.0, 0.98
#: Passes of the four-direction spread (each pass the mean of the four scans of its input:
#: one op call, linear). 1 pass scored lower, 4 no better.
PASSES = 2


def edge_gates(L: torch.Tensor, sigma: float = SIGMA, strength: float = STRENGTH) -> torch.Tensor:
    """Gates (1, 4, 3, 1, H, W) of the four scans (order of :func:`tpn_cli.ops.scan`:
    L→R, R→L, T→B, B→T; neighbours "−1" side, straight, "+1" side) from lightness ``L``
    (H, W): each neighbour gets (strength/3)·exp(−|L(x) − L(neighbour)| / sigma), 0 outside
    the image (the scan drops those neighbours anyway).

    Only 4 exponential maps are computed, one per pixel pair: towards the right, down,
    down-right and down-left neighbour. The gate of x towards x − o is the same number as
    the one of x − o towards x (|ΔL| is symmetric), so each map is written into the output
    twice, once shifted."""
    L = L.float()
    H, W = L.shape
    k = strength / 3.0

    def gate(a, b):
        return torch.exp((a - b).abs_().div_(-sigma)).mul_(k)

    right = gate(L[:, :-1], L[:, 1:])            # at (y, x) towards (y, x+1): x < W-1
    down = gate(L[:-1], L[1:])                   # at (y, x) towards (y+1, x): y < H-1
    d_right = gate(L[:-1, :-1], L[1:, 1:])       # at (y, x) towards (y+1, x+1)
    d_left = gate(L[:-1, 1:], L[1:, :-1])        # at (y, x+1) towards (y+1, x)
    g = L.new_zeros(4, 3, H, W)
    # L→R reads column x−1: up-left, left, down-left
    g[0, 0, 1:, 1:], g[0, 1, :, 1:], g[0, 2, :-1, 1:] = d_right, right, d_left
    # R→L reads column x+1: up-right, right, down-right
    g[1, 0, 1:, :-1], g[1, 1, :, :-1], g[1, 2, :-1, :-1] = d_left, right, d_right
    # T→B reads row y−1: up-left, up, up-right
    g[2, 0, 1:, 1:], g[2, 1, 1:, :], g[2, 2, 1:, :-1] = d_right, down, d_left
    # B→T reads row y+1: down-left, down, down-right
    g[3, 0, :-1, 1:], g[3, 1, :-1, :], g[3, 2, :-1, :-1] = d_left, down, d_right
    return g[None, :, :, None]


def spread(x: torch.Tensor, gates: torch.Tensor, passes: int = PASSES) -> torch.Tensor:
    """``x`` (C, H, W) spread by ``passes`` rounds of the mean of the four directional
    scans with ``gates`` (:func:`edge_gates`): a linear operator, the same for every
    channel."""
    y = x[None].float()
    for _ in range(passes):
        y = ops.scan(y.contiguous(), gates).mean(dim=1)
    return y[0]


def fill_unfit(ab: torch.Tensor, confidence: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """``ab`` (2, H, W) kept where ``confidence`` (H, W) in [0, 1] is 1 and replaced, as the
    confidence drops, by the confidence-weighted colour spread from the pixels around
    within the same lightness region of ``L`` (H, W, 0..100); see the module doc."""
    c = confidence.float().clamp(0.0, 1.0)[None]
    y = spread(torch.cat([c * ab, c]), edge_gates(L))
    filled = y[:2] / y[2:].clamp(min=1e-6)
    return c * ab + (1.0 - c) * filled
