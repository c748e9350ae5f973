"""Outputs carry what the input had (issue 20): each source is built here with PyAV
(a few 64x36 frames), run through the CLI with a tiny model, and the output is read back
with PyAV (streams, side data, metadata); container boxes that PyAV does not expose are
found in the file's bytes."""
from __future__ import annotations

import json
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from _cli_util import DOG, VFR, extract_keys, models, one_thread, run_cli  # noqa: F401
from tpn_cli.media import VideoReader, read_image

W, H = 64, 36
RATE = Fraction(30000, 1001)
# ST 2086 of the x265 docs' P3-D65 display, 1000 / 0.005 nits; MaxCLL 1000, MaxFALL 400
MASTER = "G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,50)"


def gradient(i: int) -> np.ndarray:
    """A colourful 64x36 frame that moves a little with ``i``."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    rgb = np.stack([(x * 4 + i * 3) % 256, y * 6, 255 - x * 3], axis=2)
    return rgb.clip(0, 255).astype(np.uint8)


def make_source(path: Path, *, frames=None, n: int = 4, rate=RATE, codec="libx264",
                pix_fmt="yuv420p", tags=(2, 2, 2), sar=None, title=None, language=None,
                timecode=None, chapters=False, audio_language=None, options=None) -> Path:
    """Encode ``frames`` (default: :func:`gradient`) with the given colour tags
    (primaries, trc, matrix; the matrix is applied by swscale) and metadata."""
    frames = frames if frames is not None else [gradient(i) for i in range(n)]
    with av.open(str(path), "w") as c:
        if title:
            c.metadata["title"] = title
        s = c.add_stream(codec, rate=rate, options={"preset": "ultrafast", **(options or {})})
        s.width, s.height, s.pix_fmt = W, H, pix_fmt
        cc = s.codec_context
        cc.time_base = 1 / rate
        cc.color_primaries, cc.color_trc, cc.colorspace = tags
        cc.color_range = 1
        if sar:
            cc.sample_aspect_ratio = sar
        if language:
            s.metadata["language"] = language
        if timecode:
            s.metadata["timecode"] = timecode
        a = None
        if audio_language:
            a = c.add_stream("aac", rate=48000, layout="mono")
            a.metadata["language"] = audio_language
        if chapters:
            c.set_chapters([{"id": 1, "start": 0, "end": 2, "time_base": 1 / rate, "metadata": {"title": "Intro"}},
                            {"id": 2, "start": 2, "end": len(frames), "time_base": 1 / rate,
                             "metadata": {"title": "Main"}}])
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb48le" if img.dtype == np.uint16 else "rgb24")
            f = f.reformat(format=pix_fmt, dst_colorspace=tags[2] if tags[2] != 2 else None,
                           dst_color_range="MPEG")
            f.pts = i
            c.mux(s.encode(f))
        c.mux(s.encode())
        if a is not None:
            for k in range(len(frames) * 2):
                af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
                af.sample_rate, af.pts = 48000, k * 1024
                c.mux(a.encode(af))
            c.mux(a.encode())
    return path


def colorize(models, src: Path, out: Path, *extra, keys=None):
    keys = keys or extract_keys(src, out.parent / f"keys_{out.name}", [0])
    code, stdout, stderr = run_cli("colorize", src, "--keyframes", keys, "--weights", models["colour"],
                                   "-o", out, "--json", *extra)
    assert code == 0, stderr
    return json.loads(stdout)


def video_stream(path: Path):
    c = av.open(str(path))
    return c, c.streams.video[0]


# -- anamorphic ---------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_anamorphic_source_keeps_its_pixel_aspect(tmp_path, models, ext):
    src = make_source(tmp_path / "ana.mp4", sar=Fraction(4, 3))
    out = tmp_path / f"out{ext}"
    colorize(models, src, out)
    c, s = video_stream(out)
    with c:
        assert s.sample_aspect_ratio == Fraction(4, 3)
        assert s.display_aspect_ratio == Fraction(W * 4, H * 3)


# -- metadata: title, languages, chapters, timecode --------------------------------------
@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_title_languages_chapters_and_timecode_carried(tmp_path, models, ext):
    src = make_source(tmp_path / "meta.mp4", n=4, title="Le Film", language="fra",
                      timecode="01:00:00;00", chapters=True, audio_language="deu")
    out = tmp_path / f"out{ext}"
    colorize(models, src, out)
    with av.open(str(out)) as c:
        assert c.metadata.get("title") == "Le Film"
        assert c.streams.video[0].language == "fra"
        assert c.streams.audio[0].language == "deu"
        chapters = c.chapters()
        assert [ch["metadata"]["title"] for ch in chapters] == ["Intro", "Main"]
        starts = [float(ch["start"] * ch["time_base"]) for ch in chapters]
        assert starts == pytest.approx([0.0, 2 / float(RATE)], abs=1e-3)
        tags = {k.lower(): v for k, v in c.streams.video[0].metadata.items()}
        assert tags.get("timecode") == "01:00:00;00"
        if ext == ".mp4":  # the MP4 muxer makes a timecode (tmcd) track of it
            assert "01:00:00;00" in [s.metadata.get("timecode") for s in c.streams.data]
    # a frame range does not line up with the chapters and timecode: they are dropped
    out = tmp_path / f"part{ext}"
    summary = colorize(models, src, out, "--start", "1")
    assert any("chapters, the timecode not carried" in n for n in summary["notes"])
    with av.open(str(out)) as c:
        assert c.metadata.get("title") == "Le Film" and not c.chapters()
        assert "timecode" not in {k.lower() for k in c.streams.video[0].metadata}


# -- HDR10 --------------------------------------------------------------------------------
def _mastering(frame) -> tuple[bytes, bytes]:
    sd = {s.type.name: bytes(s) for s in frame.side_data}
    return sd["MASTERING_DISPLAY_METADATA"], sd["CONTENT_LIGHT_LEVEL"]


def _ebml(data: bytes, element_id: bytes) -> int | None:
    """Value of the first small unsigned Matroska element ``element_id`` (1-byte size)."""
    i = data.find(element_id)
    if i < 0:
        return None
    size = data[i + len(element_id)] & 0x7F
    return int.from_bytes(data[i + len(element_id) + 1:i + len(element_id) + 1 + size], "big")


def _hdr10_source(path: Path, with_metadata: bool = True) -> Path:
    params = "log-level=error:repeat-headers=1"
    if with_metadata:
        params += f":hdr10=1:master-display={MASTER}:max-cll=1000,400"
    return make_source(path, codec="libx265", pix_fmt="yuv420p10le", tags=(9, 16, 9),
                       options={"x265-params": params})


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_hdr10_source_keeps_mastering_metadata_in_stream_and_container(tmp_path, models, ext):
    src = _hdr10_source(tmp_path / "hdr10.mp4")
    out = tmp_path / f"out{ext}"
    summary = colorize(models, src, out)
    assert not [w for w in summary["warnings"] if "HDR10" in w]
    with av.open(str(src)) as c:
        want = _mastering(next(c.decode(video=0)))
    c, s = video_stream(out)
    with c:
        cc = s.codec_context
        assert (cc.color_primaries, cc.color_trc, cc.colorspace) == (9, 16, 9)
        assert _mastering(next(c.decode(s))) == want  # the H.264 SEI (and the container)
    data = out.read_bytes()
    if ext == ".mp4":  # ISO-BMFF boxes in the sample entry, as ffmpeg writes them
        i = data.find(b"mdcv")
        assert struct.unpack(">8H2I", data[i + 4:i + 28]) == (
            13250, 34500, 7500, 3000, 34000, 16000, 15635, 16450, 10000000, 50)
        i = data.find(b"clli")
        assert struct.unpack(">2H", data[i + 4:i + 8]) == (1000, 400)
    else:  # Matroska Colour: MasteringMetadata (0x55D0), MaxCLL (0x55BC), MaxFALL (0x55BD)
        assert data.find(b"\x55\xd0") > 0
        assert (_ebml(data, b"\x55\xbc"), _ebml(data, b"\x55\xbd")) == (1000, 400)


def test_pq_source_without_mastering_metadata_is_said(tmp_path, models):
    src = _hdr10_source(tmp_path / "pq_bare.mp4", with_metadata=False)
    summary = colorize(models, src, tmp_path / "out.mp4")
    assert any("mastering" in w for w in summary["warnings"])
    assert any("PQ" in w and "tone mapping" in w for w in summary["warnings"])
    code, _, err = run_cli("extract", src, "-o", tmp_path / "frames", "--frames", "0")
    assert code == 0 and "warning:" in err and "PQ" in err  # sRGB PNGs of PQ code values: said


def test_hdr_command_writes_container_mastering_metadata(tmp_path, models):
    from _cli_util import hdr_keys

    keys = hdr_keys(DOG, tmp_path / "exr", [0, 6])
    for ext in (".mp4", ".mkv"):
        out = tmp_path / f"hdr{ext}"
        code, _, err = run_cli("hdr", DOG, "--hdr-keys", keys, "--weights", models["hdr"], "-o", out, "-q")
        assert code == 0, err
        data = out.read_bytes()
        assert (b"mdcv" in data and b"clli" in data) if ext == ".mp4" else (b"\x55\xd0" in data)
        with av.open(str(out)) as c:
            assert {s.type.name for s in next(c.decode(video=0)).side_data} >= {
                "MASTERING_DISPLAY_METADATA", "CONTENT_LIGHT_LEVEL"}


# -- colour primaries and transfer ----------------------------------------------------------
def test_bt2020_source_is_converted_for_the_method_and_back(tmp_path, models):
    # the same colours a BT.709 source would show, stored as BT.2020 by swscale
    # (BT.709 transfer undone, BT.2087's linear BT.709 → BT.2020 matrix, transfer redone)
    to2020 = np.array([[0.627404, 0.329283, 0.043313], [0.069097, 0.919540, 0.011362],
                       [0.016391, 0.088013, 0.895595]])

    def as_bt2020(img):
        v = img / 255.0
        lin = np.where(v < 0.081, v / 4.5, ((v + 0.099) / 1.099) ** (1 / 0.45)) @ to2020.T
        e = np.where(lin < 0.018, 4.5 * lin, 1.099 * lin ** 0.45 - 0.099)
        return (e * 65535 + 0.5).astype(np.uint16)

    rgb709 = [gradient(i) for i in range(3)]
    bt2020 = [as_bt2020(img) for img in rgb709]
    src = make_source(tmp_path / "bt2020.mkv", frames=bt2020, codec="libx265", pix_fmt="yuv420p10le",
                      tags=(9, 14, 9), options={"x265-params": "log-level=error"})
    # tpn extract writes sRGB/BT.709 PNGs: the BT.709 colours, not the BT.2020 code values
    code, _, err = run_cli("extract", src, "-o", tmp_path / "keys", "--frames", "0")
    assert code == 0 and "note:" in err and "BT.2020" in err, err
    png = read_image(tmp_path / "keys" / "00000.png", depth=8).astype(int)
    err = np.abs(png - rgb709[0]).mean()
    assert err < 6  # x265 at 64x36, 4:2:0
    assert np.abs(png - (bt2020[0] // 257)).mean() > 2 * err  # unconverted would be far off
    out = tmp_path / "out.mkv"
    summary = colorize(models, src, out, keys=tmp_path / "keys")
    assert any("BT.2020" in n for n in summary["notes"])
    r = VideoReader(out)
    assert (r.color.primaries, r.color.trc, r.color.space) == (9, 14, 9)
    back = next(r.frames()).image.astype(int) // 257  # read back through the same conversion
    assert np.abs(back - rgb709[0]).mean() < 8


def test_bt601_gray_ramp_round_trips_with_the_right_colours(tmp_path, models):
    import torch

    from tpn_cli import colour
    from tpn_cli.media import write_image

    ramp = np.repeat(np.linspace(16, 235, W).astype(np.uint8)[None, :, None], H, 0).repeat(3, 2)
    src = make_source(tmp_path / "ramp601.mp4", frames=[ramp] * 3, tags=(6, 6, 6))
    # the key: the ramp's own lightness with a warm colour (a = 20, b = 30)
    lab = colour.rgb_to_lab(torch.from_numpy(ramp.astype(np.float32) / 255).permute(2, 0, 1)[None])
    lab[:, 1], lab[:, 2] = 20.0, 30.0
    key = (colour.lab_to_rgb(lab)[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    keys = tmp_path / "keys"
    keys.mkdir()
    write_image(keys / "00000.png", key)
    out = tmp_path / "out.mp4"
    colorize(models, src, out, "--no-snap-check", keys=keys)
    r = VideoReader(out)
    assert (r.color.primaries, r.color.trc, r.color.space) == (6, 6, 6)
    for f in r.frames():  # every frame shows the key's colours (read with the BT.601 matrix)
        assert np.abs(f.image.astype(int) - key).mean() < 4
    with av.open(str(out)) as c:  # in the file, BT.601 luma follows the ramp
        y = next(c.decode(video=0)).to_ndarray()[:H]
        expect = key.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) * 219 / 255 + 16
        assert np.abs(y.astype(int) - expect).mean() < 3


# -- timing -------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_2997_fps_is_stated_in_the_h264_stream(tmp_path, models, ext):
    src = make_source(tmp_path / "ntsc.mp4", n=4)
    out = tmp_path / f"out{ext}"
    colorize(models, src, out)
    c, s = video_stream(out)
    with c:
        # the decoder's frame rate comes from the SPS VUI (num_units_in_tick/time_scale)
        assert s.codec_context.framerate == RATE
        times = [round(float(f.time), 3) for f in c.decode(s)]
    assert times == [round(i / float(RATE), 3) for i in range(4)]


def test_vfr_last_frame_and_mkv_start_keep_the_source_timing(tmp_path, models):
    def timing(path):
        """Each frame's time, and when the last one ends."""
        with av.open(str(path)) as c:
            s = c.streams.video[0]
            frames = list(c.decode(s))
            return [float(f.time) for f in frames] + [float(frames[-1].time + frames[-1].duration * s.time_base)]

    src = timing(VFR)
    for ext in (".mp4", ".mkv"):
        out = tmp_path / f"vfr{ext}"
        colorize(models, VFR, out)
        assert timing(out) == pytest.approx(src, abs=1e-3)
    out = tmp_path / "dog.mkv"  # mp4 with AAC (priming: the audio starts at -21 ms)
    colorize(models, DOG, out)
    with av.open(str(out)) as c:
        assert next(c.decode(video=0)).time == 0.0
        assert c.streams.audio[0].start_time < 0


def test_folder_input_takes_fps(tmp_path, models):
    assert run_cli("extract", DOG, "-o", tmp_path / "clip", "--every", "1")[0] == 0
    keys = extract_keys(DOG, tmp_path / "keys", [0])
    out = tmp_path / "out.mp4"
    code, _, err = run_cli("colorize", tmp_path / "clip", "--keyframes", keys, "--weights",
                           models["colour"], "-o", out, "-q", "--fps", "24000/1001")
    assert code == 0, err
    c, s = video_stream(out)
    with c:
        assert s.average_rate == Fraction(24000, 1001) and s.codec_context.framerate == Fraction(24000, 1001)
    code, _, err = run_cli("colorize", DOG, "--keyframes", keys, "--fps", "25", "--dry-run")
    assert code == 2 and "--fps" in err
    assert run_cli("colorize", tmp_path / "clip", "--keyframes", keys, "--fps", "0", "--dry-run")[0] == 2


# -- chroma siting and encoder settings -------------------------------------------------------
def test_chroma_siting_is_signalled_as_subsampled(tmp_path, models):
    src = make_source(tmp_path / "src.mp4", n=2)
    out = tmp_path / "out.mkv"
    colorize(models, src, out)
    data = out.read_bytes()
    # Matroska ChromaSitingHorz (0x55B7) / ChromaSitingVert (0x55B8): 2 = half, i.e. the
    # 2x2 block centre swscale averages over
    assert (_ebml(data, b"\x55\xb7"), _ebml(data, b"\x55\xb8")) == (2, 2)
    # and what swscale does is indeed a centred 2x2 average: a red column at x=2 or x=3
    # lands on the same chroma sample with the same weight
    vs = []
    for col in (2, 3):
        rgb = np.zeros((4, 8, 3), np.uint8)
        rgb[:, col, 0] = 255
        yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format="yuv420p", dst_colorspace="itu709", dst_color_range="MPEG").to_ndarray()
        vs.append(yuv[5, :4].tolist())  # first row of V
    assert vs[0] == vs[1] and vs[0][1] > 128 and vs[0][0] == vs[0][2] == 128


def test_crf_help_states_what_the_encoder_gets(tmp_path, models):
    code, out, _ = run_cli("colorize", "--help")
    assert "Default 16" in " ".join(out.split())
    dst = tmp_path / "out.mp4"
    colorize(models, make_source(tmp_path / "src.mp4", n=2), dst)
    assert b"crf=16.0" in dst.read_bytes()  # x264 writes its settings into the stream
