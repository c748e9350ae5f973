"""Regenerate the `tpn segment` fixtures of tests/data from ../shared/data (run once,
commit the outputs).

Source and licence: DAVIS (Perazzi et al., CVPR 2016; Pont-Tuset et al., 2017),
CC BY-NC 4.0 — test fixtures only, non-commercial.

* goat_16.mp4: DAVIS-2016 ``goat`` (a held-out sequence: never trained on) frames 0, 2,
  …, 30 at 256x144, 12 fps, x264. goat_masks/00000.png … 00015.png: the ground-truth
  masks of those frames as palette PNGs (id 1, DAVIS palette), nearest-neighbour resized.
  Copying the first mask scores J 0.20 on it, the chain ~0.8: a quality check that fails
  when masks stop following the object.
* judo_16.mp4: DAVIS-2017 ``judo`` frames 0–15 (as shipped with Cutie's examples) at
  256x144, 24 fps. judo_masks/00000.png, 00005.png, 00008.png, 00013.png: its palette
  masks; each later mask holds only the object that appears there (ids 2, 3, 4).
"""
from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
DATA = Path("/work/shared/data")

from tpn_cli.media.masks import default_palette  # noqa: E402
from tpn_cli.media.video import VideoWriter  # noqa: E402

W, H = 256, 144  # DAVIS is 854x480 (16:9)


def _video(path: Path, images: list[Path], fps: int) -> None:
    with VideoWriter(path, width=W, height=H, fps=Fraction(fps), crf=18, preset="slow",
                     overwrite=True) as w:
        for p in images:
            with Image.open(p) as im:
                w.write(np.asarray(im.convert("RGB").resize((W, H), Image.LANCZOS)))


def _palette_mask(ids: np.ndarray, palette: list[int], path: Path) -> None:
    im = Image.fromarray(ids.astype(np.uint8), mode="P")
    im.putpalette(palette)
    im.save(path)


def main() -> None:
    davis = DATA / "davis16"
    frames = range(0, 32, 2)
    _video(HERE / "goat_16.mp4", [davis / "JPEGImages/480p/goat" / f"{i:05d}.jpg" for i in frames], 12)
    out = HERE / "goat_masks"
    out.mkdir(exist_ok=True)
    palette = default_palette().reshape(-1).tolist()
    for n, i in enumerate(frames):
        with Image.open(davis / "Annotations/480p/goat" / f"{i:05d}.png") as im:
            ids = (np.asarray(im.resize((W, H), Image.NEAREST)) > 0).astype(np.uint8)
        _palette_mask(ids, palette, out / f"{n:05d}.png")

    cutie = DATA / "multiobject/cutie"
    _video(HERE / "judo_16.mp4", [cutie / "images/judo" / f"{i:05d}.jpg" for i in range(16)], 24)
    out = HERE / "judo_masks"
    out.mkdir(exist_ok=True)
    for i in (0, 5, 8, 13):
        with Image.open(cutie / "masks/judo" / f"{i:05d}.png") as im:
            im.resize((W, H), Image.NEAREST).save(out / f"{i:05d}.png")


if __name__ == "__main__":
    main()
