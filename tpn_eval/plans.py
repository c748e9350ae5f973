"""Which key-frame feeds which frame in an evaluation: key-frames every K frames, the
schedules of `tpn colorize --mode` (:func:`tpn_cli.keyframes.plan`), the distinct
(frame, key) pairs a set of plans needs."""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

from tpn_cli.keyframes import plan

__all__ = ["SCHEDULES", "key_frames", "assign_keys", "keys_of", "colour_pairs", "blends_of"]

SCHEDULES = ("online", "nearest", "blend")


def key_frames(n: int, K: int) -> list[int]:
    """Key-frame indices of an ``n``-frame clip with a key-frame every ``K`` frames."""
    if K < 1 or n < 1:
        raise ValueError(f"need n >= 1 and K >= 1, got n={n}, K={K}")
    return list(range(0, n, K))


def assign_keys(n: int, K: int, schedule: str, frames: Iterable[int] | None = None) -> dict[int, Any]:
    """Key-frames of the non-key frames among ``frames`` (default all) under ``schedule``,
    key-frames every K frames from 0: {frame: key} for 'online' and 'nearest', {frame:
    ((key, weight), ...)} for 'blend' (one or two keys, :func:`tpn_cli.keyframes.plan`)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; expected one of {SCHEDULES}")
    keys = key_frames(n, K)
    keyset = set(keys)
    wanted = set(range(n)) if frames is None else {int(t) for t in frames if 0 <= int(t) < n}
    out = {}
    for a in plan(n, keys, schedule):
        if a.frame in wanted and a.frame not in keyset:
            out[a.frame] = a.sources if schedule == "blend" else a.key
    return out


def keys_of(assigned: Any) -> list[int]:
    return [k for k, _ in assigned] if isinstance(assigned, tuple) else [assigned]


def colour_pairs(n: int, Ks: Sequence[int], schedules: Sequence[str] = SCHEDULES,
                 stride: int = 1) -> tuple[dict[tuple[int, str], dict[int, Any]], list[tuple[int, int]]]:
    """Evaluated frames (every ``stride``-th, from 0) for each (K, schedule), and the sorted
    distinct (frame, key) pairs they need."""
    frames = range(0, n, stride)
    per = {(K, s): assign_keys(n, K, s, frames) for K in Ks for s in schedules}
    pairs = sorted({(t, k) for a in per.values() for t, v in a.items() for k in keys_of(v)})
    return per, pairs


def blends_of(per: Mapping[tuple[int, str], Mapping[int, Any]]) -> dict[int, set]:
    """{frame: {((key, weight), (key, weight)), ...}}: the two-key blends of the plans."""
    out: dict[int, set] = defaultdict(set)
    for (_, s), a in per.items():
        for t, v in a.items():
            if s == "blend" and len(v) == 2:
                out[t].add(v)
    return dict(out)
