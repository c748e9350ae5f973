"""The learned fusion of two flow-warped key-frames (tpn_cli/colour_fusion.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tpn_cli import colour_fusion as cf


def _frame(seed: int, h: int = 48, w: int = 64):
    rng = np.random.default_rng(seed)
    gray = cv_blur(rng.uniform(0, 255, (h, w)).astype(np.float32))
    L = gray / 2.55
    return gray, L


def cv_blur(x):
    import cv2
    return cv2.blur(x, (5, 5))


def _key(gray, seed: int, distance: float, ab_value=None):
    rng = np.random.default_rng(seed)
    h, w = gray.shape
    ab = (np.full((2, h, w), ab_value, np.float32) if ab_value is not None
          else rng.normal(0, 20, (2, h, w)).astype(np.float32))
    key_gray = gray + rng.normal(0, 5, gray.shape).astype(np.float32)
    flow = rng.normal(0, 2, (h, w, 2)).astype(np.float32)
    return cf.KeyWarp(ab, key_gray, flow, distance)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(3)
    n = cf.FusionNet(16).eval()
    with torch.no_grad():  # make the scores depend on the inputs clearly
        for p in n.parameters():
            p.mul_(3.0)
    return n


def test_feature_shapes_follow_the_feature_size():
    gray, _ = _frame(0, 480, 854)
    size = cf.feature_size(480, 854)
    assert size == (240, 427)
    k = _key(gray, 1, 7)
    f = cf.key_features(gray, k, size)
    s = cf.shared_features(gray, [k, _key(gray, 2, 3)], size)
    assert f.shape == (cf.KEY_FEATURES, *size) and s.shape == (cf.SHARED_FEATURES, *size)
    assert np.isfinite(f).all() and np.isfinite(s).all()
    assert np.allclose(f[-1], 1.0) and np.allclose(f[-2], 7 / 30.0)  # present, distance
    assert cf.feature_size(100, 200) == (100, 200)  # small frames are not enlarged


def test_swapping_the_keys_swaps_the_weights(net):
    gray, _ = _frame(0)
    a, b = _key(gray, 1, 4), _key(gray, 2, 11)
    w_ab, c0_ab, c1_ab = cf.weights_and_confidences(net, gray, [a, b])
    w_ba, c0_ba, c1_ba = cf.weights_and_confidences(net, gray, [b, a])
    assert torch.allclose(w_ab, 1 - w_ba, atol=1e-5)
    assert torch.allclose(c0_ab, c1_ba, atol=1e-5) and torch.allclose(c1_ab, c0_ba, atol=1e-5)
    assert float(w_ab.std()) > 1e-3  # the weights do vary per pixel


def test_one_key_takes_all_the_weight(net):
    gray, _ = _frame(0)
    w0, c, _ = cf.weights_and_confidences(net, gray, [_key(gray, 1, 5)])
    assert torch.allclose(w0, torch.ones_like(w0))
    assert float(c.min()) >= 0 and float(c.max()) <= 1


def test_two_keys_of_one_colour_give_that_colour(net):
    """Whatever the weights and confidence, a uniform colour stays itself (the blend is
    convex and the fill of a uniform field is that field)."""
    gray, L = _frame(0)
    out = cf.fuse(net, L, gray, [_key(gray, 1, 3, ab_value=12.0), _key(gray, 2, 9, ab_value=12.0)])
    assert torch.allclose(out, torch.full_like(out, 12.0), atol=1e-3)


def test_the_output_lies_between_the_keys(net):
    gray, L = _frame(0)
    a, b = _key(gray, 1, 3, ab_value=-10.0), _key(gray, 2, 9, ab_value=30.0)
    out = cf.fuse(net, L, gray, [a, b])
    assert float(out.min()) >= -10.0 - 1e-3 and float(out.max()) <= 30.0 + 1e-3
    assert float(out.std()) > 0.1  # per-pixel weights, not one global mix


def test_save_and_load_round_trip(tmp_path, net):
    path = cf.save_fusion(net, tmp_path / "f.tpn", meta={"epoch": 1})
    back = cf.load_fusion(path)
    for p, q in zip(net.parameters(), back.parameters()):
        assert torch.equal(p, q)
    torch.save({"format": "something else"}, tmp_path / "bad.tpn")
    with pytest.raises(ValueError, match="not a tpn colour-fusion file"):
        cf.load_fusion(tmp_path / "bad.tpn")


def test_the_shipped_fusion_loads():
    net = cf.load_shipped()
    assert isinstance(net, cf.FusionNet) and not net.training
