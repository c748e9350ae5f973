"""`--engine ray` and `tpn batch --engine ray` on a local Ray (2 CPUs) started here
(issue 16's acceptance): a 3-segment colour run equals the local run, a job list with a
bad input ends 2 done / 1 failed / exit 7, and a worker killed inside a segment is
restarted by Ray and the segment retried, the output complete."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from _cli_util import DOG, ROOT, extract_keys, models, one_thread, packets, run_cli  # noqa: F401
from tpn_cli.media import VideoReader, read_image
from tpn_cli.scale.segments import KILL_HOOK_ENV

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray with 2 CPUs for this module; the kill hook is disarmed (its marker
    exists) until a test removes the marker."""
    marker = tmp_path_factory.mktemp("hook") / "killed"
    marker.touch()
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
           KILL_HOOK_ENV: str(marker)}
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20,
             log_to_driver=False, runtime_env={"env_vars": env})
    yield marker
    ray.shutdown()


def _colorize(models, keys, out, *extra):
    return run_cli("colorize", DOG, "--keyframes", keys, "--weights", models["colour"], "-o", out,
                   "-q", "--mode", "online", "--batch-size", "2", *extra)


def _same_folders(a: Path, b: Path, n: int = 12) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) == n
    for n in names:
        assert np.array_equal(read_image(a / n), read_image(b / n)), n


@pytest.fixture(scope="module")
def local(tmp_path_factory, models):
    """The local runs to compare with: keys at 0, 4, 8 (online: three key regions)."""
    d = tmp_path_factory.mktemp("local")
    keys = extract_keys(DOG, d / "keys", [0, 4, 8])
    for out, extra in (("frames", []), ("video.mkv", ["--codec", "ffv1"])):
        code, _, err = _colorize(models, keys, d / out, *extra)
        assert code == 0, err
    return d


def test_three_segment_colour_run_equals_local(ray_cluster, local, tmp_path, models):
    out = tmp_path / "ray_frames"
    code, stdout, err = _colorize(models, local / "keys", out, "--engine", "ray", "--workers", "2",
                                  "--segment-frames", "4", "--json")
    assert code == 0, err
    s = json.loads(stdout)
    assert s["engine"] == "ray" and s["frames"] == 12
    assert [(g["start"], g["end"]) for g in s["segments"]] == [(0, 4), (4, 8), (8, 12)]
    _same_folders(local / "frames", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ray_frames"]  # no staging left


def test_batch_on_ray_two_done_one_failed(ray_cluster, local, tmp_path, models):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video" * 100)
    opts = f"--weights {models['colour']} --mode online --batch-size 2"
    (tmp_path / "jobs.csv").write_text("\n".join([
        "input,task,keys,output,options",
        f"{DOG},colorize,{local / 'keys'},v.mkv,{opts} --codec ffv1",
        f"{bad},colorize,{local / 'keys'},bad.mp4,{opts}",
        f"{DOG},colorize,{local / 'keys'},f,{opts}"]) + "\n")
    code, stdout, err = run_cli("batch", tmp_path / "jobs.csv", "--engine", "ray", "--workers", "2",
                                "--segment-frames", "4", "--json")
    assert code == 7, err
    s = json.loads(stdout)
    assert (s["done"], s["skipped"], s["failed"]) == (2, 0, 1)
    assert [j["status"] for j in s["jobs"]] == ["done", "failed", "done"]
    assert s["jobs"][1]["exit_code"] == 3 and "broken.mp4" in s["jobs"][1]["reason"]
    _same_folders(local / "frames", tmp_path / "f")
    a = list(VideoReader(local / "video.mkv").frames())
    b = list(VideoReader(tmp_path / "v.mkv").frames())
    assert len(a) == len(b) == 12
    assert all(x.pts == y.pts and np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert packets(tmp_path / "v.mkv", "audio") == packets(local / "video.mkv", "audio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4", "f", "jobs.csv", "v.mkv"]


def test_killed_worker_is_retried(ray_cluster, local, tmp_path, models):
    ray_cluster.unlink()  # arm the hook: the first worker in the middle of a segment dies
    out = tmp_path / "ray_frames"
    code, stdout, err = _colorize(models, local / "keys", out, "--engine", "ray", "--workers", "2",
                                  "--segment-frames", "4", "--json")
    assert code == 0, err
    assert ray_cluster.exists()  # a worker did die
    assert json.loads(stdout)["frames"] == 12
    _same_folders(local / "frames", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ray_frames"]


def test_mask_job_runs_whole_on_a_worker(ray_cluster, tmp_path, models):
    """Masks go frame to frame: a segment job is one unit, run by a worker as the local
    run would (its output equal to the local run's)."""
    from _cli_util import CAPS, CAPS_MASKS

    mask = CAPS_MASKS / "00000.png"
    code, _, err = run_cli("segment", CAPS, "--mask", mask, "--weights", models["segment"],
                           "-o", tmp_path / "local", "-q")
    assert code == 0, err
    line = {"input": str(CAPS), "task": "segment", "mask": str(mask), "output": "ray",
            "options": {"weights": str(models["segment"])}}
    (tmp_path / "j.jsonl").write_text(json.dumps(line) + "\n")
    code, stdout, err = run_cli("batch", tmp_path / "j.jsonl", "--engine", "ray", "--json")
    assert code == 0, err
    assert json.loads(stdout)["done"] == 1
    _same_folders(tmp_path / "local", tmp_path / "ray", 16)
