"""Frame-to-frame mask propagation (tpn_cli.mask_tracker), chained-prediction training
pairs (degrade_mask) and the probability loss."""
import numpy as np
import pytest
import torch

from tpn_cli.models import TPN, task_config
from tpn_cli.mask_tracker import MaskPropagator, normalise_probs
from tpn_cli.train.pairs import degrade_mask


def propagate_masks(model, frames: list[torch.Tensor], probs0: torch.Tensor, **options) -> list[torch.Tensor]:
    """Probabilities (K, H, W) for every frame of ``frames`` (the first gets ``probs0``)."""
    prop = MaskPropagator(model, **options)
    return [prop.start(frames[0], probs0)] + [prop.step(f) for f in frames[1:]]


torch.set_num_threads(1)


def _moving_square(n=4, h=48, w=64, step=3):
    """Frames with a textured bright square moving right by ``step`` px per frame."""
    rng = np.random.default_rng(0)
    bg = (rng.random((h, w, 3)) * 0.3).astype(np.float32)
    frames, masks = [], []
    for t in range(n):
        img, m = bg.copy(), np.zeros((h, w), np.uint8)
        x0 = 10 + step * t
        img[14:34, x0:x0 + 20] = 0.7 + 0.3 * rng.random((20, 20, 3)).astype(np.float32)
        m[14:34, x0:x0 + 20] = 1
        frames.append(torch.from_numpy(img).permute(2, 0, 1))
        masks.append(m)
    return frames, masks


def _probs(m):
    return torch.from_numpy(np.stack([m == 0, m > 0]).astype(np.float32))


def test_normalise_probs_clamps_and_sums_to_one():
    u = torch.tensor([[[1.4, -0.2]], [[0.2, 0.3]]])  # (2, 1, 2)
    p = normalise_probs(u)
    assert (p >= 0).all() and (p <= 1).all()
    torch.testing.assert_close(p.sum(0), torch.ones(1, 2))


@pytest.mark.parametrize("with_model", [False, True])
def test_chain_follows_a_moving_object(with_model):
    frames, masks = _moving_square()
    # an untrained TPN copies its input: chaining equals flow chaining of probabilities
    model = TPN(task_config("segment", encoder="signed", scale=2)).eval() if with_model else None
    out = propagate_masks(model, frames, _probs(masks[0]), appearance=0)
    assert len(out) == len(frames)
    for p, m in zip(out, masks):
        assert p.shape == (2, *m.shape)
        torch.testing.assert_close(p.sum(0), torch.ones(m.shape))
        pred = p.argmax(0).numpy() > 0
        iou = (pred & (m > 0)).sum() / (pred | (m > 0)).sum()
        assert iou > 0.8


def test_untrained_model_equals_flow_chaining():
    frames, masks = _moving_square(n=3)
    model = TPN(task_config("segment", encoder="signed", scale=2)).eval()
    a = propagate_masks(model, frames, _probs(masks[0]), appearance=0)
    b = propagate_masks(None, frames, _probs(masks[0]), appearance=0)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=0)


def test_step_before_start_and_size_mismatch_raise():
    prop = MaskPropagator(None)
    with pytest.raises(RuntimeError):
        prop.step(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError):
        prop.start(torch.zeros(3, 8, 8), torch.zeros(2, 8, 9))


def test_degrade_mask_spoils_but_keeps_the_object():
    m = np.zeros((96, 96), np.float32)
    m[30:70, 25:75] = 1
    ious = []
    for seed in range(8):
        d = degrade_mask(np.random.default_rng(seed), m, 1.0)
        assert d.shape == m.shape and d.dtype == np.float32
        assert d.min() >= 0 and d.max() <= 1
        a, b = d > 0.5, m > 0.5
        ious.append((a & b).sum() / max(1, (a | b).sum()))
    assert min(ious) > 0.3 and np.mean(ious) < 0.999  # spoilt, not destroyed
    np.testing.assert_array_equal(degrade_mask(np.random.default_rng(3), m, 1.0),
                                  degrade_mask(np.random.default_rng(3), m, 1.0))


def test_bce_loss_trains_gates():
    cfg = task_config("segment", encoder="signed", scale=2, loss="bce")
    model = TPN(cfg)
    frames, masks = _moving_square(n=2)
    u1, u2 = _probs(masks[0])[None], _probs(masks[1])[None]
    v1, v2 = frames[0][None], frames[1][None]
    loss, parts, pred = model.pair_loss(u1, v1, u2, v2)
    assert torch.isfinite(loss) and set(parts) == {"fwd", "rev"}
    loss.backward()
    assert model.guidance.head.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        TPN(task_config("segment", loss="nope")).pair_loss(u1, v1, u2, v2)


def test_colour_histograms_are_normalised_per_channel():
    from tpn_cli.mask_tracker import colour_histograms
    rgb = torch.rand(3, 10, 12)
    probs = normalise_probs(torch.rand(3, 10, 12))
    h = colour_histograms(rgb, probs, bins=8)
    assert h.shape == (3, 512)
    torch.testing.assert_close(h.sum(1), torch.ones(3))


def test_appearance_fuse_relabels_by_colour_near_the_object_only():
    from tpn_cli.mask_tracker import appearance_fuse, colour_histograms
    rgb = torch.zeros(3, 20, 40)
    rgb[0, 5:15, 5:15] = 1.0          # a red object on black
    m = np.zeros((20, 40), np.uint8)
    m[5:15, 5:15] = 1
    hist = colour_histograms(rgb, _probs(m), bins=8)
    # next frame: the object grew by two columns, the prediction did not follow; and a red
    # patch far away that must stay background (outside the band)
    rgb2 = rgb.clone()
    rgb2[0, 5:15, 15:17] = 1.0
    rgb2[0, 5:15, 35:38] = 1.0
    soft = _probs(m) * 0.8 + 0.1      # a chained prediction is not fully confident
    out = appearance_fuse(soft, rgb2, hist, alpha=1.0, band=4)
    ids = out.argmax(0)
    assert (ids[5:15, 15:17] == 1).all()       # recovered by colour
    assert (ids[5:15, 35:38] == 0).all()       # too far from the object
    assert (ids[5:15, 5:15] == 1).all() and (ids[0] == 0).all()
    torch.testing.assert_close(out.sum(0), torch.ones(20, 40))


def test_chain_with_appearance_follows_a_moving_object():
    frames, masks = _moving_square()
    out = propagate_masks(None, frames, _probs(masks[0]), appearance=1.0, band=6)
    for p, m in zip(out, masks):
        pred = p.argmax(0).numpy() > 0
        assert (pred & (m > 0)).sum() / (pred | (m > 0)).sum() > 0.8


def test_local_background_histogram_ignores_far_background():
    from tpn_cli.mask_tracker import colour_histograms
    rgb = torch.zeros(3, 20, 60)
    rgb[2, :, 40:] = 1.0               # blue far away from the object
    m = np.zeros((20, 60), np.uint8)
    m[5:15, 5:15] = 1
    rgb[0, 5:15, 5:15] = 1.0
    far = colour_histograms(rgb, _probs(m), bins=4)
    near = colour_histograms(rgb, _probs(m), bins=4, local=5)
    blue = 3  # bin of (0, 0, 1) with 4 bins: (0 * 4 + 0) * 4 + 3
    assert far[0, blue] > 0.3 and near[0, blue] == 0
    torch.testing.assert_close(near[1], far[1])


def test_drop_specks_hands_small_pieces_to_the_background():
    from tpn_cli.mask_tracker import drop_specks
    ids = np.zeros((30, 40), np.uint8)
    ids[2:22, 2:22] = 1      # object 1: 400 px …
    ids[25:27, 30:32] = 1    # … and a 4 px speck
    ids[2:4, 30:32] = 2      # object 2: its only piece stays, however small
    probs = torch.from_numpy(np.stack([ids == k for k in range(3)]).astype(np.float32)) * 0.8 + 0.2 / 3
    out = drop_specks(probs, 0.05)
    got = out.argmax(0).numpy()
    assert (got[25:27, 30:32] == 0).all() and (got[2:22, 2:22] == 1).all() and (got[2:4, 30:32] == 2).all()
    torch.testing.assert_close(out.sum(0), probs.sum(0))
    assert drop_specks(probs, 0.0005) is probs  # nothing to drop: unchanged


def test_anchor_confidence_is_one_where_the_flows_agree():
    from tpn_cli.mask_tracker import anchor_confidence
    zero = np.zeros((8, 10, 2), np.float32)
    shift = zero.copy()
    shift[..., 0] = 2.0
    torch.testing.assert_close(anchor_confidence(zero, zero, 1.0), torch.ones(8, 10))
    # frame → key says +2 px, key → frame says 0: 2 px off, exp(-2)
    c = anchor_confidence(shift, zero, 1.0)
    torch.testing.assert_close(c, torch.full((8, 10), float(np.exp(-2.0))))


def test_anchor_brings_back_an_object_the_chain_lost():
    frames, masks = _moving_square(n=3, step=0)  # a still scene: the direct flow holds
    for anchor, want in ((0.0, False), (1.0, True)):
        prop = MaskPropagator(None, appearance=0, anchor=anchor)
        prop.start(frames[0], _probs(masks[0]))
        prop.probs = _probs(np.zeros_like(masks[0]))  # the chain lost the object
        pred = prop.step(frames[1]).argmax(0).numpy() > 0
        iou = (pred & (masks[1] > 0)).sum() / max(1, (pred | (masks[1] > 0)).sum())
        assert (iou > 0.8) == want, (anchor, iou)


def test_guided_smooth_moves_a_misplaced_edge_onto_the_frames_edge():
    from tpn_cli.mask_tracker import guided_smooth
    gray = np.full((20, 40), 40, np.uint8)
    gray[:, 20:] = 200                  # the frame's edge: column 20
    fg = np.zeros((20, 40), np.float32)
    fg[:, 21:] = 1.0                    # the chained mask's edge: one column late
    probs = torch.from_numpy(np.stack([1.0 - fg, fg]))
    out = guided_smooth(probs, gray, radius=4, eps=1e-3)
    ids = out.argmax(0).numpy()
    assert (ids[:, 20:] == 1).all() and (ids[:, :20] == 0).all()
    torch.testing.assert_close(out.sum(0), torch.ones(20, 40))


def test_refine_changes_the_output_but_not_what_the_chain_carries():
    frames, masks = _moving_square(n=3)
    props = [MaskPropagator(None, refine=r) for r in (0, 4)]
    outs = []
    for prop in props:
        prop.start(frames[0], _probs(masks[0]))
        outs.append([prop.step(f) for f in frames[1:]])
    for plain, refined in zip(*outs):
        assert not torch.equal(plain, refined)
    torch.testing.assert_close(props[0].probs, props[1].probs)
    torch.testing.assert_close(props[0].probs, outs[0][-1])


def test_pixel_classifier_tells_texture_from_flat_colour():
    from tpn_cli.mask_tracker import PixelClassifier
    rng = np.random.default_rng(1)
    h, w = 60, 80
    img = np.full((h, w, 3), 0.5, np.float32)
    red = np.array([0.8, 0.1, 0.1], np.float32)
    img[20:45, 10:35] = red + 0.15 * rng.standard_normal((25, 25, 1)).astype(np.float32)  # textured object
    img[20:45, 50:70] = red                                                               # flat, same colour
    m = np.zeros((h, w), np.uint8)
    m[20:45, 10:35] = 1
    rgb = torch.from_numpy(img.clip(0, 1)).permute(2, 0, 1)
    state = torch.get_rng_state()
    clf = PixelClassifier(rgb, _probs(m), local=40)
    assert torch.equal(state, torch.get_rng_state())  # the global random state untouched
    q = clf.likelihood(rgb, torch.ones(h, w, dtype=torch.bool))
    torch.testing.assert_close(q.sum(0), torch.ones(h, w), atol=2e-3, rtol=0)
    assert q[1, 24:41, 14:31].mean() > 0.8 and q[1, 24:41, 54:66].mean() < 0.2
    again = PixelClassifier(rgb, _probs(m), local=40).likelihood(rgb, torch.ones(h, w, dtype=torch.bool))
    torch.testing.assert_close(q, again)  # deterministic


def test_pixel_classifier_is_not_fitted_to_a_tiny_object():
    frames, masks = _moving_square()
    prop = MaskPropagator(None)
    prop.start(frames[0], _probs(masks[0]))  # 400 px: fitted
    assert prop.pixel_model is not None
    small = np.zeros_like(masks[0])
    small[20:25, 20:25] = 1                  # 25 px: memorised, not learnt
    prop.start(frames[0], _probs(small))
    assert prop.pixel_model is None


def test_pixel_classifier_refit_follows_a_changed_appearance():
    from tpn_cli.mask_tracker import PixelClassifier
    rng = np.random.default_rng(2)
    h, w = 60, 80
    m = np.zeros((h, w), np.uint8)
    m[20:45, 10:35] = 1
    img0 = np.full((h, w, 3), 0.5, np.float32)
    img0[20:45, 10:35] = np.array([0.8, 0.1, 0.1]) + 0.1 * rng.standard_normal((25, 25, 1))
    img1 = img0.copy()
    img1[20:45, 10:35] = np.array([0.1, 0.2, 0.8]) + 0.1 * rng.standard_normal((25, 25, 1))  # turned blue
    rgb0 = torch.from_numpy(img0.clip(0, 1)).permute(2, 0, 1).float()
    rgb1 = torch.from_numpy(img1.clip(0, 1)).permute(2, 0, 1).float()
    everywhere = torch.ones(h, w, dtype=torch.bool)
    clf = PixelClassifier(rgb0, _probs(m), local=40)
    before = clf.likelihood(rgb1, everywhere)[1, 24:41, 14:31].mean()
    assert not clf.refit(rgb1, _probs(np.zeros_like(m)), margin=2)  # no sure object pixels: refused
    assert torch.equal(clf.likelihood(rgb1, everywhere)[1, 24:41, 14:31].mean(), before)
    assert clf.refit(rgb1, _probs(m), margin=2, mix=0.5)
    after = clf.likelihood(rgb1, everywhere)
    assert after[1, 24:41, 14:31].mean() > max(0.8, before)
    assert clf.likelihood(rgb0, everywhere)[1, 24:41, 14:31].mean() > 0.8  # the mask frame still holds
    clf.refit(rgb1, _probs(m), margin=2, mix=0.5)  # restarts from the mask-frame fit: same result
    torch.testing.assert_close(clf.likelihood(rgb1, everywhere), after)


def test_pixel_features_given_once_equal_features_computed():
    """The chain computes a frame's features once for the fuse and the refit: passing them
    must change nothing."""
    from tpn_cli.mask_tracker import PixelClassifier, pixel_features
    rng = np.random.default_rng(3)
    frames, masks = [], []
    for x0 in (10, 14):  # a 25 x 25 textured object: enough sure pixels for a refit
        img = np.full((60, 80, 3), 0.5, np.float32)
        img[20:45, x0:x0 + 25] = np.array([0.8, 0.1, 0.1]) + 0.1 * rng.standard_normal((25, 25, 1))
        m = np.zeros((60, 80), np.uint8)
        m[20:45, x0:x0 + 25] = 1
        frames.append(torch.from_numpy(img.clip(0, 1)).permute(2, 0, 1).float())
        masks.append(m)
    everywhere = torch.ones(frames[0].shape[1:], dtype=torch.bool)
    clf = PixelClassifier(frames[0], _probs(masks[0]), local=40)
    feats = pixel_features(frames[1])
    torch.testing.assert_close(clf.likelihood(frames[1], everywhere, feats),
                               clf.likelihood(frames[1], everywhere), atol=0, rtol=0)
    assert clf.refit(frames[1], _probs(masks[1]), margin=2, features=feats)
    with_feats = clf.likelihood(frames[1], everywhere)
    assert clf.refit(frames[1], _probs(masks[1]), margin=2)
    torch.testing.assert_close(clf.likelihood(frames[1], everywhere), with_feats, atol=0, rtol=0)



def test_motion_fuse_hands_background_moving_pixels_to_the_background():
    from tpn_cli.mask_tracker import motion_fuse
    h, w = 60, 80
    m = np.zeros((h, w), np.uint8)
    m[20:40, 20:40] = 1  # the object, moving 6 px right
    m[20:30, 42:48] = 1  # a piece of background the chain took in, still like the background
    probs = normalise_probs(_probs(m) * 0.8 + 0.1)
    flow = np.zeros((h, w, 2), np.float32)
    flow[20:40, 20:40, 0] = -6.0  # frame → previous frame, as dis_flow
    out = motion_fuse(probs, flow, 0.5, 15, 2.0)
    assert (out[1, 20:40, 20:40] >= probs[1, 20:40, 20:40] - 1e-6).all()
    assert (out[1, 20:30, 42:48] < probs[1, 20:30, 42:48]).all()
    torch.testing.assert_close(out.sum(0), torch.ones(h, w))
    # an object moving with its background: no cue, unchanged
    assert motion_fuse(probs, np.zeros_like(flow), 0.5, 15, 2.0) is probs
