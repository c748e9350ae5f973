"""Distance bins, means and markdown tables for docs/RESULTS.md."""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ["DISTANCE_BINS", "distance_bin", "bin_by_distance", "mean", "fmt", "markdown_table"]

#: Distance-to-key-frame bins (inclusive ranges) for the "as a function of distance" tables.
DISTANCE_BINS: tuple[tuple[int, int], ...] = ((1, 1), (2, 2), (3, 4), (5, 7), (8, 10), (11, 15),
                                              (16, 20), (21, 30), (31, 40))


def distance_bin(d: int, bins: Sequence[tuple[int, int]] = DISTANCE_BINS) -> str | None:
    """Label ('3–4', '1') of the bin holding distance ``d``, None if none does."""
    for lo, hi in bins:
        if lo <= d <= hi:
            return str(lo) if lo == hi else f"{lo}–{hi}"
    return None


def bin_by_distance(items: Iterable[tuple[int, float]],
                    bins: Sequence[tuple[int, int]] = DISTANCE_BINS) -> dict[str, tuple[float, int]]:
    """(distance, value) items → {bin label: (mean of finite values, count)}, in bin order;
    empty bins are left out."""
    acc: dict[str, list[float]] = {}
    for d, v in items:
        label = distance_bin(int(d), bins)
        if label is not None:
            acc.setdefault(label, []).append(float(v))
    order = [distance_bin(lo, bins) for lo, _ in bins]
    return {b: (mean(acc[b]), len(acc[b])) for b in order if b in acc}


def mean(values: Iterable[float]) -> float:
    """Mean of the finite values (NaN when there are none)."""
    v = [float(x) for x in values if x is not None and math.isfinite(float(x))]
    return float(np.mean(v)) if v else float("nan")


def fmt(v: Any, digits: int = 2, signed: bool = False) -> str:
    """A table cell: numbers to ``digits`` decimals ('+' in front if ``signed``), None/NaN → 'n/a'."""
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    x = float(v)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], digits: int = 2,
                   align: str | None = None) -> str:
    """A GitHub markdown table; cells go through :func:`fmt`, white space (new lines) is
    collapsed and '|' escaped so a cell never breaks the table. ``align``: one character per
    column, 'l' or 'r' (default: first column left, the others right)."""
    headers = list(headers)
    rows = [list(r) for r in rows]
    for r in rows:
        if len(r) != len(headers):
            raise ValueError(f"row {r!r} has {len(r)} cells, expected {len(headers)}")
    align = align or ("l" + "r" * (len(headers) - 1))
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule) + "|"]
    for r in rows:
        cells = (" ".join(fmt(c, digits).split()).replace("|", "\\|") for c in r)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
