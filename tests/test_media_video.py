"""VideoReader / VideoWriter on tiny real clips (tests/data, see make_media_data.py)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from _cli_util import interruptible
from tpn_cli.errors import BadInputError, OutputNotWritableError
from tpn_cli.media import open_input, output_kind
from tpn_cli.media.video import BT709, ColorTags, VideoReader, VideoWriter

DATA = Path(__file__).parent / "data"
DOG = DATA / "dog_2997_audio.mp4"      # 29.97 fps, AAC audio, BT.709
SUBS = DATA / "dog_subs.mkv"           # + SRT subtitles, Matroska
VFR = DATA / "juggle_vfr.mp4"          # irregular pts
BED444 = DATA / "bedroom_444.mkv"      # yuv444p


def _packets(path: Path, kind: str) -> list[tuple[bytes, float]]:
    with av.open(str(path)) as c:
        streams = getattr(c.streams, kind)
        return [(bytes(p), float(p.pts * p.time_base)) for p in c.demux(*streams) if p.size]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))


def _transcode(src: Path, dst: Path, **kw) -> VideoWriter:
    r = VideoReader(src)
    kw.setdefault("preset", "ultrafast")
    with VideoWriter.like(r, dst, **kw) as w:
        for f in r.frames():
            w.write(f.image, f.pts)
    return w


def test_reader_metadata_2997():
    r = VideoReader(DOG)
    assert r.fps == Fraction(30000, 1001)
    assert r.time_base == Fraction(1, 30000)
    assert r.size == (160, 90)
    assert r.frame_count == r.count_frames() == 12
    assert r.color == BT709
    assert r.has_audio and not r.has_subtitles
    assert r.rotation == 0
    frames = list(r.frames())
    assert [f.index for f in frames] == list(range(12))
    assert [f.pts for f in frames] == [1001 * i for i in range(12)]
    assert frames[0].image.shape == (90, 160, 3) and frames[0].image.dtype == np.uint8
    part = list(r.frames(3, 5))
    assert [f.index for f in part] == [3, 4]
    assert np.array_equal(part[0].image, frames[3].image)
    assert r.read(7).pts == frames[7].pts


def test_reader_counts_frames_without_metadata():
    r = VideoReader(SUBS)  # Matroska stores no frame count
    assert r.frames_metadata == 0
    assert r.frame_count == 12
    assert r.has_subtitles and r.has_audio


@pytest.mark.parametrize("src,ext", [(DOG, ".mp4"), (SUBS, ".mkv"), (VFR, ".mp4")],
                         ids=["29.97+audio", "mkv+audio+subs", "vfr"])
def test_roundtrip_keeps_timing_tags_and_streams(tmp_path, src, ext):
    out = tmp_path / f"out{ext}"
    w = _transcode(src, out)
    assert w.warnings == []
    a, b = VideoReader(src), VideoReader(out)
    assert b.size == a.size
    assert b.count_frames() == a.count_frames()
    assert b.color == a.color
    if src != VFR:  # a VFR file's average rate depends on its last frame's duration
        assert b.fps == a.fps
    fa, fb = list(a.frames()), list(b.frames())
    # same presentation times (to the millisecond; mkv stores ms)
    assert [round(f.time, 3) for f in fb] == [round(f.time, 3) for f in fa]
    assert min(_psnr(x.image, y.image) for x, y in zip(fa, fb)) > 30
    # audio remuxed bit-exact, with the same timestamps
    if a.has_audio:
        pa, pb = _packets(src, "audio"), _packets(out, "audio")
        assert [p for p, _ in pb] == [p for p, _ in pa]
        assert [round(t, 3) for _, t in pb] == [round(t, 3) for _, t in pa]
    if a.has_subtitles:
        assert [p for p, _ in _packets(out, "subtitles")] == [p for p, _ in _packets(src, "subtitles")]
    # nothing left but the output
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_vfr_pts_exact(tmp_path):
    out = tmp_path / "vfr.mkv"
    _transcode(VFR, out)
    times = [f.time for f in VideoReader(out).frames()]
    assert [round(t * 1000) for t in times] == [0, 33, 66, 140, 180, 400, 433, 500, 620, 700]


def test_subtitles_skipped_with_warning_for_mp4(tmp_path):
    w = _transcode(SUBS, tmp_path / "o.mp4")
    assert any("srt" in m or "subtitle" in m for m in w.warnings)
    assert VideoReader(tmp_path / "o.mp4").has_audio


def test_keep_chroma_and_default_420(tmp_path):
    _transcode(BED444, tmp_path / "a.mkv")
    _transcode(BED444, tmp_path / "b.mkv", keep_chroma=True)
    assert VideoReader(tmp_path / "a.mkv").pix_fmt == "yuv420p"
    assert VideoReader(tmp_path / "b.mkv").pix_fmt == "yuv444p"


def test_16bit_path_and_10bit_output(tmp_path):
    r = VideoReader(DOG, depth=16)
    f0 = r.read(0)
    assert f0.image.dtype == np.uint16 and f0.image.max() > 255
    out = tmp_path / "ten.mkv"
    with VideoWriter.like(r, out, pix_fmt="yuv420p10le", preset="ultrafast", copy_streams_from=None) as w:
        for f in r.frames(0, 3):
            w.write(f.image, f.pts)
    b = VideoReader(out)
    assert b.bit_depth == 10 and b.depth == 16 and not b.has_audio
    assert b.read(0).image.dtype == np.uint16


def test_rotation_tag_and_odd_size(tmp_path):
    out = tmp_path / "rot.mp4"
    img = np.full((33, 47, 3), 128, np.uint8)
    with VideoWriter(out, width=47, height=33, fps=25, rotation=90, preset="ultrafast") as w:
        for _ in range(2):
            w.write(img)
    assert any("odd" in m for m in w.warnings)
    r = VideoReader(out)
    assert r.rotation == 90 and r.pix_fmt == "yuv444p" and r.size == (47, 33)
    assert VideoReader(out, autorotate=True).size == (33, 47)
    assert next(iter(VideoReader(out, autorotate=True))).image.shape == (47, 33, 3)


def test_failure_and_interrupt_leave_nothing(tmp_path):
    r = VideoReader(DOG)
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with VideoWriter.like(r, tmp_path / "x.mp4", preset="ultrafast") as w:
                for f in r.frames(0, 3):
                    w.write(f.image, f.pts)
                raise exc
        assert list(tmp_path.iterdir()) == []


def test_existing_output_not_overwritten(tmp_path):
    out = tmp_path / "x.mp4"
    out.write_bytes(b"precious")
    r = VideoReader(DOG)
    with pytest.raises(OutputNotWritableError) as ei:
        VideoWriter.like(r, out)
    assert ei.value.exit_code == 6 and str(out) in str(ei.value) and "--overwrite" in str(ei.value)
    assert out.read_bytes() == b"precious"
    _transcode(DOG, out, overwrite=True)
    assert VideoReader(out).count_frames() == 12


def test_missing_folder_is_not_writable(tmp_path):
    with pytest.raises(OutputNotWritableError) as ei:
        VideoWriter(tmp_path / "nope" / "x.mp4", width=16, height=16, fps=25)
    assert ei.value.exit_code == 6 and "mkdir" in str(ei.value)


def test_missing_and_corrupt_inputs(tmp_path):
    with pytest.raises(BadInputError) as ei:
        VideoReader(tmp_path / "missing.mp4")
    assert ei.value.exit_code == 3 and "missing.mp4" in str(ei.value)
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    with pytest.raises(BadInputError) as ei:
        VideoReader(bad)
    assert ei.value.exit_code == 3 and "corrupt.mp4" in str(ei.value) and "fix:" in str(ei.value)


def test_pts_must_increase(tmp_path):
    with VideoWriter(tmp_path / "x.mkv", width=16, height=16, fps=25, preset="ultrafast") as w:
        w.write(np.zeros((16, 16, 3), np.uint8), 5)
        with pytest.raises(Exception, match="does not increase"):
            w.write(np.zeros((16, 16, 3), np.uint8), 5)


def test_output_kind_and_open_input(tmp_path):
    assert output_kind(tmp_path / "out.mp4") == "video"
    assert output_kind(tmp_path / "frames") == "frames"
    assert output_kind(tmp_path) == "frames"
    assert output_kind(tmp_path / "x.png") == "image"
    assert isinstance(open_input(DOG), VideoReader)
    assert ColorTags(9, 16, 9, 1).is_hdr


def test_sigint_mid_write_leaves_nothing(tmp_path):
    """A real SIGINT while frames are being encoded: no output, no temporary."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = f"""
import sys, time, numpy as np
sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})
from tpn_cli.media.video import VideoWriter
with VideoWriter({str(tmp_path / 'x.mp4')!r}, width=64, height=64, fps=25, preset='ultrafast') as w:
    print('started', flush=True)
    for i in range(100000):
        w.write(np.full((64, 64, 3), i % 255, np.uint8))
        time.sleep(0.001)
"""
    p = subprocess.Popen([sys.executable, "-c", script],
                         **interruptible(stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    assert p.stdout.readline().strip() == b"started"
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=20)
    assert p.returncode != 0 and b"KeyboardInterrupt" in p.stderr.read()
    assert os.listdir(tmp_path) == []
