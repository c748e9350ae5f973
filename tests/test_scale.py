"""tpn_cli.scale without Ray: segments of a run (cuts, seeking, chunks joined without
re-encoding) equal the local run, `tpn batch` with the local engine, and `--engine ray`
when Ray is not installed."""
from __future__ import annotations

import json
import sys
from fractions import Fraction

import numpy as np

from _cli_util import (DOG, VFR, extract_keys, models, one_thread, packets, run_cli,  # noqa: F401
                       two_shot_frames)
from tpn_cli import weights
from tpn_cli.media import VideoReader, VideoWriter, read_image
from tpn_cli.runs import Options, check_and_plan
from tpn_cli.scale import segments as sg


def _prepare(models, keys, out, *, video=DOG, **kw):
    return check_and_plan(Options(task="colour", input=video, keys=keys, output=out,
                           weights=str(models["colour"]), quiet=True, **kw))


def _segments_then_join(run, segment_frames, staging):
    """What a Ray run does, in this process: every segment, then the join."""
    model, _ = weights.load(run.opts.weights, "colour", device="cpu")
    model.for_inference(channels_last=True, precision="fp32")
    adapter = run.task.adapter(run, model)
    staging.mkdir()
    parts = sg.split(run, segment_frames)
    pts = sg.packet_pts(run.opts.input)
    timing = [sg.run_segment(run, s, staging, adapter, model, pts)[1] for s in parts]
    if run.kind == "video":
        sg.join_chunks(run, [(staging / sg.chunk_name(s, run.output), t) for s, t in zip(parts, timing)])
    return parts


def test_split_cuts_where_keys_change_at_batch_starts(tmp_path, models):
    keys = extract_keys(DOG, tmp_path / "keys", [0, 4, 8])
    run = _prepare(models, keys, tmp_path / "o", mode="online", batch_size=2)
    assert [(s.start, s.end) for s in sg.split(run, 4)] == [(0, 4), (4, 8), (8, 12)]
    assert [(s.start, s.end) for s in sg.split(run, 0)] == [(0, 12)]
    # colour batches hold the frames between two key-frames (the flow part's backward
    # pass), whatever the batch size: they start at key-frames, where the cuts fall
    run = _prepare(models, keys, tmp_path / "o", mode="online", batch_size=3)
    assert [(s.start, s.end) for s in sg.split(run, 4)] == [(0, 4), (4, 8), (8, 12)]
    # without it (partly painted keys) batches of 3 start at 0, 3, 6, 9: colour frames
    # continue the frame before (chains_frames), so cuts fall only on key-frames that
    # start a batch: none here
    run.task.partial_keys = {0}
    assert [(s.start, s.end) for s in sg.split(run, 4)] == [(0, 12)]
    one = _prepare(models, extract_keys(DOG, tmp_path / "k1", [0]), tmp_path / "o", batch_size=1)
    assert [(s.start, s.end) for s in sg.split(one, 3)] == [(0, 12)]
    # a task whose frames depend on their keys only: the key change at 4 is cut at the
    # next batch, 6; the one at 8 comes before the next segment holds 4 frames
    run.task.chains_frames = one.task.chains_frames = False
    one.task.partial_keys = {0}
    assert [(s.start, s.end) for s in sg.split(run, 4)] == [(0, 6), (6, 12)]
    # no key change: cut anyway at twice the size
    assert [(s.start, s.end) for s in sg.split(one, 3)] == [(0, 6), (6, 12)]


def test_seeking_gives_the_frames_of_decoding_from_the_start(tmp_path):
    path = tmp_path / "gop5.mp4"
    frames = two_shot_frames()
    with VideoWriter(path, width=160, height=90, fps=Fraction(25), crf=20, preset="ultrafast",
                     options={"g": "5", "bf": "2"}) as w:
        for f in frames:
            w.write(f)
    reader = VideoReader(path)
    whole = list(reader.frames())
    pts = sg.packet_pts(path)
    for start, end in [(0, 4), (3, 9), (5, 6), (11, 28), (27, 28)]:
        got = list(sg.seek_frames(reader, start, end, pts))
        assert [f.index for f in got] == list(range(start, end))
        for a, b in zip(got, whole[start:end]):
            assert a.pts == b.pts and np.array_equal(a.image, b.image)


def test_segments_equal_the_local_run(tmp_path, models):
    """Frames bit-identical; a lossless video decodes to the local run's frames, with the
    same timestamps and the audio copied once, bit-exact."""
    keys = extract_keys(DOG, tmp_path / "keys", [0, 4, 8])
    for out, extra in (("local", []), ("local.mkv", ["--codec", "ffv1"])):
        code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"],
                               "-o", tmp_path / out, "-q", "--mode", "online", "--batch-size", "2", *extra)
        assert code == 0, err
    run = _prepare(models, keys, tmp_path / "seg", mode="online", batch_size=2)
    assert len(_segments_then_join(run, 4, tmp_path / "seg")) == 3
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "seg").iterdir())
    for n in names:
        assert np.array_equal(read_image(tmp_path / "local" / n), read_image(tmp_path / "seg" / n))
    run = _prepare(models, keys, tmp_path / "seg.mkv", mode="online", batch_size=2, codec="ffv1")
    _segments_then_join(run, 4, tmp_path / "chunks")
    a, b = list(VideoReader(tmp_path / "local.mkv").frames()), list(VideoReader(tmp_path / "seg.mkv").frames())
    assert len(a) == len(b) == 12
    for x, y in zip(a, b):
        assert x.pts == y.pts and np.array_equal(x.image, y.image)
    assert packets(tmp_path / "seg.mkv", "audio") == packets(tmp_path / "local.mkv", "audio")


def test_joined_h264_keeps_timestamps(tmp_path, models):
    """x264 chunks: each starts with a key picture; the joined file keeps every pts and
    a variable frame rate's timing (decode order valid across the joins)."""
    keys = extract_keys(VFR, tmp_path / "keys", [0, 5])
    run = _prepare(models, keys, tmp_path / "vfr.mp4", video=VFR, mode="online", batch_size=1,
                   shot_detect=False)
    assert len(_segments_then_join(run, 3, tmp_path / "chunks")) >= 2
    src, out = list(VideoReader(VFR).frames()), list(VideoReader(tmp_path / "vfr.mp4").frames())
    assert [f.time for f in out] == [f.time for f in src]


def _jobs_csv(tmp_path, models, bad):
    keys = extract_keys(DOG, tmp_path / "keys", [0, 6])
    opts = f"--weights {models['colour']} --batch-size 2"
    rows = ["input,task,keys,output,options",
            f"{DOG},colorize,keys,a_color,{opts}",
            f"{bad},colorize,keys,b_color.mp4,{opts}",
            f"{DOG},colorize,{keys},c_color.mkv,{opts} --codec ffv1"]
    path = tmp_path / "jobs.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_batch_local_two_done_one_failed_then_skipped(tmp_path, models):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    jobs = _jobs_csv(tmp_path, models, bad)
    code, out, err = run_cli("batch", jobs, "--json")
    assert code == 7, err
    s = json.loads(out)
    assert (s["done"], s["skipped"], s["failed"]) == (2, 0, 1)
    failed = [j for j in s["jobs"] if j["status"] == "failed"]
    assert failed[0]["input"] == str(bad) and failed[0]["exit_code"] == 3
    assert "broken.mp4" in failed[0]["reason"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(("color", ".mp4", ".mkv"))) == \
        ["a_color", "broken.mp4", "c_color.mkv"]  # nothing of the failed job
    code, out, _ = run_cli("batch", jobs, "--json")
    s = json.loads(out)
    assert code == 7 and (s["done"], s["skipped"], s["failed"]) == (0, 2, 1)


def test_batch_jsonl_options_object(tmp_path, models):
    extract_keys(DOG, tmp_path / "keys", [0])  # named relative to the job list
    line = {"input": str(DOG), "task": "colour", "keys": "keys", "output": "o",
            "options": {"weights": str(models["colour"]), "mode": "online", "no_shot_detect": True}}
    (tmp_path / "j.jsonl").write_text(json.dumps(line) + "\n")
    code, out, err = run_cli("batch", tmp_path / "j.jsonl", "--json")
    assert code == 0, err
    assert json.loads(out)["done"] == 1 and len(list((tmp_path / "o").iterdir())) == 12
    (tmp_path / "bad.jsonl").write_text(json.dumps({"input": "x.mp4"}) + "\n")
    code, _, err = run_cli("batch", tmp_path / "bad.jsonl")
    assert code == 2 and "needs an input and a task" in err


def test_engine_ray_without_ray_names_the_extra(tmp_path, models, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    keys = extract_keys(DOG, tmp_path / "keys", [0])
    code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"],
                           "-o", tmp_path / "o", "--engine", "ray")
    assert code == 2 and 'pip install "tpn[ray]"' in err
    assert not (tmp_path / "o").exists()


def test_hdr_segments_equal_the_local_run(tmp_path, models):
    """HDR: the key guidance comes from frames decoded by seeking; EXR frames bit-identical."""
    from _cli_util import hdr_keys

    keys = hdr_keys(DOG, tmp_path / "keys", [0, 6])
    code, _, err = run_cli("hdr", DOG, "--hdr-keys", keys, "--weights", models["hdr"], "-o",
                           tmp_path / "local", "-q", "--mode", "online", "--batch-size", "2")
    assert code == 0, err
    run = check_and_plan(Options(task="hdr", input=DOG, keys=keys, output=tmp_path / "seg", mode="online",
                          weights=str(models["hdr"]), batch_size=2, quiet=True))
    model, _ = weights.load(run.opts.weights, "hdr", device="cpu")
    model.for_inference(channels_last=True, precision="fp32")
    adapter = run.task.adapter(run, model)
    (tmp_path / "seg").mkdir()
    parts = sg.split(run, 4)
    assert len(parts) == 2
    for s in parts:
        sg.run_segment(run, s, tmp_path / "seg", adapter, model)
    names = sorted(p.name for p in (tmp_path / "local").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "seg").iterdir()) and len(names) == 12
    for n in names:
        assert np.array_equal(read_image(tmp_path / "local" / n), read_image(tmp_path / "seg" / n))
