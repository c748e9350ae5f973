"""Rebuild the bundled example: a black-and-white clip and three colour key-frames.

Source: ../shared/data/video/02_cups.mp4 (SAM 2 demo gallery, Apache-2.0). The first 90
frames (3 s at 29.97 fps, with their audio) are scaled to 640×360 and turned to grey
(the grey of each pixel's luminance, so its CIE L is the colour frame's);
frames 0, 30 and 60 are kept in colour as the key-frames a colourist would paint.

    python examples/make_example.py [SOURCE]
"""
from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from tpn_cli.colour import linear_to_srgb, srgb_to_linear

HERE = Path(__file__).parent
FRAMES, KEYS, SIZE = 90, (0, 30, 60), (640, 360)


def luminance_grey(rgb: np.ndarray) -> np.ndarray:
    """8-bit grey with the luminance (so the CIE L) of each sRGB pixel."""
    linear = srgb_to_linear(torch.from_numpy(rgb.copy()).double() / 255.0)
    y = linear @ torch.tensor([0.2126, 0.7152, 0.0722], dtype=torch.float64)
    return (linear_to_srgb(y).clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def main(source: str = "../shared/data/video/02_cups.mp4") -> None:
    keys_dir = HERE / "cups_keys"
    keys_dir.mkdir(exist_ok=True)
    src = av.open(source)
    vin, ain = src.streams.video[0], src.streams.audio[0]
    out = av.open(str(HERE / "cups_bw.mp4"), "w")
    vout = out.add_stream("libx264", rate=vin.average_rate)
    vout.width, vout.height, vout.pix_fmt = *SIZE, "yuv420p"
    vout.options = {"crf": "20"}
    aout = out.add_stream("aac", rate=ain.rate)
    end_time = None
    for i, frame in enumerate(src.decode(vin)):
        if i == FRAMES:
            end_time = frame.time
            break
        rgb = np.asarray(frame.to_image().resize(SIZE, Image.BICUBIC))
        if i in KEYS:
            Image.fromarray(rgb).save(keys_dir / f"{i:05d}.png")
        grey = luminance_grey(rgb)
        vf = av.VideoFrame.from_ndarray(np.repeat(grey[..., None], 3, axis=2), format="rgb24")
        vf.pts, vf.time_base = frame.pts, frame.time_base
        for packet in vout.encode(vf):
            out.mux(packet)
    for packet in vout.encode():
        out.mux(packet)
    src.seek(0)
    for frame in src.decode(ain):
        if frame.time is not None and end_time is not None and frame.time >= end_time:
            break
        frame.pts = None
        for packet in aout.encode(frame):
            out.mux(packet)
    for packet in aout.encode():
        out.mux(packet)
    out.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
