"""HDR10 static metadata (SMPTE ST 2086 mastering display, CTA-861.3 MaxCLL/MaxFALL):
read from a decoded frame's side data, written as encoder parameters (the HEVC/H.264 SEI)
and as container metadata (MP4/MOV ``mdcv``/``clli`` boxes, Matroska ``MasteringMetadata``).

Why there is code of our own here: FFmpeg's muxers write the container metadata from the
output stream's *coded side data* (``AVCodecParameters.coded_side_data``, filled by the
encoder from ``AVCodecContext.decoded_side_data``), and PyAV 18 exposes neither for an
encoded stream (only the display matrix, :meth:`av.video.stream.VideoStream.set_display_rotation`).
FFmpeg's MP4 *demuxer*, however, reads ``mdcv``/``clli`` boxes into that side data, and
``add_stream_from_template`` copies it. So we append the two boxes (28 bytes of ISO-BMFF,
the only format code here) to the video sample entry of an MP4/MOV we wrote — its
``moov`` comes after the media data, so no chunk offset moves — and let FFmpeg carry them
into any other container by remuxing (see :meth:`tpn_cli.media.video.VideoWriter.close`).
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

__all__ = ["HdrStatic", "add_mp4_boxes"]

# ISO-BMFF boxes on the way from the file to a video sample entry
_PARENTS = (b"moov", b"trak", b"mdia", b"minf", b"stbl")
_SAMPLE_ENTRIES = (b"avc1", b"avc3", b"hvc1", b"hev1", b"av01")


@dataclass(frozen=True)
class HdrStatic:
    """Mastering display (chromaticities as CIE xy, luminance in cd/m²; primaries in the
    order G, B, R, as ST 2086 and x265 write them) and content light levels (cd/m²;
    ``None`` when unknown)."""

    primaries: tuple[tuple[float, float], ...] | None  # ((Gx, Gy), (Bx, By), (Rx, Ry))
    white: tuple[float, float] | None
    max_nits: float | None
    min_nits: float | None
    max_cll: int | None = None
    max_fall: int | None = None

    @classmethod
    def from_frame(cls, frame: av.VideoFrame) -> "HdrStatic | None":
        """The metadata a decoder attached to ``frame`` (from the SEI or the container),
        or None when it has none."""
        md = cll = None
        for sd in frame.side_data:
            if sd.type == av.sidedata.sidedata.Type.MASTERING_DISPLAY_METADATA:
                md = bytes(sd)
            elif sd.type == av.sidedata.sidedata.Type.CONTENT_LIGHT_LEVEL:
                cll = bytes(sd)
        if md is None and cll is None:
            return None
        prim = white = lmax = lmin = None
        if md is not None:
            # AVMasteringDisplayMetadata: 10 AVRationals (R, G, B primaries x/y, white x/y,
            # min, max luminance), then has_primaries, has_luminance
            v = struct.unpack("<20i2i", md[:88])
            q = [float(Fraction(v[2 * i], v[2 * i + 1])) if v[2 * i + 1] else 0.0 for i in range(10)]
            if v[20]:
                r, g, b = (q[0], q[1]), (q[2], q[3]), (q[4], q[5])
                prim, white = (g, b, r), (q[6], q[7])
            if v[21]:
                lmin, lmax = q[8], q[9]
        mcll = mfall = None
        if cll is not None:
            mcll, mfall = struct.unpack("<2I", cll[:8])
        return cls(prim, white, lmax, lmin, mcll, mfall)

    @classmethod
    def from_x265(cls, master_display: str, max_cll: tuple[int, int] | None = None) -> "HdrStatic":
        """From an x265 ``master-display`` string (``G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)``,
        chromaticities in 0.00002, luminance in 0.0001 cd/m²)."""
        v = dict(re.findall(r"(G|B|R|WP|L)\((\d+,\d+)\)", master_display))
        xy = {k: tuple(int(n) for n in v[k].split(",")) for k in v}
        c = lambda k: (xy[k][0] / 50000, xy[k][1] / 50000)  # noqa: E731
        cll = max_cll or (None, None)
        return cls((c("G"), c("B"), c("R")), c("WP"), xy["L"][0] / 10000, xy["L"][1] / 10000,
                   cll[0], cll[1])

    @property
    def has_display(self) -> bool:
        return self.primaries is not None and self.max_nits is not None

    def master_display(self) -> str:
        """x265/x264 ``master-display`` string: ``G(x,y)B(x,y)R(x,y)WP(x,y)L(max,min)``."""
        (gx, gy), (bx, by), (rx, ry) = self.primaries
        c = lambda x: int(round(x * 50000))  # noqa: E731 - ST 2086 units of 0.00002
        return (f"G({c(gx)},{c(gy)})B({c(bx)},{c(by)})R({c(rx)},{c(ry)})"
                f"WP({c(self.white[0])},{c(self.white[1])})"
                f"L({int(round(self.max_nits * 10000))},{int(round(self.min_nits * 10000))})")

    def encoder_options(self, codec: str) -> dict[str, str]:
        """Parameters that make ``codec`` write the metadata as SEI ({} if it cannot)."""
        if codec == "libx265":
            p = ["hdr10=1"] + ([f"master-display={self.master_display()}"] if self.has_display else [])
            if self.max_cll is not None:
                p.append(f"max-cll={self.max_cll},{self.max_fall}")
            return {"x265-params": ":".join(p)}
        if codec == "libx264":
            p = [f"mastering-display={self.master_display()}"] if self.has_display else []
            if self.max_cll is not None:
                p.append(f"cll={self.max_cll},{self.max_fall}")
            return {"x264-params": ":".join(p)} if p else {}
        return {}

    def boxes(self) -> bytes:
        """``mdcv`` (ST 2086, G/B/R order) and ``clli`` ISO-BMFF boxes."""
        out = b""
        if self.has_display:
            c = lambda x: int(round(x * 50000))  # noqa: E731
            (gx, gy), (bx, by), (rx, ry) = self.primaries
            body = struct.pack(">8H2I", c(gx), c(gy), c(bx), c(by), c(rx), c(ry),
                               c(self.white[0]), c(self.white[1]),
                               int(round(self.max_nits * 10000)), int(round(self.min_nits * 10000)))
            out += struct.pack(">I4s", 8 + len(body), b"mdcv") + body
        if self.max_cll is not None:
            body = struct.pack(">2H", min(self.max_cll, 65535), min(self.max_fall or 0, 65535))
            out += struct.pack(">I4s", 8 + len(body), b"clli") + body
        return out


def _children(buf: bytes | bytearray, start: int, end: int):
    i = start
    while i + 8 <= end:
        size, kind = struct.unpack(">I4s", buf[i:i + 8])
        if size < 8 or i + size > end:  # 64-bit or to-the-end sizes: not in a moov we wrote
            return
        yield i, size, kind
        i += size


def add_mp4_boxes(path: str | Path, payload: bytes) -> bool:
    """Append ``payload`` (whole boxes) to the video sample entry of the MP4/MOV at
    ``path``, in place, growing every enclosing box. Returns False (file untouched)
    when there is no such sample entry or the ``moov`` is not after the media data
    (moving it would shift every chunk offset)."""
    buf = bytearray(Path(path).read_bytes())
    top = list(_children(buf, 0, len(buf)))
    kinds = [k for _, _, k in top]
    if b"moov" not in kinds or (b"mdat" in kinds and kinds.index(b"mdat") > kinds.index(b"moov")):
        return False
    chain: list[int] = []

    def find(start: int, end: int, depth: int) -> int | None:
        for i, size, kind in _children(buf, start, end):
            if depth < len(_PARENTS) and kind == _PARENTS[depth]:
                chain.append(i)
                at = find(i + 8, i + size, depth + 1)
                if at is not None:
                    return at
                chain.pop()
            elif depth == len(_PARENTS) and kind == b"stsd":
                for j, s2, k2 in _children(buf, i + 16, i + size):  # after version/flags, count
                    if k2 in _SAMPLE_ENTRIES:
                        chain.extend((i, j))
                        return j + s2
        return None

    at = find(0, len(buf), 0)
    if at is None:
        return False
    buf[at:at] = payload
    for off in chain:
        size = struct.unpack(">I", buf[off:off + 4])[0]
        buf[off:off + 4] = struct.pack(">I", size + len(payload))
    Path(path).write_bytes(bytes(buf))
    return True
