"""`tpn segment` end to end on real DAVIS slices (tests/data/make_segment_data.py): masks
carried frame to frame follow the object, later masks add objects, --start/--end and
--tpn/--weights choose what runs."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from _cli_util import DATA, models, one_thread, run_cli  # noqa: F401

GOAT = DATA / "goat_16.mp4"          # DAVIS-2016 goat (held out), frames 0, 2, …, 30
GOAT_MASKS = DATA / "goat_masks"     # its ground truth, every frame
JUDO = DATA / "judo_16.mp4"          # DAVIS-2017 judo, frames 0-15
JUDO_MASKS = DATA / "judo_masks"     # masks at 0 (id 1), 5 (id 2), 8 (id 3), 13 (id 4)


def _ids(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


def _j(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _goat_j(out, frames=range(1, 15)) -> tuple[float, float]:
    """Mean J of the output and of copying the first mask (DAVIS: first and last frame
    excluded)."""
    gt = [_ids(GOAT_MASKS / f"{i:05d}.png") > 0 for i in range(16)]
    pred = [_ids(out / f"{i:05d}.png") > 0 for i in frames]
    return (float(np.mean([_j(p, gt[i]) for p, i in zip(pred, frames)])),
            float(np.mean([_j(gt[0], gt[i]) for i in frames])))


def test_default_run_follows_the_object(tmp_path):
    """Out of the box (no --weights; the bundled segment TPN refines each step): 16 frames,
    the input's palette and ids, and the masks follow the goat (J 0.79 measured, 0.82
    with --no-tpn; copying the first mask: 0.21)."""
    out = tmp_path / "masks"
    code, stdout, err = run_cli("segment", GOAT, "--mask", GOAT_MASKS / "00000.png", "-o", out,
                                "--json")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["frames"] == 16 and summary["mode"] == "chain"
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(16)]
    with Image.open(GOAT_MASKS / "00000.png") as im:
        palette = im.getpalette()
    for i in range(16):
        with Image.open(out / f"{i:05d}.png") as im:
            assert im.mode == "P" and im.size == (256, 144) and im.getpalette() == palette
            assert set(np.unique(np.asarray(im))) <= {0, 1}
    assert np.array_equal(_ids(out / "00000.png"), _ids(GOAT_MASKS / "00000.png"))
    j, j_copy = _goat_j(out)
    assert j_copy < 0.3
    assert j > 0.65, f"J {j:.3f} (copy-first {j_copy:.3f})"


def test_objects_appearing_later_are_added_and_earlier_ones_kept(tmp_path):
    out = tmp_path / "masks"
    code, stdout, err = run_cli("segment", JUDO, "--mask", JUDO_MASKS / "00000.png", "--masks",
                                JUDO_MASKS, "-o", out, "--json")
    assert code == 0, err
    assert json.loads(stdout)["frames"] == 16
    with Image.open(JUDO_MASKS / "00000.png") as im:
        palette = im.getpalette()
    first_area = (_ids(JUDO_MASKS / "00000.png") == 1).sum()
    for i in range(16):
        with Image.open(out / f"{i:05d}.png") as im:
            assert im.mode == "P" and im.getpalette() == palette
            ids = np.asarray(im)
        expected = {0, 1} | {k for at, k in ((5, 2), (8, 3), (13, 4)) if i >= at}
        assert set(np.unique(ids)) == expected, i
        # object 1 is carried through every later mask (none of them contains it)
        assert 0.7 < (ids == 1).sum() / first_area < 1.3, i
    for at, k in ((5, 2), (8, 3), (13, 4)):  # a mask's own object is output as given
        assert np.array_equal(_ids(out / f"{at:05d}.png") == k, _ids(JUDO_MASKS / f"{at:05d}.png") == k)


def test_start_end_run_the_chain_from_the_mask(tmp_path):
    """--start after the first mask: the chain still runs from it (frames before --start
    computed, not written), so the frames equal those of a full run."""
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["segment", JUDO, "--mask", JUDO_MASKS / "00000.png", "--masks", JUDO_MASKS, "-q"]
    assert run_cli(*args, "-o", full, "--end", "12")[0] == 0
    code, stdout, err = run_cli(*args, "-o", part, "--start", "9", "--end", "12", "--json")
    assert code == 0, err
    assert json.loads(stdout)["frames"] == 3
    assert sorted(p.name for p in part.iterdir()) == ["00009.png", "00010.png", "00011.png"]
    for n in ("00009.png", "00010.png", "00011.png"):
        assert np.array_equal(_ids(part / n), _ids(full / n))
    code, stdout, _ = run_cli(*args, "-o", tmp_path / "plan", "--start", "9", "--end", "12",
                              "--dry-run", "--json")
    plan = json.loads(stdout)["plan"]
    assert plan[0] == "frame 0 <- mask 0 (computed, not written: before --start)"
    assert plan[-1] == "frames 9-11 <- chained from mask 8"


def test_frames_before_the_first_mask_get_it(tmp_path):
    mask = tmp_path / "m_00003.png"
    mask.write_bytes((GOAT_MASKS / "00003.png").read_bytes())
    out = tmp_path / "out"
    code, _, err = run_cli("segment", GOAT, "--mask", mask, "-o", out, "--end", "5")
    assert code == 0, err
    assert "frames 0-2 come before the first mask (3)" in err
    for i in range(3):
        assert np.array_equal(_ids(out / f"{i:05d}.png"), _ids(mask))


def test_tpn_and_weights_choose_the_model(tmp_path, models):
    base = ["segment", GOAT, "--mask", GOAT_MASKS / "00000.png", "--end", "6", "--json"]
    # default: the bundled segment TPN refines each step (chain.USE_TPN, measured better)
    code, stdout, _ = run_cli(*base, "-o", tmp_path / "a", "--dry-run")
    plan = json.loads(stdout)
    assert code == 0 and plan["uses_model"] and plan["weights"].endswith(".tpn")
    # --no-tpn: the chain alone, no weights needed
    code, stdout, _ = run_cli(*base, "-o", tmp_path / "a", "--dry-run", "--no-tpn")
    plan = json.loads(stdout)
    assert code == 0 and not plan["uses_model"] and plan["weights"] is None
    # --tpn: the bundled segment model refines each step
    code, stdout, err = run_cli(*base, "-o", tmp_path / "b", "--tpn")
    assert code == 0, err
    summary = json.loads(stdout)
    assert summary["weights"].endswith(".tpn") and "TPN" in summary["propagation"]
    # --weights selects a model (and turns the TPN on); an untrained one copies its input,
    # so the masks equal the chain without it
    code, stdout, err = run_cli(*base, "-o", tmp_path / "c", "--weights", models["segment"])
    assert code == 0, err
    assert json.loads(stdout)["weights"] == str(models["segment"])
    code, _, err = run_cli(*base, "-o", tmp_path / "d", "--no-tpn")
    assert code == 0, err
    for i in range(6):
        a, b = _ids(tmp_path / "c" / f"{i:05d}.png"), _ids(tmp_path / "d" / f"{i:05d}.png")
        assert (a == b).mean() > 0.999
    # a wrong name still fails with exit 4 and the download command
    code, _, err = run_cli(*base, "-o", tmp_path / "e", "--weights", "segment-v9",
                           env={"TPN_CACHE_DIR": str(tmp_path / "cache")})
    assert code == 4 and "tpn weights download segment-v9" in err


def test_chain_with_the_shipped_tpn_follows_the_object(tmp_path):
    """--tpn with the bundled segment-v1 (J 0.79 measured on the slice, 0.82 without)."""
    out = tmp_path / "masks"
    code, _, err = run_cli("segment", GOAT, "--mask", GOAT_MASKS / "00000.png", "-o", out, "--tpn", "-q")
    assert code == 0, err
    j, _ = _goat_j(out)
    assert j > 0.55, f"J {j:.3f}"


def test_interrupted_run_leaves_no_output(tmp_path, monkeypatch):
    """Ctrl-C in the middle of the chain: no output folder, no temporary left behind
    (the SIGINT → exit 130 path is tested for colorize in test_cli_errors.py)."""
    from tpn_cli import mask_tracker as seg

    real, calls = seg.MaskPropagator.step, []

    def step(self, rgb):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, rgb)

    monkeypatch.setattr(seg.MaskPropagator, "step", step)
    work = tmp_path / "work"
    work.mkdir()
    try:
        code, _, _ = run_cli("segment", GOAT, "--mask", GOAT_MASKS / "00000.png", "-o", work / "out",
                             "--overlay", work / "overlay.mp4", "-q")
    except KeyboardInterrupt:
        code = 130
    assert code != 0 and len(calls) == 5
    assert list(work.iterdir()) == []


def test_timing_sections_explain_the_chain(tmp_path, models):
    """TPN_TIMING on a segment run: every part of the chain is timed (no TPN: decode,
    colour, flow, network = the colour model, encode, keys; with one: scan too), and the
    parts add up to most of the run (they nest exclusively, so never more than it)."""
    from tpn_cli import timing

    was = timing.enabled()
    base = ["segment", GOAT, "--mask", GOAT_MASKS / "00000.png", "--end", "8", "-q", "--json"]
    try:
        for name, extra, want in (
                ("a", [], {"decode", "colour", "flow", "network", "encode", "keys"}),
                ("b", ["--weights", models["segment"]], {"scan"})):
            report = tmp_path / f"{name}.json"
            code, stdout, err = run_cli(*base, "-o", tmp_path / name, *extra,
                                        env={"TPN_TIMING": str(report)})
            assert code == 0, err
            parts = json.loads(report.read_text())
            assert want <= {k for k, v in parts.items() if v["wall"] > 0}, parts
            total = sum(v["wall"] for v in parts.values())
            seconds = json.loads(stdout)["seconds"]
            assert 0.6 * seconds <= total <= seconds * 1.05 + 0.01, (total, seconds)
    finally:
        if not was:
            timing.disable()
