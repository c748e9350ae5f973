"""Where training frames come from: DAVIS folders and video clips (cached as 480p JPEGs).

Licences (../shared/data/README.md): the video clips listed in PERMISSIVE_CLIPS are
Apache-2.0 / MIT and are preferred for shipped weights; DAVIS is CC BY-NC 4.0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA_ROOT = Path(os.environ.get("TPN_DATA", "/work/shared/data"))
CACHE_ROOT = Path(os.environ.get("TPN_CACHE", "/work/runs/cache"))
DAVIS_JPEG = DATA_ROOT / "davis16" / "JPEGImages" / "480p"
DAVIS_MASKS = DATA_ROOT / "davis16" / "Annotations" / "480p"

PERMISSIVE_CLIPS = ("01_dog", "02_cups", "03_blocks", "04_coffee", "05_default_juggle",
                    "bedroom", "ferris", "v39")
DAVIS_VAL = ("bmx-trees", "drift-chicane", "goat", "libby")
DAVIS_TRAIN = ("breakdance", "camel", "car-roundabout", "car-shadow", "cows", "dog")
TARGET_HEIGHT = 480  # train at the scale we evaluate at (docs/TRAINING.md)


@dataclass
class Clip:
    """A sequence of frames on disk (JPEG/PNG), optionally with per-frame masks."""

    name: str
    frames: list[Path]
    masks: list[Path] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def read(self, i: int) -> np.ndarray:
        """Frame ``i`` as (H, W, 3) uint8 RGB."""
        import cv2
        img = cv2.imread(str(self.frames[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot read {self.frames[i]}")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def read_mask(self, i: int) -> np.ndarray:
        """Object ids (H, W) uint8 of frame ``i`` (DAVIS-2016: 0 background, 1 object)."""
        from PIL import Image
        m = np.array(Image.open(self.masks[i]))
        if m.ndim == 3:
            m = m[..., 0]
        return (m > 127).astype(np.uint8) if m.max() > 1 and len(np.unique(m)) <= 2 else m


def davis_clip(name: str, with_masks: bool = False) -> Clip:
    """One DAVIS-2016 sequence."""
    frames = sorted((DAVIS_JPEG / name).glob("*.jpg"))
    masks = sorted((DAVIS_MASKS / name).glob("*.png")) if with_masks else None
    if not frames:
        raise FileNotFoundError(f"no frames for DAVIS sequence {name} in {DAVIS_JPEG}")
    return Clip(name, frames, masks)


def video_clip(name: str, cache_root: Path = CACHE_ROOT) -> Clip:
    """A clip from ``video/<name>.mp4``, decoded once into ``cache_root`` at 480p height."""
    out = cache_root / "frames" / name
    done = out / ".complete"
    if not done.exists():
        _extract(DATA_ROOT / "video" / f"{name}.mp4", out)
        done.touch()
    return Clip(name, sorted(out.glob("*.jpg")))


def _extract(src: Path, out: Path) -> None:
    import cv2

    from ..media.video import VideoReader
    out.mkdir(parents=True, exist_ok=True)
    for frame in VideoReader(src, depth=8).frames():
        img = frame.image
        h, w = img.shape[:2]
        if h > TARGET_HEIGHT:  # never upscale: small clips stay as they are
            img = cv2.resize(img, (round(w * TARGET_HEIGHT / h), TARGET_HEIGHT),
                             interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / f"{frame.index:05d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])


def colour_clips(which: str = "permissive") -> list[Clip]:
    """Training clips for colour: 'permissive' (Apache/MIT clips) or 'all' (+ DAVIS train)."""
    clips = [video_clip(n) for n in PERMISSIVE_CLIPS]
    if which == "all":
        clips += [davis_clip(n) for n in DAVIS_TRAIN]
    elif which != "permissive":
        raise ValueError(f"unknown colour data {which!r}")
    return clips


def segment_clips(split: str = "train") -> list[Clip]:
    """DAVIS sequences with masks: the training ones, or the held-out 'val' ones."""
    names = DAVIS_TRAIN if split == "train" else DAVIS_VAL
    return [davis_clip(n, with_masks=True) for n in names]
