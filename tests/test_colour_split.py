"""Issue 19's colour evaluation (tpn_eval/colour_split.py) and make_results' colour section."""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tpn_eval import colour_split as cs


def _rec(psnr: dict, we: dict, gt: dict, switch: dict) -> dict:
    return {"psnr": psnr, "we": we, "gt_we": gt, "switch": switch, "seconds": 1.0, "frames": len(psnr)}


def _results(gain_a: float, gain_b: float, K: int = 20, method: str = "product:blend") -> dict:
    """Two clips; ``method`` is ``gain_a`` / ``gain_b`` dB above the baseline on every frame;
    its warping error is 2 at the one key change, 1 elsewhere (the truth 1 everywhere)."""
    res = {}
    for clip, g in (("davis:a", gain_a), ("video:b", gain_b)):
        sw = {0: False, 8: True}
        gt = {0: 1.0, 8: 1.0}
        res[f"{clip}|{K}|baseline"] = _rec({1: 30.0, 9: 32.0}, {0: 1.0, 8: 1.0}, gt, sw)
        res[f"{clip}|{K}|{method}"] = _rec({1: 30.0 + g, 9: 32.0 + g}, {0: 1.0, 8: 2.0}, gt, sw)
    return res


def test_summarise_gain_worst_clip_and_warping_error():
    s = cs.summarise(_results(1.0, -0.5))
    p = s[(20, "product:blend")]
    assert p["clips"] == 2 and p["frames"] == 4
    assert p["gain"] == pytest.approx(0.25)
    assert p["worst"] == pytest.approx(-0.5) and p["worst_clip"] == "b"
    assert p["we"] == pytest.approx(1.5)
    assert p["we_switch"] == pytest.approx(2.0) and p["we_else"] == pytest.approx(1.0)
    assert p["excess_switch"] == pytest.approx(1.0) and p["excess_else"] == 0.0  # above the truth's 1
    assert s[(20, "baseline")]["gain"] == 0.0
    assert cs.clip_gains(_results(1.0, -0.5), "product:blend") == {
        20: {"davis:a": pytest.approx(1.0), "video:b": pytest.approx(-0.5)}}


def test_summarise_reads_json_round_trip():
    """Frame keys become strings in the JSON the scripts write; the tables do not care."""
    import json
    res = json.loads(json.dumps(_results(0.5, 0.5)))
    assert cs.summarise(res)[(20, "product:blend")]["gain"] == pytest.approx(0.5)


def test_evaluated_pairs_add_key_changes_from_switch_from():
    n = 81
    at10 = cs.evaluated_pairs(n, list(range(0, n, 10)), 10)
    assert at10 == list(range(0, n - 1, cs.STRIDE))
    at20 = cs.evaluated_pairs(n, list(range(0, n, 20)), 20)
    assert set(at10) < set(at20)
    assert {10, 19, 20} <= set(at20)  # nearest: 10 → 11 (ties go early), 19 → the key 20; blend: 20 → 21


def test_product_methods_follow_the_command(monkeypatch):
    """``product:MODE`` runs the TPN only as `tpn colorize` would (ColourTask.USE_TPN),
    ``:tpn`` forces it; unknown flags are refused."""
    from tpn_cli.tasks.colour import ColourTask

    rng = np.random.default_rng(0)
    frames = [np.clip(rng.normal(120, 40, (48, 64, 3)), 0, 255).astype(np.uint8) for _ in range(9)]
    calls = []

    def fake_model(spec=None):
        calls.append(spec)
        raise RuntimeError("the TPN was asked for")
    monkeypatch.setattr(cs, "product_model", fake_model)
    monkeypatch.setattr(ColourTask, "USE_TPN", False)
    fn, sched = cs.method("product:blend")
    assert sched == "blend"
    out = fn(frames, 9, [0, 8], {0, 4, 8})
    assert set(out) == {0, 4, 8} and out[4].shape == frames[4].shape
    assert np.array_equal(out[0], frames[0])
    assert calls == []
    with pytest.raises(RuntimeError):
        cs.method("product:blend:tpn")[0](frames, 9, [0, 8], {4})
    monkeypatch.setattr(ColourTask, "USE_TPN", True)
    with pytest.raises(RuntimeError):
        cs.method("product:blend")[0](frames, 9, [0, 8], {4})
    assert cs.method("product:blend:notpn")[0](frames, 9, [0, 8], {4})[4].shape == (48, 64, 3)
    with pytest.raises(ValueError):
        cs.method("product:blend:fast")


def _make_results():
    path = Path(__file__).resolve().parent.parent / "scripts" / "make_results.py"
    spec = importlib.util.spec_from_file_location("make_results_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_make_results_colour_section_checks_issue_19():
    mr = _make_results()
    default = mr.colour_methods()[1][1]
    res = {**_results(1.5, 0.8, 10, default), **_results(1.2, -0.1, 20, default)}
    col = {"results": {"heldout": res}, "clips": {"heldout": ["davis:a", "video:b"]}, "missing": {},
           "frames": 81}
    text, targets = mr.colour_section(SimpleNamespace(Ks=[10, 20]), col)
    assert "### Held-out split (a, b)" in text and "| 20 | +1.20 | -0.10 |" in text
    met = {what: ok for _, what, _, ok in targets}
    pick = lambda word: [ok for what, ok in met.items() if word in what]  # noqa: E731
    assert pick("+ 1.0 dB") == [True, False]        # +1.15, +0.55 over the same frames
    assert pick("any clip") == [True, False]        # worst +0.8, −0.1
    assert pick("≤ 1.1") == [False, False]          # 1.5 × the truth's
    assert pick("no jump") == [False, False]        # 2.0 at the key change, 1.0 elsewhere
    assert pick("stricter") == [False, False]       # the WE-ratio proxy alike
    assert len(targets) == 10
