"""EXR / Radiance I/O and HDR10 / HLG video on tiny real crops (tests/data)."""
from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

pytest.importorskip("OpenEXR")
import OpenEXR  # noqa: E402

from tpn_cli.errors import BadInputError  # noqa: E402
from tpn_cli.media.frames import read_image  # noqa: E402
from tpn_cli.media.hdr import (HdrVideoWriter, check_finite, read_exr, read_hdr_image,  # noqa: E402
                               read_radiance_hdr, sdr_preview, write_exr, write_radiance_hdr)
from tpn_cli.media.video import VideoReader  # noqa: E402

DATA = Path(__file__).parent / "data"
DOG = DATA / "dog_2997_audio.mp4"


def test_exr_roundtrip_half_zip(tmp_path):
    img = read_exr(DATA / "desk.exr")
    assert img.shape == (32, 48, 3) and img.dtype == np.float32 and img.max() > 1.0
    out = write_exr(tmp_path / "a.exr", img)
    with OpenEXR.File(str(out)) as f:
        assert f.header()["compression"] == OpenEXR.ZIP_COMPRESSION
        assert f.channels()["RGB"].pixels.dtype == np.float16
    assert np.array_equal(read_image(out), img)  # source is half: exact
    assert [p.name for p in tmp_path.iterdir()] == ["a.exr"]


def test_exr_nan_inf_refused_with_file_name():
    with pytest.raises(BadInputError) as ei:
        read_exr(DATA / "nan.exr")
    msg = str(ei.value)
    assert ei.value.exit_code == 3 and "nan.exr" in msg and "NaN" in msg and "fix:" in msg
    assert read_exr(DATA / "nan.exr", check=False).shape == (32, 32, 3)
    with pytest.raises(BadInputError, match="Inf"):
        check_finite(np.array([[[1.0, np.inf, 0.0]]]), "x.exr", frame=4)


def test_radiance_hdr_read_write(tmp_path):
    img = read_radiance_hdr(DATA / "esplanade.hdr")
    assert img.shape == (32, 64, 3) and img.dtype == np.float32 and img.min() >= 0
    write_radiance_hdr(tmp_path / "b.hdr", img * 40)
    back = read_hdr_image(tmp_path / "b.hdr")
    ref = img * 40  # RGBE: one shared exponent, 8-bit mantissas → error ~ max channel / 256
    assert np.all(np.abs(back - ref) <= ref.max(axis=2, keepdims=True) * 2 / 256 + 1e-6)


def _read_hdr_video(path: Path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        cc = s.codec_context
        info = dict(codec=cc.name, pix_fmt=cc.pix_fmt, tags=(cc.color_primaries, cc.color_trc,
                    cc.colorspace, cc.color_range), profile=cc.profile,
                    audio=bool(c.streams.audio))
        frames = list(c.decode(s))
    side = {sd.type.name: bytes(sd) for sd in frames[0].side_data}
    y = [f.to_ndarray(format="yuv420p10le")[: f.height] for f in frames]
    return info, side, y, frames


def _frames():
    img = read_radiance_hdr(DATA / "esplanade.hdr")[:, :32]  # 32x32
    flat = np.ones((32, 32, 3), np.float32)
    return [flat, img * 10, img * 60, img]  # img max 0.14: ×60 exceeds the 1000-nit peak


def test_hdr10_pq_video(tmp_path):
    r = VideoReader(DOG)
    out = tmp_path / "hdr10.mp4"
    pts = [f.pts for f in r.frames(0, 4)]
    with HdrVideoWriter(out, width=32, height=32, fps=r.fps, time_base=r.time_base,
                        copy_streams_from=DOG, preset="ultrafast") as w:
        for im, p in zip(_frames(), pts):
            w.write(im, p)
    info, side, y, frames = _read_hdr_video(out)
    assert info["codec"] == "hevc" and info["pix_fmt"] == "yuv420p10le"
    assert info["tags"] == (9, 16, 9, 1)          # BT.2020, PQ, BT.2020 NCL, limited
    assert info["profile"] == "Main 10" and info["audio"]
    assert "MASTERING_DISPLAY_METADATA" in side and "CONTENT_LIGHT_LEVEL" in side
    max_cll, max_fall = struct.unpack("<II", side["CONTENT_LIGHT_LEVEL"][:8])
    assert (max_cll, max_fall) == w.light_level.as_ints()
    assert max_cll == 1000 and 0 < max_fall < max_cll  # clipped at the mastering peak
    # AVMasteringDisplayMetadata: 3x2 primaries, 2 white point, min, max (rationals), 2 flags
    md = struct.unpack("<22i", side["MASTERING_DISPLAY_METADATA"][:88])
    assert md[16] / md[17] == pytest.approx(0.0001) and md[18] / md[19] == pytest.approx(1000)
    assert md[12] / md[13] == pytest.approx(0.3127, abs=1e-4)  # D65 white x
    assert md[20] == 1 and md[21] == 1
    # relative 1.0 → 203 nits → PQ 0.5807 → 10-bit narrow code 64 + 876*0.5807 ≈ 573
    assert abs(float(y[0].mean()) - 572.7) < 3
    # timestamps kept, audio copied bit-exact, nothing else left in the folder
    assert [f.pts * f.time_base for f in frames] == [Fraction(p) * r.time_base for p in pts]
    with av.open(str(out)) as c, av.open(str(DOG)) as d:
        a = [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]
        b = [bytes(p) for p in d.demux(d.streams.audio[0]) if p.size]
    assert a == b
    assert [p.name for p in tmp_path.iterdir()] == ["hdr10.mp4"]


def test_hlg_video_and_single_pass(tmp_path):
    with HdrVideoWriter(tmp_path / "hlg.mkv", width=32, height=32, fps=25, transfer="hlg",
                        preset="ultrafast") as w:
        for im in _frames()[:2]:
            w.write(im)
    info, side, y, _ = _read_hdr_video(tmp_path / "hlg.mkv")
    assert info["tags"] == (9, 18, 9, 1)
    assert abs(float(y[0].mean()) - (64 + 876 * 0.75)) < 3  # 203 nits = 75 % HLG
    with HdrVideoWriter(tmp_path / "pq.mkv", width=32, height=32, fps=25, max_cll=(1000, 400),
                        preset="ultrafast") as w:
        w.write(_frames()[0])
    _, side, _, _ = _read_hdr_video(tmp_path / "pq.mkv")
    assert struct.unpack("<II", side["CONTENT_LIGHT_LEVEL"][:8]) == (1000, 400)


def test_hdr_video_nan_frame_leaves_nothing(tmp_path):
    bad = np.ones((32, 32, 3), np.float32)
    bad[3, 4, 1] = np.nan
    with pytest.raises(BadInputError) as ei:
        with HdrVideoWriter(tmp_path / "x.mp4", width=32, height=32, fps=25, preset="ultrafast") as w:
            w.write(np.ones((32, 32, 3), np.float32))
            w.write(bad)
    assert ei.value.frame == 1 and "NaN" in str(ei.value)
    assert list(tmp_path.iterdir()) == []


def test_hdr_video_needs_even_size(tmp_path):
    with pytest.raises(BadInputError, match="even"):
        HdrVideoWriter(tmp_path / "x.mp4", width=31, height=32, fps=25)


def test_sdr_preview():
    p = sdr_preview(read_radiance_hdr(DATA / "esplanade.hdr"))
    assert p.dtype == np.uint8 and p.shape == (32, 64, 3)
    assert sdr_preview(np.full((2, 2, 3), 1.0, np.float32)).min() == 255


def test_exr_reads_and_writes_in_threads_leave_sys_stdout_alone(tmp_path):
    """The pipeline reads EXR keys while its sink writes EXR frames: each call sends
    OpenEXR's prints away from sys.stdout for its duration, and sys.stdout (which carries
    --json) must be the same object afterwards."""
    import sys
    import threading

    img = np.random.default_rng(0).random((8, 8, 3), dtype=np.float32)
    write_exr(tmp_path / "key.exr", img)
    before = sys.stdout

    def work(i):
        for j in range(20):
            write_exr(tmp_path / f"w{i}_{j}.exr", img)
            read_exr(tmp_path / "key.exr")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sys.stdout is before
