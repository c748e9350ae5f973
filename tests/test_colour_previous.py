"""The colour flow part's previous-frame candidate (ColourAdapter.RECURSIVE_SHARE): a frame
finished just before, under a common key-frame, feeds the next one; nothing else does."""
from __future__ import annotations

import time

import numpy as np
import torch

from _cli_util import DOG
from tpn_cli import colour, engine, keyframes
from tpn_cli.adapters import ColourAdapter
from tpn_cli.media import VideoReader
from tpn_cli.media.video import Frame
from tpn_cli.propagator import KeyPropagator

KEYS = [0, 8]


def _propagator(frames):
    """`tpn colorize --no-tpn`'s propagator with the frames' own colour as keys at KEYS,
    and the blend plan {frame: assignment}."""
    h, w = frames[0].shape[:2]
    prop = KeyPropagator(ColourAdapter(engine.work_shape(w, h, 240), "cpu", flow_mix=1.0), None)
    for k in KEYS:
        prop.set_key(k, frames[k])
    return prop, {a.frame: a for a in keyframes.plan(len(frames), KEYS, "blend")}


def _outputs(frames, wanted, monkeypatch=None, share=None):
    """`tpn colorize --no-tpn`'s adapter on ``frames`` (keys: the frames' own colour at
    KEYS), predicting the ``wanted`` frames in order; {frame: RGB}."""
    if share is not None:
        monkeypatch.setattr(ColourAdapter, "RECURSIVE_SHARE", share)
    prop, plan = _propagator(frames)
    with torch.inference_mode():
        return {t: prop.predict(t, frames[t], plan[t].sources) for t in wanted}


def test_the_frame_before_feeds_the_next_one_only_when_just_finished(monkeypatch):
    frames = [f.image for f in VideoReader(DOG).frames(0, 9)]
    chained = _outputs(frames, range(6))
    alone = _outputs(frames, [5])
    after_gap = _outputs(frames, [3, 5])
    # frame 5 after 0..4 uses frame 4's colour; predicted alone, or after a gap, it cannot
    assert not np.array_equal(chained[5], alone[5])
    assert np.array_equal(after_gap[5], alone[5])
    # and the previous frame is the only state: without it, order does not matter
    plain = _outputs(frames, range(6), monkeypatch, share=0.0)
    assert np.array_equal(plain[5], _outputs(frames, [5], monkeypatch, share=0.0)[5])
    assert not np.array_equal(plain[5], chained[5])


def test_the_frame_before_does_not_cross_a_shot_cut():
    """A previous frame fed by other key-frames (another shot) is not a candidate."""
    frames = [f.image for f in VideoReader(DOG).frames(0, 9)]
    h, w = frames[0].shape[:2]
    adapter = ColourAdapter(engine.work_shape(w, h, 240), "cpu", flow_mix=1.0)
    key = adapter.prepare_key(8, frames[8])
    L, gray, ab = np.zeros((h, w), np.float32), np.zeros((h, w), np.uint8), torch.zeros(2, h, w)
    adapter._remember(4, frozenset([0]), L, gray, ab)
    assert adapter._previous_view(5, [key]) is None  # fed by key 8 only: another shot
    adapter._remember(4, frozenset([0, 8]), L, gray, ab)
    assert adapter._previous_view(5, [key]) is not None
    assert adapter._previous_view(6, [key]) is None  # not the frame just before


def test_the_flows_and_keys_part_are_ready_after_the_prepare_step():
    """KeyPropagator.prepare_frame starts the flow part's work that needs only the input
    frames (the flows to the keys and between neighbours, the keys' blend), so the chain
    and output steps only carry and blend."""
    frames = [f.image for f in VideoReader(DOG).frames(0, 9)]
    prop, plan = _propagator(frames)
    first = prop.prepare_frame(1, frames[1], plan[1].sources)  # after a key-frame: keys only
    second = prop.prepare_frame(2, frames[2], plan[2].sources)
    keys = [prop.keys[0], prop.keys[8]]
    for pred in (first, second):
        prop.adapter._key_part(pred.target.ctx, keys)  # waits for the background work
        assert "key_part" in pred.target.ctx and "preparing" not in pred.target.ctx
    # the keys' flows are used up; frame 1 → 2 is ready for the backward pass, 2 → 1 forwards
    assert set(first.target.ctx["flows"]) == {"next"}
    assert set(second.target.ctx["flows"]) == {"previous"}


# -- the backward pass: the colour of the next key-frame carried back -------------------------
class _Collect:
    def __init__(self):
        self.out = {}

    def write(self, frame, result):
        self.out[frame.index] = result


def _streamed(frames, keys=KEYS, monkeypatch=None, ahead=None, pipeline=False):
    """`tpn colorize --no-tpn --mode blend` on ``frames`` through the frame loop (which
    hands the adapter the frames between two keys for its backward pass); {frame: RGB}."""
    if ahead is not None:
        monkeypatch.setattr(ColourAdapter, "AHEAD_SHARE", ahead)
    h, w = frames[0].shape[:2]
    prop = KeyPropagator(ColourAdapter(engine.work_shape(w, h, 240), "cpu", flow_mix=1.0), None)
    sink = _Collect()
    engine.stream_from_keys(frames=iter([Frame(i, f, None, None) for i, f in enumerate(frames)]),
                            assignments=iter(keyframes.plan(len(frames), keys, "blend")),
                            propagator=prop, load_key=lambda k: frames[k], sinks=[sink],
                            batch_size=2, quiet=True, pipeline=pipeline)
    return sink.out


def test_the_next_key_frames_colour_is_carried_back(monkeypatch):
    frames = [f.image for f in VideoReader(DOG).frames(0, 12)]
    both = _streamed(frames)
    forward_only = _streamed(frames, monkeypatch=monkeypatch, ahead=0.0)
    # frames between the keys 0 and 8 see colour carried back from 8 (the frame just
    # before 8 the key itself, carried one frame); frames after the last key do not
    assert all(not np.array_equal(both[t], forward_only[t]) for t in range(1, 8))
    assert all(np.array_equal(both[t], forward_only[t]) for t in [0, 8, 9, 10, 11])


def test_the_output_meets_a_key_frame_without_a_step(monkeypatch):
    """Colour carried from the far side counts less next to a key (KEY_RAMP): the chroma
    change from a key-frame to the frames beside it is smaller than with full shares."""
    frames = [f.image for f in VideoReader(DOG).frames(0, 12)]
    ramped = _streamed(frames)
    monkeypatch.setattr(ColourAdapter, "KEY_RAMP", 0)
    full = _streamed(frames)

    def step(out, a, b):
        return np.abs(colour.chroma_image(out[a]) - colour.chroma_image(out[b])).mean()
    assert step(ramped, 0, 1) < step(full, 0, 1) and step(ramped, 8, 7) < step(full, 8, 7)


def test_pipelined_stages_give_the_sequential_result():
    """Chains in their own stage, frames output two at a time, encoding apart: the same
    frames as one step after the other."""
    frames = [f.image for f in VideoReader(DOG).frames(0, 12)]
    a, b = _streamed(frames, keys=[0, 5, 11]), _streamed(frames, keys=[0, 5, 11], pipeline=True)
    assert sorted(a) == sorted(b) == list(range(12))
    assert all(np.array_equal(a[t], b[t]) for t in range(12))


def test_at_most_two_batches_hold_their_prepared_frames(monkeypatch):
    """With a backward pass a batch (the frames between two keys, with their flows and
    blends) is large: the prepare stage waits while two are prepared and not yet output,
    however slow the output."""
    frames = [f.image for f in VideoReader(DOG).frames(0, 12)]
    live, most = [0], [0]
    prepare, chain = KeyPropagator.prepare_frame, KeyPropagator.chain

    def counted_prepare(self, index, image, sources):
        if any(k == index for k, _ in sources):  # a batch opens at each key
            live[0] += 1
            most[0] = max(most[0], live[0])
        return prepare(self, index, image, sources)

    def slow_chain(self, preds):
        time.sleep(0.3)
        chain(self, preds)
        live[0] -= 1  # its frames are output next; released after them

    monkeypatch.setattr(KeyPropagator, "prepare_frame", counted_prepare)
    monkeypatch.setattr(KeyPropagator, "chain", slow_chain)
    out = _streamed(frames, keys=[0, 2, 4, 6, 8, 11], pipeline=True)
    assert sorted(out) == list(range(12))
    assert most[0] == 2


def test_the_backward_pass_sees_only_the_frames_up_to_the_next_key():
    """Frames after the next key-frame (here: a different clip) change nothing before it."""
    frames = [f.image for f in VideoReader(DOG).frames(0, 12)]
    other = frames[:9] + [np.ascontiguousarray(f[::-1]) for f in frames[9:]]
    a, b = _streamed(frames), _streamed(other)
    assert all(np.array_equal(a[t], b[t]) for t in range(9))


def test_batches_close_before_key_frames_when_the_adapter_looks_ahead():
    plan = keyframes.plan(20, [0, 8, 19], "blend")
    batching = engine.Batching(4)
    by_pairs = [a.frame for a in plan if batching.starts(a)]
    assert by_pairs == [0, 3, 5, 7, 10, 12, 14, 16, 18]  # 4 pairs (a key-frame has one)
    # looking ahead: a batch starts at each key-frame, and after 5 frames
    batching = engine.Batching(4, ahead=5)
    assert [a.frame for a in plan if batching.starts(a)] == [0, 5, 8, 13, 18, 19]


def test_large_frames_run_the_flow_part_at_its_size(monkeypatch):
    """Above FLOW_SHORT_SIDE the flow part (keys, flows, chains, fill) runs at that short
    side and its colour comes back to the frame's size guided by L: close to the colour
    made at full size, and the same rule for every piece (keys and frames alike)."""
    frames = [f.image for f in VideoReader(DOG).frames(0, 9)]  # 160 × 90
    full = _streamed(frames)
    monkeypatch.setattr(ColourAdapter, "FLOW_SHORT_SIDE", 60)
    adapter = ColourAdapter(engine.work_shape(160, 90, 240), "cpu", flow_mix=1.0)
    assert adapter._flow_size((90, 160)) == (60, 107) and adapter._flow_size((45, 80)) == (45, 80)
    assert adapter.prepare_key(0, frames[0]).flow_lcc.shape == (60, 107, 3)
    small = _streamed(frames)
    assert sorted(small) == list(range(9))
    for t in range(1, 8):
        assert small[t].shape == full[t].shape
        assert not np.array_equal(small[t], full[t])
        diff = np.abs(small[t].astype(np.float64) - full[t].astype(np.float64)).mean()
        assert diff < 1.2, (t, diff)  # 8-bit RGB: a fine difference, not another colour
    assert np.array_equal(small[0], full[0]) and np.array_equal(small[8], full[8])  # the keys' own
