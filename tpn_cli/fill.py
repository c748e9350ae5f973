"""Edge-aware fill: colour where the flow-warped key-frames do not fit the frame, spread
from the pixels where they do, along regions of like lightness and never across an edge.

Where both warped keys are wrong (disocclusions, flow failures) their blend is a guess;
the nearest well-warped pixels of the same surface are a better one. The fill is a
normalised convolution whose kernel is the propagation op itself (:func:`tpn_cli.ops.scan`,
compiled, at 1 / :data:`SCALE` of the frame's resolution): the confidence-weighted colour
``c·ab`` and the confidence ``c`` are spread by the same linear operator, and their ratio
is the fill. The scan's gates come from the frame's own lightness, so the spreading stops
at L edges (to within the pixel of the smaller size)::

    out = c·ab + (1 − c)·spread(c·ab) / spread(c)

Measured in issue 19 (docs/what-we-tried.md, "Issue 19 (colour)"): the two-key flow
blend + this fill, mixed into `tpn colorize --mode blend` at 0.5, +0.2 dB over the same
without the fill at K = 20 on the tuning clips, held-out clips never below the two-key
baseline.
"""
from __future__ import annotations

import torch

from . import ops
from .colour.upsample import enlarge, shrink

__all__ = ["SIGMA", "STRENGTH", "PASSES", "SCALE", "edge_gates", "spread", "fill_unfit"]

#: Each neighbour's gate is (STRENGTH / 3)·exp(−|ΔL| / SIGMA), L in 0..100: 4 L units
#: (a faint edge) already halves it twice; STRENGTH < 1 keeps every scan stable and the
#: reach finite (a few hundred pixels). 2 and 8 for SIGMA, 0.995 for STRENGTH scored lower
#: on the tuning clips (docs/what-we-tried.md).
SIGMA, STRENGTH = 4.0, 0.98
#: Passes of the four-direction spread (each pass the mean of the four scans of its input:
#: one op call, linear). 1 pass scored lower, 4 no better.
PASSES = 2
#: The spread runs at 1/SCALE of the frame's size, and the fill comes back bilinearly
#: (1 = at full size). 2 scored +0.04 / +0.07 / +0.07 dB over full size at K = 10 / 20 / 40
#: on the 6 tuning clips (the farther reach in full-size pixels; worst clip −0.05 dB at
#: K = 10) at a quarter of the time (docs/what-we-tried.md, "End-to-end speed outside the
#: flows"). The price: colour crosses an L edge by about SCALE / 2 pixels.
SCALE = 2


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
    # every entry but the outermost rows and columns is written below: zero only those
    # (a full zero fill of the 12 maps cost as much as one of the exponentials)
    g = L.new_empty(4, 3, H, W)
    g[:, :, 0], g[:, :, -1], g[:, :, :, 0], g[:, :, :, -1] = 0.0, 0.0, 0.0, 0.0
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
    within the same lightness region of ``L`` (H, W, 0..100); see the module doc. The
    spread runs at 1 / :data:`SCALE` of the size."""
    c = confidence.float().clamp(0.0, 1.0)[None]
    x = torch.empty((3, *c.shape[-2:]), dtype=c.dtype, device=c.device)
    cab = torch.mul(c, ab, out=x[:2])  # c·ab, reused for the output below
    x[2:] = c
    if SCALE > 1:
        # c·ab, c and L area-averaged to the smaller size, spread there; the spread
        # numerator and denominator enlarged bilinearly (their ratio is the fill)
        size = tuple(L.shape[-2:])
        small = (-(-size[0] // SCALE), -(-size[1] // SCALE))
        y = enlarge(spread(shrink(x, small), edge_gates(shrink(L.float()[None], small)[0])), size)
    else:
        y = spread(x, edge_gates(L))
    filled = y[:2].div_(y[2:].clamp(min=1e-6))
    # c·ab + (1 − c)·filled, in place
    return filled.mul_(1.0 - c).add_(cab)
