"""HDR pseudo-video: a virtual camera moving over real HDR stills, with the LDR stream
made by exposure (5–15 % of values clipped), a random camera curve, noise and 8-bit
quantisation (HDRCNN's virtual camera, reference notes §1.4). Radiance is real, motion
is synthetic.

Sources (../shared/data/hdr): Poly Haven panoramas (CC0) and OpenEXR ScanLines photos
(BSD-3). memorial.hdr is research-use only and is not used.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .. import colour
from ..flow import dis_flow, warp
from .pairs import FLOW_MARGIN
from .sources import DATA_ROOT

HDR_ROOT = DATA_ROOT / "hdr"
HDR_VAL = ("venice_sunset_1k", "StillLife")  # held out for validation


def read_hdr(path: Path) -> np.ndarray:
    """(H, W, 3) float32 linear RGB from a Radiance .hdr or an OpenEXR file; NaN/Inf removed."""
    if path.suffix.lower() == ".hdr":
        import cv2
        img = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot read {path}")
        img = img[..., ::-1]
    else:
        import OpenEXR
        with OpenEXR.File(str(path)) as f:
            ch = f.channels()
            key = "RGBA" if "RGBA" in ch else "RGB"
            img = ch[key].pixels[..., :3]
    img = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    return np.ascontiguousarray(np.clip(img, 1e-5, 1e5))


def hdr_images(split: str = "train") -> dict[str, np.ndarray]:
    """The HDR stills of ``split`` ('train' or 'val'), by name."""
    paths = sorted((HDR_ROOT / "polyhaven").glob("*.hdr"))
    paths += sorted((HDR_ROOT / "openexr-images" / "ScanLines").glob("*.exr"))
    keep = (lambda n: n in HDR_VAL) if split == "val" else (lambda n: n not in HDR_VAL)
    return {p.stem: read_hdr(p) for p in paths if keep(p.stem)}


def camera_view(img: np.ndarray, centre, zoom: float, angle: float, size: int) -> np.ndarray:
    """Render a size×size view: output pixel p looks at centre + zoom·R(angle)·(p − size/2)."""
    import cv2
    c, s = math.cos(angle) * zoom, math.sin(angle) * zoom
    half = size / 2
    m = np.array([[c, -s, centre[0] - c * half + s * half],
                  [s, c, centre[1] - s * half - c * half]], dtype=np.float64)
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def virtual_camera_pair(rng: np.random.Generator, img: np.ndarray, size: int,
                        max_motion: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """Two views of ``img`` as a camera pans (≤ max_motion output px), zooms and rolls a little."""
    h, w = img.shape[:2]
    zoom = math.exp(rng.uniform(math.log(0.6), math.log(1.6)))
    zoom = min(zoom, 0.6 * min(h, w) / size)  # the (rotated) window must fit: r ≤ min side / 2
    r = zoom * size * 0.75
    c1 = np.array([rng.uniform(r, w - r), rng.uniform(r, h - r)])
    a1 = math.radians(rng.uniform(-5, 5))
    step = rng.uniform(0, max_motion) * zoom
    direction = rng.uniform(0, 2 * math.pi)
    c2 = c1 + step * np.array([math.cos(direction), math.sin(direction)])
    z2 = zoom * math.exp(rng.uniform(-0.1, 0.1))
    a2 = a1 + math.radians(rng.uniform(-4, 4))
    return camera_view(img, c1, zoom, a1, size), camera_view(img, c2, z2, a2, size)


def ldr_camera(rng: np.random.Generator, h1: np.ndarray, h2: np.ndarray):
    """Expose both frames alike so 5–15 % of frame 1's values clip; apply a random camera
    curve, noise and 8-bit quantisation. Returns (H1, H2, D1, D2), radiance scaled so that
    1.0 is the clip level, D in [0, 1]."""
    clip = rng.uniform(0.05, 0.15)
    exposure = 1.0 / max(float(np.quantile(h1, 1.0 - clip)), 1e-6)
    n = float(np.clip(rng.normal(0.9, 0.1), 0.2, 2.5))
    sigma = float(np.clip(rng.normal(0.6, 0.1), 0.05, 5.0))
    noise = rng.uniform(0.0, 0.01)
    out = []
    for h in (h1, h2):
        hs = h * exposure
        d = colour.camera_curve(torch.from_numpy(hs), n=n, sigma=sigma).numpy()
        d = d + rng.normal(0.0, noise, size=d.shape)
        d = np.round(np.clip(d, 0.0, 1.0) * 255.0) / 255.0
        out.append((hs.astype(np.float32), d.astype(np.float32)))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def _gray8(ldr: np.ndarray) -> np.ndarray:
    import cv2
    return cv2.cvtColor((ldr * 255.0).round().astype(np.uint8), cv2.COLOR_RGB2GRAY)


def hdr_pair(rng: np.random.Generator, images: dict[str, np.ndarray], crop: int,
             max_motion: float = 40.0, align: bool = False) -> dict:
    """One HDR training pair: u = log(H + 0.01) (RGB), v = LDR RGB in [0, 1].

    With ``align`` the key-frame (radiance and LDR) is warped to the target by DIS flow
    computed on the 8-bit LDR frames, as at inference.
    """
    names = sorted(images)
    img = images[names[int(rng.integers(len(names)))]]
    size = crop + 2 * FLOW_MARGIN if align else crop
    h1, h2 = virtual_camera_pair(rng, img, size, max_motion)
    if rng.random() < 0.5:
        h1, h2 = h2, h1  # either direction of the pan
    H1, H2, D1, D2 = ldr_camera(rng, h1, h2)
    if align:
        flow = dis_flow(_gray8(D2), _gray8(D1))
        H1, D1 = warp(H1, flow), warp(D1, flow)
        m = FLOW_MARGIN
        H1, H2, D1, D2 = (a[m:m + crop, m:m + crop] for a in (H1, H2, D1, D2))

    def chw(a):
        return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))

    return {"u1": colour.log_encode(chw(H1)), "v1": chw(D1),
            "u2": colour.log_encode(chw(H2)), "v2": chw(D2)}
