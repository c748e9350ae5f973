"""The edge-aware fill of the colour flow part (tpn_cli.fill)."""
from __future__ import annotations

import pytest
import torch

from tpn_cli import fill


def _two_regions(h=24, w=40, edge=20):
    """L: a dark left half and a bright right half (a hard vertical edge at ``edge``)."""
    L = torch.full((h, w), 30.0)
    L[:, edge:] = 70.0
    return L


def test_gates_follow_lightness_neighbour_by_neighbour():
    """Each gate is (strength/3)·exp(−|ΔL|/σ) towards the neighbour its scan reads, 0 past
    the border (a direct loop over pixels as the oracle)."""
    torch.manual_seed(0)
    L = torch.rand(5, 7) * 20
    g = fill.edge_gates(L, sigma=4.0, strength=0.9)[0, :, :, 0]  # (4, 3, H, W)
    # the neighbour (dy, dx) each direction's three gates point at (ops.scan's order)
    spec = [[(-1, -1), (0, -1), (1, -1)], [(-1, 1), (0, 1), (1, 1)],
            [(-1, -1), (-1, 0), (-1, 1)], [(1, -1), (1, 0), (1, 1)]]
    H, W = L.shape
    for d, nbs in enumerate(spec):
        for j, (dy, dx) in enumerate(nbs):
            for y in range(H):
                for x in range(W):
                    yy, xx = y + dy, x + dx
                    want = 0.3 * torch.exp(-(L[y, x] - L[yy, xx]).abs() / 4.0) if 0 <= yy < H and 0 <= xx < W else 0.0
                    assert abs(float(g[d, j, y, x]) - float(want)) < 1e-6, (d, j, y, x)


@pytest.mark.parametrize("scale", sorted({1, fill.SCALE}))
def test_colour_spreads_within_a_region_not_across_an_edge(monkeypatch, scale):
    """At full size (scale 1) no pixel takes the other region's colour; the default fill
    runs at 1 / fill.SCALE of the size and may mix the two at the pixels next to the edge."""
    monkeypatch.setattr(fill, "SCALE", scale)
    L = _two_regions()
    ab = torch.zeros(2, *L.shape)
    conf = torch.zeros(L.shape)
    # one confident patch per region, each with its own colour; elsewhere no key fits
    ab[:, 10:14, 3:7] = torch.tensor([40.0, 0.0])[:, None, None]
    conf[10:14, 3:7] = 1.0
    ab[:, 10:14, 30:34] = torch.tensor([-30.0, 20.0])[:, None, None]
    conf[10:14, 30:34] = 1.0
    out = fill.fill_unfit(ab, conf, L)
    margin = scale // 2  # the pixels where the enlarged fill straddles the edge
    left, right = out[:, :, :20 - margin], out[:, :, 20 + margin:]
    # every unfit pixel takes its own region's colour, even the ones next to the edge
    assert (left - torch.tensor([40.0, 0.0])[:, None, None]).abs().max() < 0.5
    assert (right - torch.tensor([-30.0, 20.0])[:, None, None]).abs().max() < 0.5


def test_fitting_pixels_are_kept():
    torch.manual_seed(1)
    L = _two_regions()
    ab = torch.randn(2, *L.shape) * 20
    conf = torch.rand(L.shape)
    conf[::3, ::2] = 1.0
    out = fill.fill_unfit(ab, conf, L)
    full = conf == 1.0
    assert torch.equal(out[:, full], ab[:, full])
    # and everywhere the output mixes the pixel's own colour by its confidence
    assert torch.equal(fill.fill_unfit(ab, torch.ones(L.shape), L), ab)


def test_a_uniform_colour_stays_uniform():
    """The fill is a normalised convolution: a constant colour is a fixed point, whatever
    the confidence (as long as some pixel fits)."""
    L = _two_regions() + torch.rand(24, 40)
    ab = torch.empty(2, 24, 40)
    ab[0], ab[1] = 12.0, -7.0
    conf = torch.rand(24, 40) * 0.5
    out = fill.fill_unfit(ab, conf, L)
    assert (out - ab).abs().max() < 1e-3
