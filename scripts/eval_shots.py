"""Measure the shot-change detector (tpn_cli.shots) on real footage.

    python scripts/eval_shots.py [--threshold 0.4] [--seed 0] [--sequences 40] [--json]

Every clip of $TPN_DATA/video (*.mp4) and every DAVIS-2016 sequence of
$TPN_DATA/davis16/JPEGImages/480p is reduced once to the detector's luminance thumbnails
(tpn_cli.media ``thumbnails``, the pass `tpn colorize` runs). Test sets, built from them:

* ``cuts``: sequences of 6 pieces (15-60 frames) of different clips, joined by hard cuts.
* ``jump cuts``: two pieces of the same clip at least 60 frames apart (same scene, same
  light: the hardest cuts for a luminance detector).
* ``no cut``: every clip whole (fast motion: bmx-trees, drift-chicane, libby, breakdance;
  pans: car-roundabout, camel; the 180-frame black-and-white film with its flicker is
  reported on its own). running_car.mp4 holds one real shot change (a whip through snow
  spray, frames 270-274): one detection in that range is a hit.
* ``flash``: each clip with 1-2 frames blown out (x·1.8 + 60, clipped), as a camera flash.
* ``fade``: each clip faded to 5 % brightness over 12 frames and back, same shot.
* ``fade between shots``: clip A fades to black, clip B fades in: a gradual shot change,
  a hit when one cut is found anywhere in the 24 dark frames (reported, not tuned for).

A hard cut is found when the detector names exactly its first frame. Precision and recall
over the hard cuts of ``cuts`` and ``jump cuts``; false cuts per 1000 frames over the sets
without a cut (``no cut`` without the film, ``flash``, ``fade``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tpn_cli import shots  # noqa: E402
from tpn_cli.media import FrameFolderReader, VideoReader  # noqa: E402

DATA = Path(os.environ.get("TPN_DATA", "/work/shared/data"))
FILM = "video/oldfilm_bw"
#: Shot changes inside the source clips (inclusive frame ranges), found by looking.
INSIDE = {"video/running_car": (270, 274)}


def load_thumbs() -> dict[str, np.ndarray]:
    """{name: (frames, 36, 64) uint8} for every clip and DAVIS sequence."""
    w, h = shots.THUMB_SIZE
    out = {}
    for f in sorted((DATA / "video").glob("*.mp4")):
        out["video/" + f.stem] = np.stack([t for _, t in VideoReader(f).thumbnails(w, h)])
    for d in sorted((DATA / "davis16" / "JPEGImages" / "480p").iterdir()):
        out["davis/" + d.name] = np.stack([t for _, t in FrameFolderReader(d).thumbnails(w, h)])
    return out


def clean_range(name: str, n: int) -> list[tuple[int, int]]:
    """Frame ranges [a, b) of a clip without a shot change inside."""
    if name not in INSIDE:
        return [(0, n)]
    a, b = INSIDE[name]
    return [(0, a), (b + 1, n)]


def piece(rng: np.random.Generator, thumbs: dict, name: str, length: int) -> np.ndarray | None:
    ranges = [(a, b) for a, b in clean_range(name, len(thumbs[name])) if b - a >= length]
    if not ranges:
        return None
    a, b = ranges[rng.integers(len(ranges))]
    s = int(rng.integers(a, b - length + 1))
    return thumbs[name][s:s + length]


def cut_sequences(rng: np.random.Generator, thumbs: dict, count: int) -> list[tuple[np.ndarray, list[int]]]:
    """``count`` sequences of 6 pieces of different clips; (thumbs, cut indices)."""
    names = [n for n in thumbs if n != FILM]
    out = []
    while len(out) < count:
        parts, prev = [], None
        while len(parts) < 6:
            name = names[rng.integers(len(names))]
            p = piece(rng, thumbs, name, int(rng.integers(15, 61)))
            if name != prev and p is not None:
                parts.append(p)
                prev = name
        cuts = list(np.cumsum([len(p) for p in parts[:-1]]))
        out.append((np.concatenate(parts), [int(c) for c in cuts]))
    return out


def jump_cuts(rng: np.random.Generator, thumbs: dict) -> list[tuple[np.ndarray, list[int]]]:
    """Per clip of 150+ clean frames: 30-40 frames, then 30-40 frames at least 60 later."""
    out = []
    for name in thumbs:
        if name == FILM:
            continue
        for a, b in clean_range(name, len(thumbs[name])):
            if b - a >= 150:
                la, lb = int(rng.integers(30, 41)), int(rng.integers(30, 41))
                s1 = int(rng.integers(a, b - la - 60 - lb + 1))
                s2 = int(rng.integers(s1 + la + 60, b - lb + 1))
                v = thumbs[name]
                out.append((np.concatenate([v[s1:s1 + la], v[s2:s2 + lb]]), [la]))
                break
    return out


def gain(v: np.ndarray, g: np.ndarray, offset: np.ndarray | float = 0.0) -> np.ndarray:
    """Brightness ``v·g + offset`` per frame, clipped to 8 bits (as a camera records it)."""
    g = np.asarray(g, np.float32).reshape(-1, 1, 1)
    o = np.asarray(offset, np.float32).reshape(-1, 1, 1) if np.ndim(offset) else offset
    return np.clip(np.rint(v.astype(np.float32) * g + o), 0, 255).astype(np.uint8)


def flashes(rng: np.random.Generator, thumbs: dict) -> list[tuple[str, np.ndarray]]:
    out = []
    for name, v in thumbs.items():
        if name in INSIDE or name == FILM:
            continue
        t, k = int(rng.integers(5, len(v) - 6)), int(rng.integers(1, 3))
        g = np.ones(len(v), np.float32)
        o = np.zeros(len(v), np.float32)
        g[t:t + k], o[t:t + k] = 1.8, 60.0
        out.append((name, gain(v, g, o)))
    return out


def fade_curve(n: int, t: int, ramp: int = 12, low: float = 0.05) -> np.ndarray:
    """Gain 1 → ``low`` over ``ramp`` frames from ``t``, then back to 1 over ``ramp``."""
    g = np.ones(n, np.float32)
    down = np.linspace(1.0, low, ramp + 1)[1:]
    g[t:t + ramp] = down[:max(0, min(ramp, n - t))]
    g[t + ramp:t + 2 * ramp] = down[::-1][:max(0, min(ramp, n - t - ramp))]
    return g


def fades(rng: np.random.Generator, thumbs: dict) -> list[tuple[str, np.ndarray]]:
    out = []
    for name, v in thumbs.items():
        if name in INSIDE or name == FILM or len(v) < 40:
            continue
        t = int(rng.integers(2, len(v) - 26))
        out.append((name, gain(v, fade_curve(len(v), t))))
    return out


def fades_between(rng: np.random.Generator, thumbs: dict, count: int) -> list[tuple[np.ndarray, tuple[int, int]]]:
    """A fades out over 12 frames, B fades in over 12: (thumbs, dark range inclusive)."""
    names = [n for n in thumbs if n not in INSIDE and n != FILM]
    out = []
    while len(out) < count:
        a, b = rng.choice(len(names), 2, replace=False)
        pa, pb = piece(rng, thumbs, names[a], 40), piece(rng, thumbs, names[b], 40)
        ga = np.ones(40, np.float32)
        ga[28:] = np.linspace(1.0, 0.0, 13)[1:]
        gb = ga[::-1].copy()
        out.append((np.concatenate([gain(pa, ga), gain(pb, gb)]), (28, 51)))
    return out


def detect(v: np.ndarray, threshold: float) -> list[int]:
    return shots.find_cuts(enumerate(v), threshold)


def evaluate(thumbs: dict, threshold: float, seed: int, count: int) -> dict:
    rng = np.random.default_rng(seed)
    res: dict = {"threshold": threshold, "seed": seed}
    tp = fn = fp = 0
    for label, seqs in (("cuts", cut_sequences(rng, thumbs, count)), ("jump cuts", jump_cuts(rng, thumbs))):
        s_tp = s_fp = s_fn = frames = 0
        for v, truth in seqs:
            found = set(detect(v, threshold))
            s_tp += len(found & set(truth))
            s_fp += len(found - set(truth))
            s_fn += len(set(truth) - found)
            frames += len(v)
        res[label] = {"sequences": len(seqs), "frames": frames, "cuts": s_tp + s_fn,
                      "found": s_tp, "missed": s_fn, "false": s_fp}
        tp, fp, fn = tp + s_tp, fp + s_fp, fn + s_fn
    res["precision"] = tp / max(1, tp + fp)
    res["recall"] = tp / max(1, tp + fn)
    false, frames = 0, 0
    per_clip = {}
    for name, v in thumbs.items():
        found = detect(v, threshold)
        if name in INSIDE:
            a, b = INSIDE[name]
            per_clip[name] = {"frames": len(v), "cuts": found,
                              "transition_found": any(a <= c <= b for c in found)}
            found = [c for c in found if not a <= c <= b]
        else:
            per_clip[name] = {"frames": len(v), "cuts": found}
        if name != FILM:
            false += len(found)
            frames += len(v)
    res["no cut"] = {"frames": frames, "false": false, "clips": per_clip}
    for label, seqs in (("flash", flashes(rng, thumbs)), ("fade", fades(rng, thumbs))):
        found = {name: detect(v, threshold) for name, v in seqs}
        f = sum(len(c) for c in found.values())
        n = sum(len(v) for _, v in seqs)
        res[label] = {"sequences": len(seqs), "frames": n, "false": f,
                      "where": {name: c for name, c in found.items() if c}}
        false, frames = false + f, frames + n
    res["false_per_1000"] = 1000 * false / max(1, frames)
    res["non_cut_frames"] = frames
    film = detect(thumbs[FILM], threshold)
    res["film"] = {"frames": len(thumbs[FILM]), "false": len(film), "cuts": film}
    between = fades_between(rng, thumbs, count // 2)
    hits = sum(any(a <= c <= b for c in detect(v, threshold)) for v, (a, b) in between)
    res["fade between shots"] = {"sequences": len(between), "found": hits}
    return res


def speed(thumbs: dict) -> dict:
    """Detector time per frame (thumbnails given) and the thumbnail pass of a 720p clip."""
    v = np.concatenate(list(thumbs.values()))
    t0 = time.perf_counter()
    detect(v, shots.DEFAULT_THRESHOLD)
    detector = (time.perf_counter() - t0) / len(v)
    clip = DATA / "video" / "01_dog.mp4"
    t0 = time.perf_counter()
    n = sum(1 for _ in VideoReader(clip).thumbnails(*shots.THUMB_SIZE))
    thumb_pass = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    n = sum(1 for _ in VideoReader(clip).frames())
    full = (time.perf_counter() - t0) / n
    return {"detector_ms": 1000 * detector, "thumbnail_pass_fps_720p": 1 / thumb_pass,
            "full_rgb_decode_fps_720p": 1 / full}


def report(r: dict) -> str:
    c, j, nc = r["cuts"], r["jump cuts"], r["no cut"]
    lines = [
        f"threshold {r['threshold']}, seed {r['seed']}",
        f"hard cuts: {c['found']}/{c['cuts']} between clips, {j['found']}/{j['cuts']} jump cuts "
        f"(same clip); false cuts in those sequences: {c['false'] + j['false']}",
        f"precision {r['precision']:.3f}, recall {r['recall']:.3f}",
        f"false cuts per 1000 frames without a cut: {r['false_per_1000']:.2f} "
        f"({nc['false'] + r['flash']['false'] + r['fade']['false']} in {r['non_cut_frames']} frames: "
        f"whole clips {nc['false']}/{nc['frames']}, flashes {r['flash']['false']}/{r['flash']['frames']}, "
        f"fades {r['fade']['false']}/{r['fade']['frames']})",
        f"old film ({r['film']['frames']} frames, flicker): {r['film']['false']} false cuts {r['film']['cuts']}",
        f"fade between shots found: {r['fade between shots']['found']}/{r['fade between shots']['sequences']}",
    ]
    for label in ("flash", "fade"):
        for name, cuts in r[label]["where"].items():
            lines.append(f"  {label} in {name}: false cuts at {cuts}")
    for name, v in nc["clips"].items():
        if v["cuts"]:
            lines.append(f"  {name}: cuts at {v['cuts']}" + (
                f" (transition {INSIDE[name]} found: {v['transition_found']})" if name in INSIDE else ""))
    if "speed" in r:
        s = r["speed"]
        lines.append(f"speed: detector {s['detector_ms']:.2f} ms/frame; thumbnail pass "
                     f"{s['thumbnail_pass_fps_720p']:.0f} frames/s on 720p "
                     f"(full RGB decoding {s['full_rgb_decode_fps_720p']:.0f} frames/s)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threshold", type=float, nargs="+", default=[shots.DEFAULT_THRESHOLD])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sequences", type=int, default=40)
    ap.add_argument("--speed", action="store_true", help="Also time the detector and the thumbnail pass.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    thumbs = load_thumbs()
    for th in args.threshold:
        r = evaluate(thumbs, th, args.seed, args.sequences)
        if args.speed:
            r["speed"] = speed(thumbs)
        print(json.dumps(r) if args.json else report(r))


if __name__ == "__main__":
    main()
