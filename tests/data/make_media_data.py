"""Regenerate the tiny media fixtures of tests/data from ../shared/data (run once, commit
the outputs). Sources and licences:

* video/01_dog.mp4, 05_default_juggle.mp4, bedroom.mp4: Apache-2.0 (SAM 2 demo gallery /
  notebook frames).
* hdr/openexr-images/ScanLines/Desk.exr, TestImages/BrightRingsNanInf.exr: BSD-3-Clause
  (ASWF OpenEXR sample images).
* hdr/polyhaven/royal_esplanade_1k.hdr: CC0 (Poly Haven).

Fixtures (all small crops/slices, re-encoded):

* dog_2997_audio.mp4: 12 frames of 01_dog at 160x90, 29.97 fps (time base 1/30000, the
  source's pts), BT.709 tags, plus a generated 440 Hz AAC sine track (mono, 48 kHz).
* dog_subs.mkv: same video and audio plus an SRT subtitle stream (Matroska).
* juggle_vfr.mp4: 10 frames of 05_default_juggle at 128x72 with irregular pts (VFR).
* bedroom_444.mkv: 6 frames of bedroom.mp4 at 96x54 (even crop), yuv444p.
* desk.exr: 48x32 crop of Desk.exr, half float, ZIP.
* nan.exr: 32x32 crop of BrightRingsNanInf.exr holding NaN and Inf values.
* esplanade.hdr: 64x32 crop of royal_esplanade_1k.hdr (RGBE).
"""
from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DATA = Path("/work/shared/data")
sys.path.insert(0, str(ROOT))

from tpn_cli.media.hdr import read_exr, read_radiance_hdr, write_exr, write_radiance_hdr  # noqa: E402


def _resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    f = av.VideoFrame.from_ndarray(img, format="rgb24")
    return f.reformat(width=w, height=h, interpolation="AREA").to_ndarray(format="rgb24")


def source_frames(path: Path, n: int, w: int, h: int):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        for i, f in enumerate(c.decode(s)):
            if i >= n:
                break
            yield f.pts, _resize(f.to_ndarray(format="rgb24"), w, h), s.time_base


def sine_aac(out: av.container.OutputContainer, seconds: float):
    a = out.add_stream("aac", rate=48000)
    a.layout = "mono"
    return a, int(seconds * 48000)


def write_clip(dst: Path, frames, fps: Fraction, tb: Fraction, *, audio_s: float = 0.0,
               srt: Path | None = None, pix_fmt: str = "yuv420p") -> None:
    frames = list(frames)
    h, w = frames[0][1].shape[:2]
    with av.open(str(dst), "w") as out:
        v = out.add_stream("libx264", rate=fps, options={"crf": "20", "preset": "fast"})
        v.width, v.height, v.pix_fmt = w, h, pix_fmt
        v.codec_context.time_base = tb
        cc = v.codec_context
        cc.color_primaries = cc.color_trc = cc.colorspace = 1
        cc.color_range = 1
        sub_in = sub_out = None
        if srt is not None:
            sub_in = av.open(str(srt))
            sub_out = out.add_stream_from_template(sub_in.streams.subtitles[0])
        a = None
        if audio_s:
            a, n = sine_aac(out, audio_s)
        for pts, img, _ in frames:
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
            f.pts, f.time_base = pts, tb
            out.mux(v.encode(f))
        out.mux(v.encode())
        if a is not None:
            t = np.arange(n) / 48000.0
            pcm = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for i in range(0, n, 1024):
                chunk = pcm[i:i + 1024][None, :]
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="mono")
                af.sample_rate, af.pts = 48000, i
                out.mux(a.encode(af))
            out.mux(a.encode())
        if sub_in is not None:
            for p in sub_in.demux(sub_in.streams.subtitles[0]):
                if p.size:
                    p.stream = sub_out
                    out.mux(p)
            sub_in.close()


def main() -> None:
    vid = DATA / "video"
    dog = list(source_frames(vid / "01_dog.mp4", 12, 160, 90))
    tb = dog[0][2]
    write_clip(HERE / "dog_2997_audio.mp4", dog, Fraction(30000, 1001), tb, audio_s=0.45)
    srt = HERE / "_subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,200\nhello\n\n2\n00:00:00,200 --> 00:00:00,390\nworld\n\n")
    write_clip(HERE / "dog_subs.mkv", dog, Fraction(30000, 1001), tb, audio_s=0.45, srt=srt)
    srt.unlink()

    jug = list(source_frames(vid / "05_default_juggle.mp4", 10, 128, 72))
    vfr_ms = [0, 33, 66, 140, 180, 400, 433, 500, 620, 700]
    jug = [(t, img, None) for t, (_, img, _) in zip(vfr_ms, jug)]
    write_clip(HERE / "juggle_vfr.mp4", jug, Fraction(15), Fraction(1, 1000))

    bed = list(source_frames(vid / "bedroom.mp4", 6, 96, 54))
    write_clip(HERE / "bedroom_444.mkv", bed, Fraction(24), bed[0][2], pix_fmt="yuv444p")

    exr = DATA / "hdr/openexr-images"
    desk = read_exr(exr / "ScanLines/Desk.exr")
    write_exr(HERE / "desk.exr", desk[400:432, 300:348], overwrite=True)
    import OpenEXR
    with OpenEXR.File(str(exr / "TestImages/BrightRingsNanInf.exr")) as f:
        rings = f.channels()["RGB"].pixels
    bad = ~np.isfinite(rings).all(axis=2)
    y, x = np.argwhere(bad)[0]
    y0, x0 = max(0, y - 16), max(0, x - 16)
    crop = rings[y0:y0 + 32, x0:x0 + 32].astype(np.float16)
    assert not np.isfinite(crop).all()
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                 {"RGB": np.ascontiguousarray(crop)}).write(str(HERE / "nan.exr"))
    esp = read_radiance_hdr(DATA / "hdr/polyhaven/royal_esplanade_1k.hdr")
    write_radiance_hdr(HERE / "esplanade.hdr", esp[200:232, 500:564], overwrite=True)


if __name__ == "__main__":
    main()
