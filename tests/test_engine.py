"""The streaming engine: plan-following, blending, batching, the key cache, the key feed,
flat memory (slow), and examples/batch.sh."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from _cli_util import (DOG, ROOT, extract_keys, hdr_keys, models, one_thread,  # noqa: F401
                       run_tpn_process)
from tpn_cli import engine, keyframes
from tpn_cli.adapters import PreparedKey
from tpn_cli.media import VideoReader, VideoWriter
from tpn_cli.media.video import Frame


def test_work_shape():
    assert engine.work_shape(160, 90, 480) == (90, 160)        # never up-scaled
    assert engine.work_shape(1920, 1080, 480) == (480, 853)
    assert engine.work_shape(1080, 1920, 480) == (853, 480)    # portrait: short side is width
    assert engine.work_shape(1920, 1080, 0) == (1080, 1920)


class FakeAdapter:
    """Property of key k = the constant k; the 'model' is the identity, so a frame's
    result is the weighted mean of its keys' indices: the plan made visible."""

    needs_key_video_frame = True
    uses_sources = False

    def __init__(self):
        self.prepared = []

    def guide(self, rgb, ctx=None):
        return torch.zeros(1, 2, 2)

    def prepare_key(self, index, image, video):
        assert video is not None and video[0, 0, 0] == index  # the feed gave frame `index`
        self.prepared.append(index)
        return PreparedKey(index, torch.full((1, 2, 2), float(index)), torch.zeros(1, 2, 2), exact=-1.0)

    def finish(self, rgb, u, key, ctx=None):
        return key.exact if key is not None else float(u.mean())


class FakeModel:
    """Stands in for the TPN: ``fn`` of the keys' property (default: the property
    itself); it does not align and has no key encoding."""

    config = SimpleNamespace(task="fake", extra={})

    def __init__(self, fn=lambda u: u.clone()):
        self.fn = fn

    def __call__(self, u, v_key, v_tgt):
        return self.fn(u)


def _run(n, keys, mode, adapter=None, fn=lambda u: u.clone(), **kw):
    """engine.stream_from_keys on ``n`` fake frames with key-frames ``keys`` under ``mode``."""
    from tpn_cli.propagator import KeyPropagator

    kw.setdefault("key_feed", engine.KeyFrameFeed(lambda: _frames(n)))
    kw.setdefault("sinks", [Collect()])
    return engine.stream_from_keys(frames=_frames(n), assignments=keyframes.iter_plan(n, keys, mode),
                      propagator=KeyPropagator(adapter or FakeAdapter(), FakeModel(fn)),
                      load_key=lambda k: None, quiet=True, **kw)


def _frames(n):
    return (Frame(i, np.full((2, 2, 3), i, np.uint8), i, i / 25) for i in range(n))


class Collect:
    def __init__(self):
        self.got = []

    def write(self, frame, result):
        self.got.append((frame.index, result))


@pytest.mark.parametrize("batch", [1, 3, 64])
@pytest.mark.parametrize("mode", ["online", "nearest", "blend"])
def test_run_follows_the_plan(batch, mode):
    n, keys = 23, [2, 10, 17]
    adapter, sink, calls = FakeAdapter(), Collect(), []

    def predict(u):
        calls.append(len(u))
        return u.clone()

    opened = []

    def frames():
        opened.append(1)
        return _frames(n)

    stats = _run(n, keys, mode, adapter, predict, sinks=[sink], batch_size=batch,
                 key_feed=engine.KeyFrameFeed(frames))
    assert [i for i, _ in sink.got] == list(range(n)) and stats.frames == n
    for (i, got), a in zip(sink.got, keyframes.plan(n, keys, mode)):
        if i in keys:
            assert got == -1.0  # a key-frame is output from the key itself
        else:
            assert got == pytest.approx(sum(k * w for k, w in a.sources))
    assert adapter.prepared == keys  # each key prepared once, in order
    assert len(opened) == 1  # one forward pass of the key feed
    assert max(calls) <= batch


@pytest.mark.parametrize("pipeline", [False, True])
def test_key_cache_is_bounded(pipeline):
    """A plan with many keys never holds more than the two around the current frame
    (sequential), or those of the few batches in flight (pipelined): not growing with n."""
    n = 200
    keys = list(range(0, n, 5))
    sizes = []

    class Watch(FakeAdapter):
        def finish(self, rgb, u, key, ctx=None):
            sizes.append(len(self.prepared) - len(dropped))
            return super().finish(rgb, u, key)

    dropped: list[int] = []
    adapter = Watch()
    import gc
    import weakref

    real_prepare = adapter.prepare_key

    def prepare(index, image, video):
        k = real_prepare(index, image, video)
        weakref.finalize(k, dropped.append, index)
        return k

    adapter.prepare_key = prepare
    _run(n, keys, "blend", adapter, lambda u: u, batch_size=4, pipeline=pipeline)
    gc.collect()
    # sequential: keys of one batch (<= 4 frames) plus the next one; pipelined: up to
    # about 7 batches between preparation and output (queues of 2 + one in each stage)
    assert max(sizes) <= (4 if not pipeline else 12)


def test_batch_script_skips_done_and_reports_failures(tmp_path, models):
    videos, keys_root, out = tmp_path / "videos", tmp_path / "keys", tmp_path / "out"
    videos.mkdir()
    for name in ("a", "b"):
        (videos / f"{name}.mp4").write_bytes(DOG.read_bytes())
        extract_keys(DOG, keys_root / name, [0])
    (videos / "broken.mp4").write_bytes(b"not a video")
    (keys_root / "broken").mkdir()
    env = dict(os.environ, OMP_NUM_THREADS="1",
               TPN=f"{sys.executable} -m tpn_cli")
    cmd = ["bash", str(ROOT / "examples" / "batch.sh"), str(videos), str(keys_root), str(out),
           "--weights", str(models["colour"]), "-q"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 1, r.stderr
    assert "failed: broken.mp4" in r.stderr and "done: 2" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["a_color.mp4", "b_color.mp4"]
    (videos / "broken.mp4").unlink()  # fixed by the user; run again: finished ones are skipped
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert "skip  a.mp4" in r.stdout and "skip  b.mp4" in r.stdout
    assert r.returncode == 0 and "failed: 0" in r.stdout


# ----------------------------------------------------------------------------------------
# slow: peak memory does not grow with the clip's length
# ----------------------------------------------------------------------------------------
def _long_clip(path, n):
    frames = [f.image for f in VideoReader(DOG).frames()]
    with VideoWriter(path, width=160, height=90, fps=Fraction(25), preset="ultrafast",
                     copy_streams_from=None) as w:
        for i in range(n):
            w.write(frames[(i // 3) % 12])
    return path


@pytest.mark.slow
@pytest.mark.parametrize("task", ["colour", "hdr", "segment"])
def test_peak_memory_flat_from_100_to_1000_frames(tmp_path, models, task):
    from PIL import Image

    from tpn_cli.media.masks import write_mask
    peaks = {}
    for n in (100, 1000):
        clip = _long_clip(tmp_path / f"c{n}.mp4", n)
        out = tmp_path / f"out{n}"
        keys_at = list(range(0, n, 10))
        if task == "colour":
            args = ["colorize", clip, "--keyframes", extract_keys(clip, tmp_path / f"k{n}", keys_at),
                    "--mode", "blend"]
        elif task == "hdr":
            args = ["hdr", clip, "--hdr-keys", hdr_keys(clip, tmp_path / f"k{n}", keys_at), "--mode", "blend"]
        else:
            ids = np.zeros((90, 160), np.uint8)
            ids[20:60, 40:100] = 1
            ids[10:30, 110:150] = 2
            write_mask(tmp_path / f"m{n}_00000.png", ids)
            args = ["segment", clip, "--mask", tmp_path / f"m{n}_00000.png"]
        r = run_tpn_process(*args, "--weights", models[task], "-o", out, "--json", "--no-audio"
                            if task != "segment" else "--quiet")
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        assert summary["frames"] == n
        assert len(os.listdir(out)) == n
        peaks[n] = summary["peak_memory_mb"]
    print(f"{task}: peak memory 100 frames {peaks[100]:.0f} MB, 1000 frames {peaks[1000]:.0f} MB")
    assert peaks[1000] < peaks[100] + 40


def test_out_of_memory_maps_to_exit_5():
    from tpn_cli.errors import OutOfMemoryError

    def predict(u):
        raise MemoryError

    with pytest.raises(OutOfMemoryError) as info:
        _run(5, [0], "online", fn=predict)
    assert info.value.exit_code == 5 and "--batch-size" in info.value.hint


def test_every_command_has_help_with_an_example():
    from _cli_util import run_cli

    for cmd in (["colorize"], ["hdr"], ["segment"], ["extract"], ["weights", "download"],
                ["weights", "list"], ["weights", "path"], ["weights", "verify"]):
        code, out, _ = run_cli(*cmd, "--help")
        assert code == 0 and "Example" in out, cmd


def test_pipeline_keeps_order_and_matches_sequential():
    """Stages that take uneven time still hand results over in frame order, and the
    threaded run gives exactly what the sequential one gives."""
    import random
    import time as _time

    n, keys = 41, [0, 9, 30]
    rng = random.Random(0)

    def predict(u):
        _time.sleep(rng.random() * 0.004)
        return u * 2

    got = {}
    for pipeline in (False, True):
        sink = Collect()
        _run(n, keys, "blend", fn=predict, sinks=[sink], batch_size=3, pipeline=pipeline)
        got[pipeline] = sink.got
    assert [i for i, _ in got[True]] == list(range(n))
    assert got[True] == got[False]


def test_pipeline_passes_errors_and_stops():
    """An error in any stage reaches the caller (and no thread is left running)."""
    import threading

    def predict(u):
        raise ValueError("boom")

    before = threading.active_count()
    with pytest.raises(ValueError, match="boom"):
        _run(30, [0], "online", fn=predict)
    assert threading.active_count() == before


def test_real_model_pipeline_is_identical_to_sequential(tmp_path, models):
    """The CLI's threaded run writes the same frames, bit for bit, as --no-pipeline
    (a flow-aligned colour model: alignment, key codes and conversions all exercised)."""
    from _cli_util import run_cli
    from tpn_cli.media import read_image
    from tpn_cli.models import TPN, save_model, task_config

    torch.manual_seed(0)
    m = TPN(task_config("colour", unet_base=4, unet_depth=2, encoder="signed", scale=2,
                        extra={"align": True}))
    torch.nn.init.normal_(m.guidance.head.weight, std=0.05)  # gates that propagate
    save_model(m, tmp_path / "aligned.pt")
    keys = extract_keys(DOG, tmp_path / "keys", [0, 7])
    outs = {}
    for flag in ([], ["--no-pipeline"]):
        out = tmp_path / f"out{len(flag)}"
        code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", tmp_path / "aligned.pt",
                               "-o", out, "-q", "--batch-size", "3", *flag)
        assert code == 0, err
        outs[bool(flag)] = [read_image(p) for p in sorted(out.iterdir())]
    assert len(outs[True]) == len(outs[False]) == 12
    for a, b in zip(outs[True], outs[False]):
        assert np.array_equal(a, b)
    # and the frames carry colour (the gates did something, the frames are in order)
    src = [f.image for f in VideoReader(DOG).frames()]
    diffs = [np.abs(a.astype(int) - s).mean() for a, s in zip(outs[True], src)]
    assert diffs[0] < 1.0 and diffs[7] < 1.0


def test_colour_working_size_defaults_and_key_guide_consistency():
    """colorize works at 240 by default (hdr, segment at 480; --work-size wins), and at a
    working size below the frame's a key-frame's guidance equals the same image's frame
    guidance, so the network compares like with like."""
    from pathlib import Path

    from tpn_cli.adapters import ColourAdapter
    from tpn_cli.runs import Options, _work_short_side

    assert _work_short_side(Options(task="colour", input=Path("a"), keys=Path("b"))) == 240
    assert _work_short_side(Options(task="hdr", input=Path("a"), keys=Path("b"))) == 480
    assert _work_short_side(Options(task="segment", input=Path("a"), keys=Path("b"))) == 480
    assert _work_short_side(Options(task="colour", input=Path("a"), keys=Path("b"), work_size=0)) == 0
    rgb = next(VideoReader(DOG).frames()).image
    ad = ColourAdapter(engine.work_shape(160, 90, 45), "cpu")
    v, key = ad.guide(rgb), ad.prepare_key(0, rgb)
    assert v.shape == key.v.shape == (1, 45, 80)
    assert torch.allclose(v, key.v, atol=5e-4)  # a frame's L from a table in 1/16-code steps
    assert key.exact.shape == (2, 90, 160)  # the key's own frame keeps its full-size colour
    # a key-frame comes back as itself; a float frame (library use) the same, in 8 bits
    assert np.abs(ad.finish(rgb, None, key).astype(int) - rgb).max() <= 2
    u = torch.randn(2, 45, 80) * 0.1
    as_float = ad.finish(rgb.astype(np.float32) / 255, u, None)
    assert as_float.dtype == np.uint8 and np.abs(as_float.astype(int) - ad.finish(rgb, u, None)).max() <= 1


def test_hdr_finish_is_the_fusion_of_the_frame_and_each_key():
    """The HDR adapter's output is tpn_cli.hdr_fusion.fuse_keys of the frame's f⁻¹ (its
    variance per code) and each key's map up-sampled in the log domain, with the floor at
    the code below the clip; one map alone when no key maps are given."""
    from tpn_cli import camera_response, hdr_fusion
    from tpn_cli.adapters import HdrAdapter, resize

    rgb = next(VideoReader(DOG).frames()).image.copy()
    rgb[:10, :10] = 255  # clipped
    rgb[10:20, :10] = 236  # below the clip
    ad = HdrAdapter((45, 80), "cpu")
    torch.manual_seed(0)
    maps = [torch.randn(3, 45, 80) * 2, torch.randn(3, 45, 80)]
    r = ad.response
    full = [resize(m, rgb.shape[:2]).numpy() for m in maps]

    def planes(x):
        return np.ascontiguousarray(np.asarray(x).transpose(2, 0, 1))

    want = hdr_fusion.fuse_keys(planes(camera_response.levels(rgb)), planes(r.log_radiance(rgb)),
                                planes(r.variance(rgb)), full, r.log_table[:, camera_response.LEVELS - 2])
    got = ad.finish(rgb, None, None, key_maps=maps)
    assert got.dtype == np.float32 and got.shape == rgb.shape
    assert np.allclose(got, np.exp(want).transpose(1, 2, 0) - 0.01, rtol=1e-5, atol=1e-6)
    one = ad.finish(rgb, maps[0], None)
    assert np.allclose(one, ad.finish(rgb, None, None, key_maps=maps[:1]))
    # key_flows: each key's full-size log radiance warped here (a zero flow: the key as it
    # is, at full size, not through the working size)
    rad = np.random.default_rng(0).uniform(0, 4, rgb.shape).astype(np.float32)
    key = ad.prepare_key(0, rad, rgb)
    zero = np.zeros((45, 80, 2), np.float32)
    got = ad.finish(rgb, None, None, key_flows=[(key, zero)])
    want = hdr_fusion.fuse_keys(planes(camera_response.levels(rgb)), planes(r.log_radiance(rgb)),
                                planes(r.variance(rgb)), [np.log(planes(rad) + 0.01)],
                                r.log_table[:, camera_response.LEVELS - 2])
    assert np.allclose(got, np.exp(want).transpose(1, 2, 0) - 0.01, rtol=1e-5, atol=1e-6)


def test_timing_sections_are_exclusive_and_reported(tmp_path):
    """The timing hook counts nested sections once (the outer one without the inner),
    and a CLI run with TPN_TIMING writes the parts of the run."""
    import time as _time

    from tpn_cli import timing

    was = timing.enabled()
    timing.enable()
    timing.reset()
    try:
        t0 = _time.perf_counter()
        with timing.section("outer"):
            _time.sleep(0.02)
            with timing.section("inner"):
                _time.sleep(0.03)
        total = _time.perf_counter() - t0
        r = timing.report()
    finally:
        timing.reset()
        if not was:
            timing.disable()
    assert r["outer"]["calls"] == 1 and r["inner"]["calls"] == 1
    # exclusive: outer + inner is the whole time, however late a busy machine wakes the sleeps
    assert r["outer"]["wall"] >= 0.02 and r["inner"]["wall"] >= 0.03
    assert abs(r["outer"]["wall"] + r["inner"]["wall"] - total) < 0.005

    from _cli_util import run_cli, tiny_model

    model = tiny_model(tmp_path / "c.pt", "colour")
    keys = extract_keys(DOG, tmp_path / "keys", [0])
    report = tmp_path / "t.json"
    code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", model, "-o",
                           tmp_path / "o", "-q", env={"TPN_TIMING": str(report)})
    if not was:
        timing.disable()
    assert code == 0, err
    parts = json.loads(report.read_text())
    assert {"decode", "network", "scan", "colour", "encode"} <= set(parts)


def test_colour_flow_mix_adds_the_flow_baseline():
    """A flow-aligned model's colour is (1 − m)·TPN + m·flow: the flow part brings a key
    onto its own frame unchanged, and finish() mixes it in only when given the sources."""
    from tpn_cli.adapters import ColourAdapter

    frames = [f.image for f in VideoReader(DOG).frames(0, 4)]
    work = engine.work_shape(160, 90, 45)
    mixed, plain = ColourAdapter(work, "cpu", flow_mix=0.3), ColourAdapter(work, "cpu")
    key = mixed.prepare_key(0, frames[0])
    own = mixed.flow_prediction(mixed._full_L(frames[0], None), [(key, 1.0)])
    assert (own - key.exact).abs().max() < 1.0  # ab units: no motion, no change
    u = plain.prepare_key(0, frames[0]).u
    with_flow = mixed.finish(frames[3], u, None, sources=[(key, 1.0)])
    without = plain.finish(frames[3], u, None)
    assert np.abs(with_flow.astype(int) - without).max() > 0
    assert np.array_equal(mixed.finish(frames[3], u, None), without)  # no sources: no flow part
    # two keys: the flow part is their blend, between the two single-key parts (up to
    # the edge-aware fill, which moves colour between neighbouring pixels where the keys
    # fit less than fully)
    key3 = mixed.prepare_key(3, frames[3])
    L = mixed._full_L(frames[2], None)
    both = mixed.flow_prediction(L, [(key, 0.4), (key3, 0.6)], {"L": L, "index": 2})
    one, three = mixed.flow_prediction(L, [(key, 1.0)]), mixed.flow_prediction(L, [(key3, 1.0)])
    inside = (both >= torch.minimum(one, three) - 0.5) & (both <= torch.maximum(one, three) + 0.5)
    assert inside.float().mean() > 0.99
