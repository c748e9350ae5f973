"""Speed and memory of whole `tpn` runs, measured in one run on this machine; writes
docs/BENCHMARKS.md.

What it measures (every number comes from this run):
  * frames/s and peak memory of `tpn colorize`, `tpn hdr`, `tpn segment` at 480p, 720p
    and 1080p, each run in a fresh subprocess (the peak is the run's own);
  * where the time goes (decode, guidance network, scan, flow alignment, colour
    conversion, encode), from tpn's timing hook (tpn_cli.timing, ``TPN_TIMING=FILE``);
  * the scan's time in the run against its memory-traffic floor;
  * the same frames through the optical-flow baseline (OpenCV DIS preset MEDIUM between
    each frame and its key-frame at the clip's resolution, then warp);
  * peak memory of each command at 100 and 2000 frames (real footage looped at 320×180);
  * the guidance network in float32, channels-last, bf16 and torch.compile;
  * run modes (thread pipeline or not, torch threads);
  * optionally the first commit where `tpn colorize` worked end to end (``--first-tree``:
    a checkout of it with its extension built), on the same frames.

Clips are cut from /work/shared/data/video/01_dog.mp4 (1280×720, Apache-2.0): scaled to
854×480, as is at 1280×720, and scaled up to 1920×1080. Colour key-frames are the clip's
own frames; HDR key-frames are made from them as the tests do (inverse camera curve,
highlights ×4); the segment mask is an ellipse on the first frame. Every command runs
with its shipped defaults (colour-v1, hdr-v2, the segment chain). :func:`stand_in_model`
makes an untrained model of a preset's shape for tasks without shipped weights.

Usage: python benchmarks/bench_run.py [--frames 30] [--long 2000] [--first-tree DIR]
       [--first-commit SHA] [--note TEXT] [--out docs/BENCHMARKS.md]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tpn_cli  # noqa: E402,F401  (first: tpn's allocator settings before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

SOURCE = Path("/work/shared/data/video/01_dog.mp4")
SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
COMMANDS = ("colorize", "hdr", "segment")
PARTS = ("decode", "network", "scan", "flow", "colour", "encode", "keys")


# ---------------------------------------------------------------------------------------
# inputs
# ---------------------------------------------------------------------------------------
def make_clip(dst: Path, size: tuple[int, int], frames: int, src: Path = SOURCE) -> Path:
    """``frames`` frames of ``src`` scaled to ``size``; played forwards then backwards
    (and again) when the clip is longer than the source."""
    import av
    import cv2

    w, h = size
    src_frames = []
    with av.open(str(src)) as c:
        for f in c.decode(video=0):
            src_frames.append(cv2.resize(f.to_ndarray(format="rgb24"), (w, h),
                                         interpolation=cv2.INTER_AREA if w < f.width else cv2.INTER_CUBIC))
            if len(src_frames) >= frames:
                break
    loop = src_frames + src_frames[-2:0:-1]
    with av.open(str(dst), "w") as o:
        s = o.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "16", "preset": "veryfast"}
        for i in range(frames):
            for p in s.encode(av.VideoFrame.from_ndarray(loop[i % len(loop)], format="rgb24")):
                o.mux(p)
        for p in s.encode():
            o.mux(p)
    return dst


def frames_of(clip: Path, indices) -> dict[int, np.ndarray]:
    from tpn_cli.media import VideoReader

    want = set(indices)
    return {f.index: f.image for f in VideoReader(clip).frames(0, max(want) + 1) if f.index in want}


def colour_keys(clip: Path, folder: Path, indices) -> Path:
    from tpn_cli.media import write_image

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in frames_of(clip, indices).items():
        write_image(folder / f"{i:05d}.png", img, overwrite=True)
    return folder


def hdr_keys(clip: Path, folder: Path, indices) -> Path:
    """Radiance key-frames from the clip's frames: inverse camera curve, highlights ×4
    (as tests/_cli_util.hdr_keys)."""
    from tpn_cli import colour
    from tpn_cli.media.hdr import write_exr

    folder.mkdir(parents=True, exist_ok=True)
    for i, img in frames_of(clip, indices).items():
        ldr = torch.from_numpy(img.astype(np.float32) / 255.0)
        h = colour.inverse_camera_curve(ldr)
        h = torch.where(ldr > 0.9, h * 4, h)
        write_exr(folder / f"{i:05d}.exr", h.numpy(), overwrite=True)
    return folder


def ellipse_mask(size: tuple[int, int], path: Path) -> Path:
    from tpn_cli.media.masks import write_mask

    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    ids = ((((xx - w / 2) / (w / 4)) ** 2 + ((yy - h / 2) / (h / 3)) ** 2) <= 1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_mask(path, ids, overwrite=True)


def stand_in_model(task: str, path: Path) -> Path:
    from tpn_cli.models import TPN, save_model, task_config

    torch.manual_seed(0)
    cfg = task_config(task, encoder="signed", scale=2, residual=True, extra={"align": True})
    return save_model(TPN(cfg), path)


# ---------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------
def _env(extra: dict | None = None, root: Path = ROOT) -> dict:
    env = dict(os.environ, PYTHONPATH=str(root))
    env.update(extra or {})
    return env


_PAUSE = None  # the _Pause of this benchmark run (checked before each timed run)

#: the CLI's entry point, printing the process's own peak memory (VmHWM) at exit: the
#: same measure for every version (ru_maxrss would include the forking parent's peak)
_LAUNCH = ("import atexit, sys\n"
           "def _hwm():\n"
           "    for ln in open('/proc/self/status'):\n"
           "        if ln.startswith('VmHWM:'):\n"
           "            sys.stderr.write('VMHWM_KB %s\\n' % ln.split()[1])\n"
           "atexit.register(_hwm)\n"
           "from tpn_cli.cli import main\n"
           "main()\n")


def run_command(cmd: str, clip: Path, keys: Path, model: Path | None, out: Path, tmp: Path,
                extra: list[str] = (), root: Path = ROOT, timing: bool = True) -> dict:
    """One `tpn CMD` run in a fresh process: its --json summary plus 'timing' and 'wall'."""
    key_opt = {"colorize": "--keyframes", "hdr": "--hdr-keys", "segment": "--mask"}[cmd]
    tfile = tmp / f"timing_{os.getpid()}_{time.monotonic_ns()}.json"
    args = [sys.executable, "-c", _LAUNCH, cmd, str(clip),
            key_opt, str(keys), "-o", str(out), "--overwrite", "--json", "-q", *extra]
    if model is not None:
        args += ["--weights", str(model)]
    env = _env({"TPN_TIMING": str(tfile)} if timing else {}, root)
    t0 = time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if _PAUSE is not None:
        _PAUSE.check()
    r = subprocess.run(args, capture_output=True, text=True, env=env, cwd=root)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    hwm = [ln for ln in r.stderr.splitlines() if ln.startswith("VMHWM_KB ")]
    if hwm:  # the process's own peak, whatever the version reports
        summary["peak_memory_mb"] = int(hwm[-1].split()[1]) / 1024.0
    summary["timing"] = json.loads(tfile.read_text()) if tfile.exists() else {}
    summary["process_seconds"] = wall
    # CPU seconds of the whole process (all threads, start-up included) per output frame
    summary["cpu_per_frame"] = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / max(1, summary["frames"])
    return summary


def baseline_worker(clip: str, keys: str, out: str) -> None:
    """The optical-flow baseline as a whole run: decode, DIS MEDIUM (frame → its key-frame,
    online schedule, at the clip's resolution, from L), warp the key's ab, compose with
    the frame's L, encode. Prints one JSON line."""
    from tpn_cli import colour
    from tpn_cli.flow import dis_flow, warp
    from tpn_cli.media import VideoReader, read_image
    from tpn_cli.outputs import VideoSink
    from tpn_cli.engine import peak_memory_mb

    reader = VideoReader(clip)
    key_files = {int(p.stem): p for p in Path(keys).glob("*.png")}
    flow_s = 0.0
    n = 0
    key_lab = {}
    t0 = time.perf_counter()
    with VideoSink(reader, Path(out), overwrite=True) as sink:
        for f in reader.frames():
            L = colour.lightness_image(f.image)
            k = max(i for i in key_files if i <= f.index)
            if k not in key_lab:
                img = read_image(key_files[k], depth=8)
                key_lab = {k: (colour.lightness_image(img), colour.rgb_to_lab(
                    torch.from_numpy(img).permute(2, 0, 1).float() / 255)[1:].permute(1, 2, 0).numpy().copy())}
            kL, kab = key_lab[k]
            if k == f.index:
                ab = kab
            else:
                t1 = time.perf_counter()
                g = lambda x: np.clip(np.rint(x * 2.55), 0, 255).astype(np.uint8)  # noqa: E731
                ab = warp(kab, dis_flow(g(L), g(kL), "medium"))
                flow_s += time.perf_counter() - t1
            sink.write(f, colour.lab_image_to_rgb(L, ab, f.image.dtype))
            n += 1
    print(json.dumps({"frames": n, "seconds": time.perf_counter() - t0, "flow_seconds": flow_s,
                      "peak_memory_mb": peak_memory_mb()}))


def run_baseline(clip: Path, keys: Path, out: Path) -> dict:
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([sys.executable, __file__, "--worker-baseline", str(clip), str(keys), str(out)],
                       capture_output=True, text=True, env=_env(), cwd=ROOT)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-2000:])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["cpu_per_frame"] = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / max(1, out["frames"])
    return out


def old_weights(tree: Path, tmp: Path) -> Path:
    """colour-v1 re-saved with only the config fields the old checkout knows (its model
    and forward pass are the same; 'loss' was added later, for training only)."""
    code = ("import dataclasses, sys, torch\n"
            "from tpn_cli.models.tpn import TPNConfig\n"
            "p = torch.load(sys.argv[1], weights_only=True)\n"
            "f = {x.name for x in dataclasses.fields(TPNConfig)}\n"
            "p['config'] = {k: v for k, v in p['config'].items() if k in f}\n"
            "torch.save(p, sys.argv[2])\n")
    dst = tmp / "colour-v1-first.tpn"
    subprocess.run([sys.executable, "-c", code, str(ROOT / "weights" / "colour-v1.tpn"), str(dst)],
                   check=True, env=_env(root=tree), cwd=tree)
    return dst


# ---------------------------------------------------------------------------------------
# micro-benchmarks
# ---------------------------------------------------------------------------------------
def copy_bandwidth(repeat: int = 5) -> float:
    src = torch.rand(32 * 1024 * 1024)
    dst = torch.empty_like(src)
    best = min(_timed(lambda: dst.copy_(src))[0] for _ in range(repeat))
    return 2 * src.numel() * 4 / best


def _timed(fn):
    t0 = time.perf_counter()
    r = fn()
    return time.perf_counter() - t0, r


def scan_floor_seconds(model_cfg, work: tuple[int, int], bandwidth: float) -> float:
    """Memory-traffic floor of one frame's propagation (all units): each unit reads the
    hidden map and the 12 gate maps, writes 4 direction outputs, and the max-merge reads
    them back and writes one map (float32)."""
    m = 2 ** model_cfg.unet_depth
    h, w = (-(-work[0] // m) * m) // model_cfg.scale, (-(-work[1] // m) * m) // model_cfg.scale
    c = 2 * model_cfg.prop_channels if model_cfg.encoder == "signed" else model_cfg.hidden_channels
    per_unit = 4 * h * w * (c + 12 * model_cfg.gate_groups + 4 * c + 4 * c + c)
    return model_cfg.units * per_unit / bandwidth


def inference_modes(threads: int = 1, repeat: int = 3, compile_timeout: float = 300,
                    compile_worker: bool = False) -> list[dict]:
    """The colour model's guidance network at 480p (batch 4), in each inference mode."""
    from tpn_cli.models import load_model

    torch.set_num_threads(threads)
    model = load_model(ROOT / "weights" / "colour-v1.tpn")
    x = torch.rand(4, 2, 480, 864)
    rows = []

    def bench(label, fn, note=""):
        with torch.inference_mode():
            t_first, _ = _timed(fn)
            best_w, best_c = 1e9, 1e9
            for _ in range(repeat):
                c0 = time.process_time()
                t, _ = _timed(fn)
                best_w, best_c = min(best_w, t), min(best_c, time.process_time() - c0)
        rows.append({"mode": label, "ms_per_frame": 1000 * best_w / 4, "cpu_ms_per_frame": 1000 * best_c / 4,
                     "first_call_s": t_first, "note": note})

    with torch.inference_mode():
        ref = model.guidance(x)
    g = model.guidance
    if compile_worker:
        model.for_inference(channels_last=True)
        compiled = torch.compile(g)
        bench("float32, channels-last, torch.compile", lambda: compiled(x),
              "first call includes compiling (on-disk caches of earlier runs shorten it)")
        return rows
    bench("float32, NCHW (before)", lambda: g(x))
    model.for_inference(channels_last=True)
    bench("float32, channels-last (default)", lambda: g(x))
    err = {}

    def bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = g(x).float()
        err["bf16"] = float((out - ref).abs().max())
        return out

    bench("bf16 autocast, channels-last (--precision bf16)", bf16)
    rows[-1]["note"] = f"max |gate logit error| {err['bf16']:.3f}"
    if not compile_timeout:
        return rows
    label = "float32, channels-last, torch.compile"
    try:  # in its own process: compiling can take minutes on a busy 2-core machine
        proc = subprocess.Popen([sys.executable, __file__, "--worker-compile"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT,
                                start_new_session=True)  # its compiler workers in its group
        try:
            out, err = proc.communicate(timeout=compile_timeout)
        except subprocess.TimeoutExpired:
            import signal

            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        if proc.returncode != 0:
            raise RuntimeError(err.strip().splitlines()[-1] if err.strip() else "failed")
        rows.append(json.loads(out.strip().splitlines()[-1]))
    except subprocess.TimeoutExpired:
        rows.append({"mode": label, "ms_per_frame": float("nan"), "cpu_ms_per_frame": float("nan"),
                     "first_call_s": float("nan"),
                     "note": f"compiling did not finish within {compile_timeout:.0f} s: it would cost "
                             "more than it could save on runs of a few minutes"})
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        rows.append({"mode": label, "ms_per_frame": float("nan"), "cpu_ms_per_frame": float("nan"),
                     "first_call_s": float("nan"), "note": f"failed: {str(exc)[:100]}"})
    return rows


# ---------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------
def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()


def _parts(summary: dict) -> dict[str, float]:
    """Wall seconds per part per frame, from the run's timing report."""
    t = summary.get("timing", {})
    n = max(1, summary["frames"])
    return {p: 1000 * t.get(p, {}).get("wall", 0.0) / n for p in PARTS}


def _fmt(x: float, nd: int = 1) -> str:
    return "–" if x != x else f"{x:.{nd}f}"


def write_report(path: Path, res: dict) -> str:
    L = []
    a = L.append
    a("# Benchmarks: whole runs")
    a("")
    a(f"Regenerated by `python benchmarks/bench_run.py` (do not edit by hand). Commit "
      f"`{res['commit']}`, {res['date']}, {res['machine']}; torch {torch.__version__}, "
      f"{res['threads']}. Load average when the timed runs started: {res['load']}; "
      f"{res.get('paused', '')}. {res['note']}")
    a("")
    a(f"Clips: {res['frames']} frames of `01_dog.mp4` (Apache-2.0) per size, key-frames every "
      f"{res['every']} frames (colour, HDR; the default schedule), one mask on frame 0 "
      "(segment). Each command with its shipped defaults: colour-v1, hdr-v2, and `tpn segment`'s "
      "frame-to-frame chain (tpn_cli/chain.py; optical flow, the mask frame's colour model, "
      "the segment-v1 TPN refining each step). frames/s is the command's own figure (from the first "
      "decoded frame to the closed output file); CPU s/frame is the whole process's CPU time "
      "(all threads, start-up included) per frame; peak memory is the process's own peak RSS "
      "(VmHWM).")
    a("")
    a("## frames/s and peak memory")
    a("")
    a("| command | size | work size | frames/s | CPU s/frame | peak MB |")
    a("|---|---|---|---:|---:|---:|")
    for (cmd, size), s in res["runs"].items():
        a(f"| {cmd} | {size} | {s['work_size'][0]}×{s['work_size'][1]} | {s['fps']:.2f} | "
          f"{s['cpu_per_frame']:.3f} | {s['peak_memory_mb']:.0f} |")
    a("")
    a("## Where the time goes")
    a("")
    a("Milliseconds per frame inside each part (wall time, from the timing hook "
      "`TPN_TIMING=FILE`), and each part's share of their sum. The parts run in overlapping "
      "threads (decode | prepare: colour conversion, key-frames, flow | network + scan | "
      "output conversion + encode), so they add up to more than the run's time per frame. "
      "`colour` = pixel↔tensor conversions (Lab, radiance, resizing to and from the "
      "working size), `keys` = reading and preparing key-frames; FFmpeg's and x264's own "
      "threads are not inside any part. The segment chain (tpn_cli/chain.py) runs in one "
      "thread; its `network` part is its first-frame colour model (no TPN by default).")
    a("")
    a("| command | size | " + " | ".join(PARTS) + " | 1000/fps |")
    a("|---|---|" + "---:|" * (len(PARTS) + 1))
    for (cmd, size), s in res["runs"].items():
        p = _parts(s)
        tot = sum(p.values()) or 1.0
        a(f"| {cmd} | {size} | " + " | ".join(f"{p[k]:.0f} ({100 * p[k] / tot:.0f}%)" for k in PARTS)
          + f" | {1000 / max(s['fps'], 1e-9):.0f} |")
    a("")
    a("## The scan against its traffic floor")
    a("")
    a(f"Copy bandwidth measured here: {res['bandwidth'] / 1e9:.1f} GB/s. Floor = bytes the "
      "propagation must move per frame (per unit: read the hidden map and 12 gate maps, "
      "write 4 direction outputs, read them back and write the merged map; float32) ÷ that "
      "bandwidth. Measured = the `scan` part per predicted frame in the runs above.")
    a("")
    a("| command | size | scan ms/frame | floor ms/frame | multiple of floor |")
    a("|---|---|---:|---:|---:|")
    for row in res["scan"]:
        a(f"| {row['cmd']} | {row['size']} | {row['ms']:.2f} | {row['floor']:.2f} | {row['ms'] / row['floor']:.1f}× |")
    a("")
    a("## Against the optical-flow baseline (colour)")
    a("")
    a("Baseline: the same frames and key-frames, OpenCV DIS preset MEDIUM between each frame "
      "and its key-frame at the clip's resolution (from L), the key's ab warped and composed "
      "with the frame's L, decoded and encoded with the same reader and writer (sequential; "
      "OpenCV's own threads on). `flow+warp only` counts just the DIS and warp calls.")
    a("")
    a("| size | tpn colorize frames/s | baseline frames/s (whole run) | tpn ÷ baseline | baseline flow+warp only, frames/s | tpn CPU s/frame | baseline CPU s/frame |")
    a("|---|---:|---:|---:|---:|---:|---:|")
    for size, b in res["baseline"].items():
        ours = res["runs"][("colorize", size)]["fps"]
        bfps = b["frames"] / b["seconds"]
        ffps = (b["frames"] - b.get("keys", 0)) / max(b["flow_seconds"], 1e-9)
        a(f"| {size} | {ours:.2f} | {bfps:.2f} | {ours / bfps:.2f}× | {ffps:.2f} | "
          f"{res['runs'][('colorize', size)]['cpu_per_frame']:.3f} | {b['cpu_per_frame']:.3f} |")
    a("")
    if res.get("first"):
        f = res["first"]
        a("## Against the first working version")
        a("")
        a(f"`tpn colorize` first worked end to end at commit `{f['commit']}` ({f['subject']}). "
          "Its checkout (extension built from its own kernels) ran the same clips with the same "
          "model (colour-v1, config fields it does not know dropped) and its default options.")
        a("")
        a("| size | first version frames/s | now frames/s | speed-up | first version CPU s/frame | now CPU s/frame | CPU ratio | first version peak MB | now peak MB |")
        a("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size, s in f["runs"].items():
            now = res["runs"][("colorize", size)]
            a(f"| {size} | {s['fps']:.2f} | {now['fps']:.2f} | {now['fps'] / s['fps']:.1f}× | "
              f"{s['cpu_per_frame']:.3f} | {now['cpu_per_frame']:.3f} | "
              f"{s['cpu_per_frame'] / now['cpu_per_frame']:.1f}× | "
              f"{s['peak_memory_mb']:.0f} | {now['peak_memory_mb']:.0f} |")
        a("")
    a("## Run modes (colorize, 480p)")
    a("")
    a("| mode | frames/s | CPU s/frame | peak MB |")
    a("|---|---:|---:|---:|")
    for label, s in res["modes"]:
        a(f"| {label} | {s['fps']:.2f} | {s['cpu_per_frame']:.3f} | {s['peak_memory_mb']:.0f} |")
    a("")
    a("## Guidance network inference modes (colour model, 480p, batch 4, 1 thread)")
    a("")
    a("| mode | ms/frame | CPU ms/frame | first call (s) | note |")
    a("|---|---:|---:|---:|---|")
    for r in res["inference"]:
        a(f"| {r['mode']} | {_fmt(r['ms_per_frame'])} | {_fmt(r['cpu_ms_per_frame'])} | "
          f"{_fmt(r['first_call_s'], 2)} | {r['note']} |")
    a("")
    a(f"## Peak memory against clip length ({res['long_size'][0]}×{res['long_size'][1]}, looped footage)")
    a("")
    a("Each run in a fresh process; flat means the same peak at 100 and at "
      f"{res['long']} frames (the engine holds a bounded number of frames and key-frames).")
    a("")
    a(f"| command | 100 frames, peak MB | {res['long']} frames, peak MB | difference | frames/s at {res['long']} |")
    a("|---|---:|---:|---:|---:|")
    for cmd, (s1, s2) in res["memory"].items():
        a(f"| {cmd} | {s1['peak_memory_mb']:.0f} | {s2['peak_memory_mb']:.0f} | "
          f"{s2['peak_memory_mb'] - s1['peak_memory_mb']:+.0f} | {s2['fps']:.1f} |")
    a("")
    a(f"Total benchmark time: {res['elapsed']:.0f} s.")
    text = "\n".join(L) + "\n"
    path.write_text(text)
    return text


class _Pause:
    """SIGSTOP some processes for the timed runs; SIGCONT on resume(), on leaving the
    ``with`` block whatever happens, and on SIGTERM/SIGINT."""

    def __init__(self, pids: list[int]) -> None:
        import signal

        self.pids, self.stopped, self.seconds, self._t0 = pids, False, 0.0, 0.0
        self.note = "no other process paused"
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        self.resume()
        raise KeyboardInterrupt

    def stop(self) -> None:
        import signal

        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGSTOP)
                self.stopped = True
            except ProcessLookupError:
                pass
        self._t0 = time.perf_counter()
        self.checks, self.found_stopped = 0, 0

    def check(self) -> None:
        """Count whether the paused processes are really stopped (something else may
        resume them): reported, not fought."""
        if not self.stopped:
            return
        for pid in self.pids:
            try:
                state = next(ln.split()[1] for ln in open(f"/proc/{pid}/status") if ln.startswith("State:"))
            except (OSError, StopIteration):
                continue
            self.checks += 1
            self.found_stopped += state in ("T", "t")

    def resume(self) -> None:
        import signal

        if self.stopped:
            for pid in self.pids:
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            self.stopped = False
            self.seconds = time.perf_counter() - self._t0
            seen = (f"found stopped at {self.found_stopped} of {self.checks} checks between runs"
                    if self.checks else "not checked")
            self.note = (f"{len(self.pids)} training runs of the project were sent SIGSTOP for the "
                         f"{self.seconds:.0f} s of timed runs (commands, baseline, modes, first "
                         f"version; {seen}) and SIGCONT after; other users' jobs kept running")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.resume()
        return False


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=30)
    p.add_argument("--every", type=int, default=20, help="key-frame spacing (colour, HDR)")
    p.add_argument("--long", type=int, default=2000)
    p.add_argument("--first-tree", type=Path, default=None,
                   help="checkout of the first working commit, extension built")
    p.add_argument("--first-sizes", default="480p")
    p.add_argument("--note", default="")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument("--pause-pids", default="",
                   help="PIDs to SIGSTOP during the timed runs and SIGCONT after (always resumed)")
    p.add_argument("--compile-timeout", type=float, default=300)
    p.add_argument("--worker-baseline", nargs=3, metavar=("CLIP", "KEYS", "OUT"))
    p.add_argument("--worker-compile", action="store_true")
    a = p.parse_args(argv)
    if a.worker_baseline:
        baseline_worker(*a.worker_baseline)
        return
    if a.worker_compile:
        print(json.dumps(inference_modes(compile_worker=True)[0]))
        return
    start = time.perf_counter()
    res: dict = {"frames": a.frames, "every": a.every, "long": a.long, "note": a.note,
                 "runs": {}, "baseline": {}, "modes": [], "memory": {}, "scan": []}
    dirty = " (uncommitted changes)" if _git("status", "--porcelain", "--untracked-files=no") else ""
    res["commit"] = _git("rev-parse", "--short", "HEAD") + dirty
    res["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    res["machine"] = f"{cpu}, {os.cpu_count()} cores"
    res["threads"] = "tpn's default threads (1 torch thread per operation, pipelined stages)"
    res["load"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    keys_at = list(range(0, a.frames, a.every))
    global _PAUSE
    pause = _PAUSE = _Pause([int(x) for x in a.pause_pids.split(",") if x.strip()])
    with tempfile.TemporaryDirectory(prefix="tpn-bench-") as tmpd, pause:
        tmp = Path(tmpd)
        # the shipped defaults: colour-v1, hdr-v2, and the segment chain (with segment-v1)
        models = {"colorize": None, "hdr": None, "segment": None}
        inputs = {}
        for size, wh in SIZES.items():
            clip = make_clip(tmp / f"clip_{size}.mp4", wh, a.frames)
            inputs[size] = {"clip": clip,
                            "colorize": colour_keys(clip, tmp / f"ckeys_{size}", keys_at),
                            "hdr": hdr_keys(clip, tmp / f"hkeys_{size}", keys_at),
                            "segment": ellipse_mask(wh, tmp / f"mask_{size}" / "00000.png")}
        outs = {"colorize": "out.mp4", "hdr": "out_exr", "segment": "out_masks"}
        pause.stop()  # the timed part: other jobs of ours paused (--pause-pids)
        res["load"] = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        for size in SIZES:
            for cmd in COMMANDS:
                s = run_command(cmd, inputs[size]["clip"], inputs[size][cmd], models[cmd],
                                tmp / f"{cmd}_{size}_{outs[cmd]}", tmp)
                res["runs"][(cmd, size)] = s
                print(f"{cmd} {size}: {s['fps']:.2f} frames/s, peak {s['peak_memory_mb']:.0f} MB", flush=True)
            b = run_baseline(inputs[size]["clip"], inputs[size]["colorize"], tmp / f"flow_{size}.mp4")
            b["keys"] = len(keys_at)
            res["baseline"][size] = b
            print(f"baseline {size}: {b['frames'] / b['seconds']:.2f} frames/s", flush=True)
        # scan vs floor
        from tpn_cli.models import load_model

        res["bandwidth"] = bw = copy_bandwidth()
        from tpn_cli import weights as tw

        cfgs = {"colorize": load_model(tw.resolve(None, "colour")).config,
                "hdr": load_model(tw.resolve(None, "hdr")).config}
        for (cmd, size), s in res["runs"].items():
            if cmd not in cfgs or "scan" not in s["timing"]:
                continue  # the segment chain runs no scan by default
            predicted = s["frames"] - (len(keys_at) if cmd != "segment" else 1)
            scan_ms = 1000 * s["timing"].get("scan", {}).get("wall", 0.0) / max(1, predicted)
            work = (s["work_size"][1], s["work_size"][0])
            floor = 1000 * scan_floor_seconds(cfgs[cmd], work, bw)
            if cmd == "segment":
                floor *= 2  # one item per channel: background + the object
            res["scan"].append({"cmd": cmd, "size": size, "ms": scan_ms, "floor": floor})
        # run modes
        i480 = inputs["480p"]
        res["modes"].append(("pipelined, 1 torch thread (default)", res["runs"][("colorize", "480p")]))
        for label, extra in [("pipelined, 2 torch threads", ["--threads", "2"]),
                             ("sequential (--no-pipeline), 2 torch threads", ["--no-pipeline", "--threads", "2"]),
                             ("sequential (--no-pipeline), 1 torch thread", ["--no-pipeline", "--threads", "1"]),
                             ("pipelined, --precision bf16", ["--precision", "bf16"])]:
            s = run_command("colorize", i480["clip"], i480["colorize"], None, tmp / "mode.mp4", tmp, extra)
            res["modes"].append((label, s))
            print(f"mode {label}: {s['fps']:.2f}", flush=True)
        # the first working version
        if a.first_tree:
            tree = a.first_tree.resolve()
            sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                 cwd=tree).stdout.strip()
            subject = subprocess.run(["git", "log", "-1", "--format=%s"], capture_output=True, text=True,
                                     cwd=tree).stdout.strip()
            w_old = old_weights(tree, tmp)
            first = {"commit": sha, "subject": subject[:90] + ("…" if len(subject) > 90 else ""), "runs": {}}
            for size in a.first_sizes.split(","):
                s = run_command("colorize", inputs[size]["clip"], inputs[size]["colorize"], w_old,
                                tmp / f"first_{size}.mp4", tmp, root=tree, timing=False)
                first["runs"][size] = s
                print(f"first version {size}: {s['fps']:.2f} frames/s", flush=True)
            res["first"] = first
        pause.resume()  # memory and the micro-benchmark's CPU times do not need the pause
        res["paused"] = pause.note
        # inference modes of the guidance network
        res["inference"] = inference_modes(compile_timeout=0 if a.skip_compile else a.compile_timeout)
        print("inference modes:", [(r["mode"], round(r["ms_per_frame"], 1)) for r in res["inference"]], flush=True)
        # memory against length
        res["long_size"] = (160, 90)
        for n in (100, a.long):
            clip = make_clip(tmp / f"long_{n}.mp4", res["long_size"], n)
            ck = colour_keys(clip, tmp / f"lkeys_{n}", range(0, n, a.every * 5))
            hk = hdr_keys(clip, tmp / f"lhkeys_{n}", range(0, n, a.every * 5))
            mk = ellipse_mask(res["long_size"], tmp / f"lmask_{n}" / "00000.png")
            for cmd, keys in (("colorize", ck), ("hdr", hk), ("segment", mk)):
                s = run_command(cmd, clip, keys, models[cmd], tmp / f"long_{cmd}_{n}_{outs[cmd]}", tmp,
                                timing=False)
                res["memory"].setdefault(cmd, []).append(s)
                print(f"{cmd} {n} frames: peak {s['peak_memory_mb']:.0f} MB, {s['fps']:.1f} frames/s", flush=True)
    res["elapsed"] = time.perf_counter() - start
    print(write_report(a.out, res))


if __name__ == "__main__":
    main()
