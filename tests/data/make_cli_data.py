"""Regenerate the CLI fixtures of tests/data from ../shared/data (run once, commit outputs).

Source and licence: multiobject/caps (PUMaVOS), CC BY 4.0: frames and palette masks.

* caps_16.mp4: frames 0..15 of caps at 90x160 (portrait), 25 fps, x264 (BT.709 tags).
* caps_masks/00000.png, 00014.png: the annotated masks of frames 0 and 14, resized with
  nearest neighbour to 90x160, palette kept (frame 14 adds a second object).
"""
from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
CAPS = Path("/work/shared/data/multiobject/caps")

from tpn_cli.media.video import VideoWriter  # noqa: E402

W, H = 90, 160  # the source is portrait (480x853)


def main() -> None:
    with VideoWriter(HERE / "caps_16.mp4", width=W, height=H, fps=Fraction(25), crf=18,
                     preset="fast", overwrite=True) as w:
        for i in range(16):
            with Image.open(CAPS / "JPEGImages" / f"frame_{i:06d}.jpg") as im:
                w.write(np.asarray(im.convert("RGB").resize((W, H), Image.LANCZOS)))
    out = HERE / "caps_masks"
    out.mkdir(exist_ok=True)
    for i in (0, 14):
        with Image.open(CAPS / "Annotations" / f"frame_{i:06d}.png") as im:
            im.resize((W, H), Image.NEAREST).save(out / f"{i:05d}.png")


if __name__ == "__main__":
    main()
