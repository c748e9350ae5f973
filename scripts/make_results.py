"""Regenerate docs/RESULTS.md: colour, segmentation and HDR on held-out data against
baselines computed in the same run, from the weights in weights/manifest.json.

    python scripts/make_results.py                       # full run, writes docs/RESULTS.md
    python scripts/make_results.py --quick               # smoke run, writes /tmp/RESULTS.quick.md
    python scripts/make_results.py --only hdr --reuse docs/RESULTS.md   # re-run one part
    python scripts/make_results.py --quick --only colour \

Each task uses the manifest's default model (``--weights TASK=PATH`` overrides it, for
development; the models section then says the file is not the shipped one; TASK is
colour, segment or hdr). A task without a model gets its baselines and
"not available" for what needs it. The evaluation itself lives in tpn_eval/ (see its
docstring for every method and metric; colour: tpn_eval/colour_split.py, issue 19's
protocol on its tuning and held-out splits). One thread by default.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import tpn_eval as ev  # noqa: E402
from tpn_eval import colour_split as cs  # noqa: E402
from tpn_cli import metrics, weights  # noqa: E402
from tpn_cli.errors import WeightsUnavailableError  # noqa: E402
from tpn_cli.models import load_model  # noqa: E402

TASKS = ("colour", "segment", "hdr")
NA = "n/a"


# ----------------------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------------------
def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def find_model(task: str, override: str | None) -> dict:
    """Which weights file a task uses: {'task', 'path', 'entry', 'sha256', 'source', 'error'}."""
    info = {"task": task, "path": None, "entry": None, "sha256": None, "source": None, "error": None}
    entries = weights.load_manifest()
    try:
        if override:
            path = Path(override)
            if not path.is_file():
                raise WeightsUnavailableError(f"{override} not found")
            info["source"] = "--weights (development override)"
        else:
            path = weights.resolve(None, task)
            info["source"] = "weights/manifest.json default"
    except WeightsUnavailableError as exc:
        info["error"] = str(exc)
        return info
    info["path"] = str(path)
    info["sha256"] = weights.sha256_file(path)
    for e in entries:
        if e.sha256 and e.sha256.lower() == info["sha256"]:
            info["entry"] = e
            break
    else:  # a manifest file whose checksum does not match: keep the entry, the table says so
        if not override:
            name = weights.default_name(task)
            info["entry"] = next((e for e in entries if e.name == name), None)
        else:
            for e in entries:
                if (weights.bundled_dir() / e.file).resolve() == path.resolve():
                    info["entry"] = e
    return info


def load(info: dict):
    if info["path"] is None:
        return None
    try:
        model = load_model(info["path"]).eval()
    except Exception as exc:  # a foreign or corrupt file: report it, keep the baselines
        info["error"] = f"cannot load: {type(exc).__name__}: {exc}"
        return None
    if model.config.task != info["task"]:
        info["error"] = f"file is a {model.config.task!r} model, not {info['task']!r}"
        return None
    info["config"] = model.config
    return model


def model_row(label: str, info: dict) -> list:
    e = info.get("entry")
    if info["path"] is None:
        return [label, info["task"], NA, NA, NA, info["error"] or "not available", NA]
    if e is None:
        check = "not in the manifest"
    elif e.sha256 and e.sha256.lower() == info["sha256"]:
        check = f"matches manifest entry `{e.name}`"
    else:
        check = f"**MISMATCH** with manifest entry `{e.name}`"
    data = licence = NA
    if e is not None:
        td = e.extra.get("training_data")
        data = "; ".join(map(str, td)) if isinstance(td, (list, tuple)) else (str(td) if td else NA)
        lic = e.extra.get("licences") or e.extra.get("licence") or e.extra.get("license")
        licence = ", ".join(map(str, lic)) if isinstance(lic, (list, tuple)) else str(lic or NA)
        if e.extra.get("iteration") is not None:
            data += f"; iteration {e.extra['iteration']}"
    cfg = info.get("config")
    desc = info.get("desc", NA)
    if cfg is not None:
        desc = (f"{cfg.encoder} 1/{cfg.scale}×{cfg.hidden_channels}, mode {cfg.mode}, "
                f"residual {cfg.residual}, align {bool(cfg.extra.get('align', False))}")
    where = os.path.relpath(info["path"], REPO) if info["path"].startswith(str(REPO)) else info["path"]
    return [label, info["task"], f"`{where}`", f"`{info['sha256']}`", check, desc, f"{data} ({licence})"]


def _unit(v: float, unit: str, digits: int = 2) -> str:
    """A signed difference with its unit, or n/a."""
    return "n/a" if v != v else ev.fmt(v, digits, signed=True) + unit


# ----------------------------------------------------------------------------------------
# colour: issue 19's protocol (tpn_eval.colour_split)
# ----------------------------------------------------------------------------------------
#: --quick: one short clip per split, its first QUICK_FRAMES frames
COLOUR_QUICK = {"tune": "davis:libby", "heldout": "davis:dog"}
QUICK_FRAMES = 41
SPLIT_TITLES = {"tune": "Tuning split", "heldout": "Held-out split"}


def colour_methods() -> list[tuple[str, str]]:
    """(row label, tpn_eval.colour_split method) of the colour tables: issue 19's baseline,
    the default `tpn colorize` (the command's --mode and ColourTask.USE_TPN), the same with
    the TPN switched the other way, the other mode with the command's defaults, and the
    baseline carrying video chroma as the product does (the strongest simple alternative).
    The second row is the default."""
    from tpn_cli.tasks.colour import ColourTask
    mode = cs.cli_default("mode")
    other = "nearest" if mode != "nearest" else "blend"
    tpn = ColourTask.USE_TPN
    return [("two-key flow baseline (issue 19)", "baseline"),
            (f"**`tpn colorize`** (default: --mode {mode}, {'with' if tpn else 'no'} TPN)", f"product:{mode}"),
            (f"`tpn colorize --{'no-tpn' if tpn else 'tpn'}`", f"product:{mode}:{'notpn' if tpn else 'tpn'}"),
            (f"`tpn colorize --mode {other}`", f"product:{other}"),
            ("two-key flow baseline carrying video chroma (Cb, Cr)", "baseline:ycc")]


def _available(info: dict) -> bool:
    return info["path"] is not None and not info["error"]


def run_colour(a, infos: dict, log) -> dict:
    """Every method of :func:`colour_methods` on every clip of the splits at every K; a
    method whose weights are missing is left out (and said so)."""
    methods = [m for _, m in colour_methods()]
    missing = {}
    def why(task):
        return str(infos[task]["error"]).splitlines()[0] + f"; --weights {task}=PATH names a file"
    from tpn_cli.tasks.colour import ColourTask
    for m in methods:  # the methods that run the TPN (the name says so, or the default does)
        runs_tpn = ":tpn" in m or (not m.startswith("baseline") and ":notpn" not in m and ColourTask.USE_TPN)
        if runs_tpn and not _available(infos["colour"]):
            missing.setdefault(m, f"colour TPN: {why('colour')}")
    run = [m for m in methods if m not in missing]
    spec = a.overrides.get("colour")
    frames = QUICK_FRAMES if a.quick else cs.MAX_FRAMES
    results, clips = {}, {}
    for split in a.colour_splits:
        clips[split] = [COLOUR_QUICK[split]] if a.quick else cs.SPLITS[split]
        results[split] = {}
        for clip in clips[split]:
            t0 = time.time()
            cs.evaluate_clip(clip, a.Ks, run, results[split], max_frames=frames,
                             method_fn=lambda m: cs.method(m, spec=spec),
                             log=lambda msg: log(f"colour {split} {msg}"))
            log(f"colour {split} {clip}: {time.time() - t0:.0f} s")
    return {"results": results, "clips": clips, "missing": missing, "frames": frames}


def colour_section(a, col: dict) -> tuple[str, list]:
    methods = colour_methods()
    default = methods[1][1]
    label = dict((m, lab) for lab, m in methods)
    out, targets = [], []
    out.append(
        "Issue 19's protocol (tpn_eval/colour_split.py; scripts/eval_colour_split.py runs the same "
        "code): the split was declared before measuring (`tune`: the DAVIS clips the colour work was "
        "tuned on; `heldout`: never trained or tuned on), the first "
        f"{col['frames']} frames of each clip, key-frames every K frames from frame 0. Frames: the pairs "
        f"(t, t+1) with t ≡ 0 (mod {cs.STRIDE}) and, at K ≥ {cs.SWITCH_FROM}, every pair where the feeding "
        "key-frames change (nearest or blend schedule); PSNR (8-bit RGB with the frame's own L) is the "
        "mean over their non-key frames; the gain over the baseline is over the same frames, \"worst "
        "clip\" the lowest per-clip gain. Warping error (WE): the output's flow-compensated "
        "frame-to-frame chroma change over the ground truth's (DIS flow of the ground truth, "
        "forward-backward-consistent pixels), as a ratio over all pairs, over the pairs where the "
        "method's own feeding keys change (\"at key changes\") and over the others. The two-key flow "
        "baseline is the issue's: both neighbouring keys warped by DIS (MEDIUM) at full resolution, "
        "weighted per pixel by exp(−e/8) / (|t − k| + 1), e the 9×9 box mean of |warped key L − frame L| "
        "(8-bit); its chroma variant carries the keys' video chroma (BT.601 Cb, Cr) instead of their ab and "
        "rebuilds each frame from its own luma, as `tpn colorize` does. The `tpn colorize` rows are what the command runs with its defaults "
        "(tpn_cli.tasks.colour.ColourTask.adapter, the shipped weights, batch size "
        f"{cs.cli_default('batch_size')}; no shot detection: the clips are single shots).")
    if col["missing"]:
        out.append("")
    for m, why in col["missing"].items():
        out.append(f"- {label[m]}: not available ({why})")
    heads = ["K", "method", "clips", "frames", "PSNR (dB)", "− baseline", "worst clip − baseline",
             "WE ratio", "WE at key changes", "WE elsewhere"]
    summaries = {}
    for split, res in col["results"].items():
        summ = summaries[split] = cs.summarise(res)
        names = ", ".join(c.split(":")[1] for c in col["clips"][split])
        out.append(f"\n### {SPLIT_TITLES.get(split, split)} ({names})\n")
        rows = []
        for K in a.Ks:
            for lab, m in methods:
                s = summ.get((K, m))
                if s is None:
                    continue
                base = m == "baseline"
                rows.append([K, lab, s["clips"], s["frames"], s["psnr"], "" if base else ev.fmt(s["gain"], signed=True),
                             "" if base else f"{ev.fmt(s['worst'], signed=True)} ({s['worst_clip']})",
                             ev.fmt(s["we"], 3), ev.fmt(s["we_switch"], 3), ev.fmt(s["we_else"], 3)])
        out.append(ev.markdown_table(heads, rows, align="rlrrrrrrrr"))
    held = col["results"].get("heldout")
    if held is not None:
        gains = cs.clip_gains(held, default)
        clips = col["clips"]["heldout"]
        out.append(f"\n### Held-out, per clip: {label[default]} − two-key baseline (dB)\n")
        rows = [[K] + [ev.fmt(gains.get(K, {}).get(c, float("nan")), signed=True) for c in clips] for K in a.Ks]
        out.append(ev.markdown_table(["K"] + [c.split(":")[1] for c in clips], rows))
        # issue 19's acceptance (colour, temporal stability), on the held-out split
        summ = summaries["heldout"]
        nan = {"gain": float("nan"), "worst": float("nan"), "worst_clip": "", "we": float("nan"),
               "we_switch": float("nan"), "we_else": float("nan")}
        for K in a.Ks:
            s, b = summ.get((K, default)), summ.get((K, "baseline"), nan)
            ok = s is not None
            s = s or nan
            targets.append(("colour", f"(issue 19) held-out, K={K}: default `tpn colorize` ≥ two-key flow "
                            "baseline + 1.0 dB", _unit(s["gain"], " dB"), (s["gain"] >= 1.0) if ok else None))
            if K <= 20:
                targets.append(("colour", f"(issue 19) held-out, K={K}: never below the baseline on any clip",
                                f"worst {_unit(s['worst'], ' dB')} ({s['worst_clip']})" if ok else NA,
                                (s["worst"] >= 0.0) if ok else None))
            targets.append(("colour", f"(issue 19) held-out, K={K}: warping error / ground truth's ≤ 1.1 and ≤ "
                            "the baseline's", f"{ev.fmt(s['we'], 3)} (baseline {ev.fmt(b['we'], 3)})",
                            (s["we"] <= 1.1 and s["we"] <= b["we"]) if ok else None))
            y = summ.get((K, "baseline:ycc"))
            if ok and y is not None:
                targets.append(("colour", f"(not in issue 19) held-out, K={K}: default `tpn colorize` above the "
                                "two-key baseline carrying video chroma", _unit(s["gain"] - y["gain"], " dB"),
                                s["gain"] - y["gain"] > 0))
            jump = s["excess_switch"] <= s["excess_else"] if s["excess_switch"] == s["excess_switch"] else None
            targets.append(("colour", f"(issue 19) held-out, K={K}: no jump: at key changes the output's chroma "
                            "change exceeds the ground truth's by no more than elsewhere (mean max(0, output − "
                            "truth) per pair, ab)", f"{ev.fmt(s['excess_switch'], 3)} vs {ev.fmt(s['excess_else'], 3)}",
                            jump if ok else None))
            jump = s["we_switch"] <= s["we_else"] if s["we_switch"] == s["we_switch"] else None
            targets.append(("colour", f"(stricter than issue 19) held-out, K={K}: WE ratio at key changes ≤ "
                            "WE ratio elsewhere", f"{ev.fmt(s['we_switch'], 3)} vs {ev.fmt(s['we_else'], 3)}",
                            jump if ok else None))
    # speed: every method's time over every evaluated frame of this run
    secs, cnt = defaultdict(float), defaultdict(int)
    for res in col["results"].values():
        for key, r in res.items():
            m = key.rsplit("|", 1)[1]
            secs[m] += r["seconds"]
            cnt[m] += r["frames"]
    rows = [[lab, 1000.0 * secs[m] / cnt[m]] for lab, m in methods if cnt[m]]
    out.append("\n### Speed (measured in this run, one thread)\n")
    out.append(ev.markdown_table(["method", "ms per evaluated frame"], rows, digits=0))
    out.append("\nWhole prediction of the evaluated frames (key-frames included, no decoding or metrics) "
               "over the evaluated non-key frames, all clips and K together; other jobs shared the "
               "machine, so compare within this table. benchmarks/ has the end-to-end measurement.")
    return "\n".join(out), targets


# ----------------------------------------------------------------------------------------
# segmentation
# ----------------------------------------------------------------------------------------
#: the segment methods that are tpn's own (the rest are the issue's baselines)
SEG_CHAIN_TPN = "chain + TPN (tpn segment's default)"
SEG_CLI = "chain without the TPN (--no-tpn)"


def run_segment(a, model, log) -> dict:
    from tpn_cli.mask_tracker import MaskPropagator
    res = {}
    for name in a.seg_seqs:
        methods = {}
        if model is not None:
            if "first" in a.seg_modes:
                methods["TPN from the first frame"] = model
            if "chain" in a.seg_modes:
                methods[SEG_CHAIN_TPN] = MaskPropagator(model)
        if "nonet" in a.seg_modes:  # the same chain without the TPN: what the network adds
            methods[SEG_CLI] = MaskPropagator(None)
        t0 = time.time()
        res[name] = ev.evaluate_segment_sequence(name, methods, a.seg_stride)
        log(f"segment {name}: {res[name]['frames']} frames, {time.time() - t0:.0f} s")
    return res


def segment_section(a, seg: dict, model_ok: bool) -> tuple[str, list]:
    names = {"copy": "copy first mask", "flow_first": "flow from first frame", "flow_chain": "flow chained"}
    methods = list(next(iter(seg.values()))["scores"])
    if not model_ok:
        methods.append("TPN")
    out = []
    stride = f"every {a.seg_stride}. frame, " if a.seg_stride > 1 else "all frames, "
    out.append(f"DAVIS-2016 protocol on {', '.join(seg)} ({stride}first mask given, first and last "
               f"frame excluded, boundary tolerance 0.008 of the diagonal). \"{SEG_CHAIN_TPN}\" is what "
               "`tpn segment` runs: tpn_cli.mask_tracker.MaskPropagator with its default options "
               "(flow-warped previous prediction, first-frame colour model and pixel classifier, "
               "mask-frame anchor, speck removal, guided-filter edges) and the segment TPN refining "
               f"each step; \"{SEG_CLI}\" is the same loop without the TPN (`tpn segment --no-tpn`, "
               "~1.5× faster; docs/what-we-tried.md).\n")
    heads = ["sequence"] + [f"{names.get(m, m)} {x}" for m in methods for x in ("J", "F", "J&F")]
    rows = []
    for name, r in seg.items():
        row = [name]
        for m in methods:
            sc = r["scores"].get(m)
            row += [sc.J, sc.F, sc.JF] if sc is not None else [NA, NA, NA]
        rows.append(row)
    summ = {m: metrics.davis_summary([r["scores"][m] for r in seg.values()]) for m in methods
            if all(m in r["scores"] for r in seg.values())}
    row = ["**mean**"]
    for m in methods:
        sm = summ.get(m)
        row += [sm["J-Mean"], sm["F-Mean"], sm["J&F-Mean"]] if sm else [NA, NA, NA]
    rows.append(row)
    out.append(ev.markdown_table(heads, rows, digits=3))
    frames = sum(r["frames"] - 1 for r in seg.values())
    rows = []
    for m in methods:
        if m == "copy" or m not in summ:
            continue
        ms = sum(r["ms"][m] * (r["frames"] - 1) for r in seg.values()) / max(frames, 1)
        rows.append([names.get(m, m), 1000.0 / ms if ms > 0 else NA, ms])
    out.append("\nSpeed (854×480, one thread, including the flow each method computes):\n")
    out.append(ev.markdown_table(["method", "frames/s", "ms/frame"], rows, digits=1))
    flow = summ["flow_chain"]["J&F-Mean"]
    ours = {m: summ[m]["J&F-Mean"] for m in summ if m not in names}
    tpn = bool(ours)
    top = max(ours, key=ours.get) if tpn else ""
    best = ours.get(top, float("nan"))
    which = f" ({top})" if tpn else ""
    targets = [("segment", "J&F ≥ flow chained + 0.10", _unit(best - flow, "", 3) + which,
                (best - flow >= 0.10) if tpn else None),
               ("segment", "J&F ≥ 0.65", ev.fmt(best, 3) + which, (best >= 0.65) if tpn else None)]
    strongest = max(flow, summ["flow_first"]["J&F-Mean"])
    targets.append(("segment", "(not in issue 5) J&F ≥ the better flow baseline + 0.10 (incl. flow from first frame)",
                    _unit(best - strongest, "", 3) + which, (best - strongest >= 0.10) if tpn else None))
    return "\n".join(out), targets


# ----------------------------------------------------------------------------------------
# HDR
# ----------------------------------------------------------------------------------------
HDR_METHODS = [("icc", "inverse camera curve (generic)"),
               ("copy_sat", "nearest key copied into saturated"),
               ("flow_sat", "nearest key warped by flow into saturated"),
               ("icc_true", "inverse camera curve (the clip's true curve)"),
               ("flow_sat_true", "nearest key warped into saturated, true curve"),
               ("flow_two_true", "both keys warped and blended into saturated, true curve (issue 19)"),
               ("flow_sat_cal", "nearest key warped into saturated, calibrated response"),
               ("flow_two_cal", "both keys warped and blended into saturated, calibrated response"),
               ("tpn", "`tpn hdr` default: both keys aligned, per-channel fusion, no TPN (the CLI)"),
               ("tpn_net", "`tpn hdr --tpn`: the same with the HDR TPN on each key")]
#: The simple baselines issue 19 sets the bar with (inverse curve, one-key and two-key
#: flow, each given the clip's true camera curve).
HDR_ISSUE_BASELINES = ("icc_true", "flow_sat_true", "flow_two_true")


def run_hdr(a, model, log) -> dict:
    """Every (setting, split, still, seed) pseudo-video of tpn_eval.HDR_SPLIT /
    HDR_SETTINGS, each K a separate run (:func:`tpn_eval.evaluate_hdr_clip`)."""
    from tpn_cli.train.hdr_video import HDR_ROOT, read_hdr
    out = []
    times: dict[str, float] = defaultdict(float)
    count = 0
    for setting in a.hdr_settings:
        kw = dict(ev.HDR_SETTINGS[setting])
        if a.hdr_size:
            kw["size"] = a.hdr_size
        for split in a.hdr_splits:
            for img_name, rel in ev.HDR_SPLIT[split].items():
                image = read_hdr(HDR_ROOT / rel)
                for seed in range(a.hdr_seeds):
                    info: dict = {}
                    hdr, ldr = ev.hdr_sequence(ev.hdr_clip_rng(img_name, seed), image, a.hdr_frames,
                                               info=info, **kw)
                    sat = float(np.mean([(x.max(-1) >= ev.HDR_SAT_LEVEL).mean() for x in ldr]))
                    t0 = time.time()
                    res = ev.evaluate_hdr_clip(hdr, ldr, a.hdr_Ks, model, times, curve=info)
                    pairs = sum(len(r["pairs"]) for r in res.values())
                    count += pairs
                    out.append({"setting": setting, "split": split, "image": img_name, "seed": seed,
                                "runs": res, "sat": sat, "size": kw["size"]})
                    log(f"hdr {setting} {split} {img_name} seed {seed}: {pairs} frames, saturated "
                        f"{100 * sat:.1f} %, {time.time() - t0:.0f} s")
    return {"seqs": out, "seconds": dict(times), "count": count}


def hdr_section(a, hd: dict, model_ok: bool) -> tuple[str, list]:
    methods = [(m, lab) for m, lab in HDR_METHODS if model_ok or m != "tpn_net"]
    out = ["Virtual-camera pseudo-video (tpn_eval.hdr_sequence) over HDR stills split before "
           "measuring (tpn_eval.HDR_SPLIT): `tune` (StillLife, venice_sunset_1k, Adjuster) and "
           "`heldout` (memorial, GoldenGate, Bonita, KernerEnvLatLong, StageEnvLatLong: never trained "
           f"or tuned on); {a.hdr_seeds} clip(s) per still (fixed seeds), {a.hdr_frames} frames, key-frames "
           "every K frames. Settings (tpn_eval.HDR_SETTINGS): " + "; ".join(
               f"`{n}` {s['size']}² frames, pan ≤ {s['max_speed']:g} px/frame, "
               f"{100 * s['clip_fraction'][0]:.0f}–{100 * s['clip_fraction'][1]:.0f} % of values clipped"
               for n, s in ev.HDR_SETTINGS.items() if n in a.hdr_settings)
           + f". Saturated pixels = LDR channel max ≥ {ev.HDR_SAT_LEVEL}. Radiance is relative (1.0 = the "
           "LDR clip level; PU21 at 1.0 = 203 cd/m²); log-RMSE is of log(H + 0.01) over the whole frame, "
           "the saturated and the unsaturated pixels. Each K is a separate run: the calibrated response "
           "(tpn_cli.camera_response, what `tpn hdr` uses) is fitted to that run's key-frames; the issue's "
           "baselines are also given the clip's true camera curve (`true`). Two keys = the frame's "
           "neighbouring key-frames, DIS (MEDIUM) at full resolution, weights exp(−e/8)/(|t − k| + 1).\n"]
    if not model_ok:
        out.append("`tpn hdr --tpn`: not available (no HDR model).\n")
    targets = []
    label = dict(HDR_METHODS)
    for setting in a.hdr_settings:
        for split in a.hdr_splits:
            seqs = [s for s in hd["seqs"] if s["setting"] == setting and s["split"] == split]
            if not seqs:
                continue
            sat = 100 * np.mean([s["sat"] for s in seqs])
            for K in a.hdr_Ks:
                nfr = sum(len(s["runs"][K]["assign"]) for s in seqs)
                out.append(f"\n### {setting}, {split}, K = {K} ({nfr} non-key frames, {sat:.1f} % saturated)\n")
                per = ev.hdr_summary([s["runs"] for s in seqs], K)
                rows = [[lab, per[m]["log_rmse"], per[m]["log_rmse_sat"], per[m]["log_rmse_unsat"], per[m]["pu21"]]
                        for m, lab in methods]
                out.append(ev.markdown_table(["method", "log-RMSE", "log-RMSE saturated", "log-RMSE unsaturated",
                                              "PU21-PSNR (dB)"], rows, digits=4))
                # the CLI's default against the best of issue 19's simple baselines
                best = min(HDR_ISSUE_BASELINES, key=lambda m: per[m]["log_rmse"])
                best_p = max(per[m]["pu21"] for m in HDR_ISSUE_BASELINES)
                ratio = per["tpn"]["log_rmse"] / per[best]["log_rmse"]
                dp = per["tpn"]["pu21"] - best_p
                worst = max((ev.hdr_summary([s["runs"] for s in seqs if s["image"] == name], K)
                             for name in dict.fromkeys(s["image"] for s in seqs)),
                            key=lambda p: p["tpn"]["log_rmse"] / p[best]["log_rmse"])
                out.append(f"\n`tpn hdr` against the best baseline ({label[best]}): log-RMSE × {ratio:.3f}, "
                           f"PU21 {_unit(dp, ' dB')}; worst still × "
                           f"{worst['tpn']['log_rmse'] / worst[best]['log_rmse']:.3f}.\n")
                if split == "heldout":
                    targets.append(("hdr", f"{setting}, held-out, K={K}: log-RMSE ≤ 0.8 × best baseline",
                                    f"× {ev.fmt(ratio, 3)} ({label['tpn']})", ratio <= 0.8))
                    targets.append(("hdr", f"{setting}, held-out, K={K}: PU21-PSNR ≥ best baseline + 2 dB",
                                    _unit(dp, " dB") + f" ({label['tpn']})", dp >= 2.0))
    secs, n = hd["seconds"], max(hd["count"], 1)
    rows = [["one key: DIS flow + warp", 1000 * secs.get("flow", 0) / n],
            ["two keys: two DIS flows + warps + blend (issue 19's prediction step)", 1000 * secs.get("two_key", 0) / n],
            ["`tpn hdr` default: alignment + fusion", 1000 * secs.get("tpn", 0) / n]]
    if model_ok:
        rows.append(["`tpn hdr --tpn`", 1000 * secs.get("tpn_net", 0) / n])
    out.append("\nSpeed (all settings together, one thread; benchmarks/ has the 480p/1080p measurement):\n")
    out.append(ev.markdown_table(["step", "ms/frame"], rows, digits=1))
    return "\n".join(out), targets


# ----------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", action="append", default=[], metavar="TASK=PATH",
                   help="use this model file for TASK (colour, segment, hdr) instead of the manifest's")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: one short sequence per task (colour: one clip per split, its first "
                        f"{QUICK_FRAMES} frames, K = 10, 20), coarse stride")
    p.add_argument("--out", help="markdown output (default docs/RESULTS.md; /tmp/RESULTS.quick.md with --quick)")
    p.add_argument("--json", help="also write the raw numbers here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--Ks", default="10,20,30,40", help="colour: key-frame intervals")
    p.add_argument("--colour-splits", default="tune,heldout", help="colour: tpn_eval.colour_split.SPLITS to run")
    p.add_argument("--seg-seqs", default=",".join(("bmx-trees", "drift-chicane", "goat", "libby")))
    p.add_argument("--seg-stride", type=int, default=1, help="segmentation: use every n-th frame")
    p.add_argument("--seg-modes", default="first,chain,nonet",
                   help="segmentation methods: first (TPN from the first frame), chain (MaskPropagator "
                        "with the TPN), nonet (MaskPropagator without it: ~1 s/frame)")
    p.add_argument("--hdr-seeds", type=int, default=2, help="pseudo-videos per HDR still")
    p.add_argument("--hdr-frames", type=int, default=41)
    p.add_argument("--hdr-size", type=int, default=0, help="frame size (default: the setting's)")
    p.add_argument("--hdr-settings", default="standard,hard", help="tpn_eval.HDR_SETTINGS to run")
    p.add_argument("--hdr-splits", default="tune,heldout", help="tpn_eval.HDR_SPLIT parts to run")
    p.add_argument("--hdr-Ks", default="10,20")
    p.add_argument("--only", default="colour,segment,hdr", help="sections to run")
    p.add_argument("--reuse", metavar="RESULTS.md", action="append", default=[],
                   help="take the sections not run (--only) and their targets from this file, an "
                        "earlier output of this script (repeatable: the first file that has a section)")
    p.add_argument("--what-we-tried", default=str(REPO / "docs" / "what-we-tried.md"))
    a = p.parse_args(argv)
    a.Ks = [int(k) for k in a.Ks.split(",")]
    a.hdr_Ks = [int(k) for k in a.hdr_Ks.split(",")]
    a.hdr_settings, a.hdr_splits = a.hdr_settings.split(","), a.hdr_splits.split(",")
    a.colour_splits = a.colour_splits.split(",")
    a.seg_seqs = a.seg_seqs.split(",")
    a.seg_modes = a.seg_modes.split(",")
    a.only = a.only.split(",")
    if a.quick:
        a.Ks, a.seg_seqs, a.seg_stride = [K for K in a.Ks if K <= 20][:2] or a.Ks[:2], ["libby"], 3
        a.hdr_seeds, a.hdr_frames, a.hdr_size, a.hdr_settings = 1, 21, 128, ["standard"]
    a.out = a.out or ("/tmp/RESULTS.quick.md" if a.quick else str(REPO / "docs" / "RESULTS.md"))
    a.overrides = {}
    for item in a.weights:
        task, sep, path = item.partition("=")
        task = {"color": "colour", "segmentation": "segment"}.get(task, task)
        if not sep or task not in TASKS:
            p.error(f"--weights wants TASK=PATH with TASK in {TASKS}, got {item!r}")
        a.overrides[task] = path
    return a


HEADINGS = {"colour": "## Colour against the two-key flow baseline (issue 19)",
            "segment": "## Segmentation from the first-frame mask",
            "hdr": "## HDR on pseudo-video (tuning and held-out stills)"}


def reuse_sections(paths: list[str], tasks: list[str]) -> dict:
    """The sections of ``tasks`` and their targets rows from RESULTS.md files this script
    wrote (``--reuse``; each task from the first file that has it), so that one part can
    be re-run alone: {'sections', 'targets', 'runs' (each file's commit and date lines)}."""
    out = {"sections": [], "targets": [], "runs": []}
    texts = [(p, Path(p).read_text()) for p in paths]
    for t in tasks:
        found = next(((p, x) for p, x in texts if "\n" + HEADINGS[t] + "\n" in x), None)
        if found is None:
            raise SystemExit(f"--reuse: no {HEADINGS[t]!r} section in {', '.join(paths)}")
        path, text = found
        i = text.find("\n" + HEADINGS[t] + "\n")
        end = text.find("\n## ", i + 1)  # a section holds ### subsections only
        out["sections"].append(text[i + 1:end if end >= 0 else len(text)].strip())
        for line in text.split("## Targets", 1)[1].split("\n## ", 1)[0].splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 4 and cells[0] == t:
                out["targets"].append((t, cells[1], cells[2], {"yes": True, "**no**": False}.get(cells[3])))
        # a section the file itself kept from an earlier run keeps that run's commit and date
        kept = next((ln for ln in text.splitlines() if ln.startswith("- Sections kept")), "")
        earlier = dict(re.findall(r"(\w+) \(((?:[^()]|\([^()]*\))*)\)", kept.split(":", 1)[-1]))
        run = earlier.get(t) or "; ".join(ln[2:] for ln in text.splitlines()
                                          if ln.startswith(("- Commit:", "- Date:")))
        out["runs"].append(f"{t} ({run})")
    return out


def main(argv=None) -> int:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        import cv2
        cv2.setNumThreads(a.threads)
    except ImportError:
        pass
    start = time.time()
    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    started = _dt.datetime.now(_dt.timezone.utc)
    commit = _git("rev-parse", "--short", "HEAD")  # the code that runs: read it before, not after
    dirty = _git("status", "--porcelain", "--untracked-files=no")

    def log(msg):
        print(f"[{time.time() - start:6.0f} s] {msg}", file=sys.stderr, flush=True)

    infos = {t: find_model(t, a.overrides.get(t)) for t in TASKS}
    models = {t: load(infos[t]) for t in TASKS}
    for t in TASKS:
        log(f"{t}: {infos[t]['path'] or 'no model'}" + (f" ({infos[t]['error']})" if infos[t]["error"] else ""))
    sections, targets, raw = [], [], {}
    if "colour" in a.only:
        col = run_colour(a, infos, log)
        text, tg = colour_section(a, col)
        sections.append(HEADINGS["colour"] + "\n\n" + text)
        targets += tg
        raw["colour"] = col["results"]
    if "segment" in a.only:
        seg = run_segment(a, models["segment"], log)
        text, tg = segment_section(a, seg, models["segment"] is not None)
        sections.append(HEADINGS["segment"] + "\n\n" + text)
        targets += tg
        raw["segment"] = {n: {m: {"J": s.J, "F": s.F} for m, s in r["scores"].items()} for n, r in seg.items()}
    if "hdr" in a.only:
        hd = run_hdr(a, models["hdr"], log)
        text, tg = hdr_section(a, hd, models["hdr"] is not None)
        sections.append(HEADINGS["hdr"] + "\n\n" + text)
        targets += tg
        raw["hdr"] = [{"setting": s["setting"], "split": s["split"], "image": s["image"], "seed": s["seed"], "K": K,
                       "pairs": [{"t": t, "k": k, **v} for (t, k), v in r["pairs"].items()]}
                      for s in hd["seqs"] for K, r in s["runs"].items()]
    kept = [t for t in TASKS if t not in a.only]
    earlier = reuse_sections(a.reuse, kept) if a.reuse else None
    if earlier:
        sections += earlier["sections"]
        targets += earlier["targets"]
    elapsed = time.time() - start

    # header, summary, models
    cmd = "python " + " ".join(shlex.quote(x) for x in [os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    head = ["# Results" + (" (QUICK SMOKE RUN — not results)" if a.quick else ""), "",
            "Generated by `scripts/make_results.py`; do not edit by hand.", "",
            f"- Command: `{cmd}`",
            f"- Commit: `{commit}`" + (" (the working tree had uncommitted changes)" if dirty and dirty != "?" else ""),
            f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; run time {elapsed / 60:.1f} min",
            f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
            f"load average {load0:.1f} when the run started (other jobs may have shared the CPUs: "
            "compare frames/s within this file, where all methods were timed in the same run; "
            "docs/BENCHMARKS.md times whole runs on a quiet machine)",
            f"- Frames: colour the {' and '.join(a.colour_splits)} split(s) of tpn_eval.colour_split.SPLITS, "
            f"the first {QUICK_FRAMES if a.quick else cs.MAX_FRAMES} frames of each clip "
            f"(K = {', '.join(map(str, a.Ks))}); "
            f"segmentation {'all frames' if a.seg_stride == 1 else f'every {a.seg_stride}. frame'} of "
            f"{', '.join(a.seg_seqs)}; HDR {a.hdr_seeds} pseudo-video(s) per still of "
            f"{' and '.join(a.hdr_splits)} ({', '.join(a.hdr_settings)}), all held out of training by "
            "tpn_cli.train (sources.DAVIS_VAL, hdr_video.HDR_VAL; the HDR held-out stills are never "
            "read by it).", *([f"- Sections kept (with their targets) from earlier runs of this "
                               f"script: {'; '.join(earlier['runs'])}"] if earlier else []), ""]
    tg_rows = [[task, what, got, "n/a" if ok is None else ("yes" if ok else "**no**")]
               for task, what, got, ok in targets]
    head += ["## Targets (issues 5 and 19)", "", ev.markdown_table(["task", "target", "measured", "met"], tg_rows,
                                                           align="llrl"), ""]
    # what each task is evaluated on here (a segment model trained on the colour held-out
    # clips is no leak)
    colour_held = [c.split(":")[1] for c in cs.SPLITS["heldout"]]
    held_out = {"colour": colour_held, "segment": a.seg_seqs,
                "hdr": [n for split in ev.HDR_SPLIT.values() for n in split]}
    leaks = []
    for info in infos.values():
        e = info.get("entry")
        td = e.extra.get("training_data") if e is not None else None
        text = " ".join(map(str, td)) if isinstance(td, (list, tuple)) else str(td or "")
        text = text.split(", val")[0]  # "train ..., val ..." strings name the held-out data too
        # whole names only ('dog' is not '01_dog')
        leaks += [f"{e.name}: {n}" for n in held_out[info["task"]] if re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)]
    if leaks:
        head += ["**Warning:** the manifest lists evaluation data as training data: "
                 + ", ".join(sorted(set(leaks))), ""]
    changed = [t for t in TASKS if not a.overrides.get(t)
               and find_model(t, None)["sha256"] != infos[t]["sha256"]]
    if changed:  # weights/ was updated while we ran: these numbers are not the shipped weights'
        log(f"WARNING: the manifest's {', '.join(changed)} weights changed during the run")
        head += [f"**Warning:** the {', '.join(changed)} weights in weights/ changed during this run; "
                 "the tables below are for the files listed here, not the ones now shipped.", ""]
    rows = [model_row(t, infos[t]) for t in TASKS]
    head += ["## Models", "",
             ev.markdown_table(["used for", "task", "file", "sha256", "manifest", "model",
                                "training data (licence)"], rows, align="lllllll"), ""]
    body = "\n\n".join(sections)
    tried = ""
    wt = Path(a.what_we_tried)
    if wt.is_file():
        lines = wt.read_text().strip().splitlines()
        if lines and lines[0].startswith("# "):
            lines = lines[1:]
        lines = ["#" + ln if ln.startswith("#") else ln for ln in lines]  # its sections go under ours
        tried = ("\n\n## What we tried\n\n_(from `" + os.path.relpath(wt, REPO) + "`, written by hand)_\n\n"
                 + "\n".join(lines).strip() + "\n")
    notes = ("\n\n## How the numbers are made\n\n" + "\n".join(
        "    " + ln if ln else "" for ln in (ev.__doc__ or "").strip().splitlines()) + "\n")
    text = "\n".join(head) + "\n" + body + tried + notes
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    if a.json:
        Path(a.json).write_text(json.dumps(raw, default=float))
    log(f"wrote {a.out} in {elapsed / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
