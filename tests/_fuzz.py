"""A seeded, bounded fuzz harness for tpn's readers, run through the real CLI.

Four kinds of input are mutated with the structure of their format in mind (not only
random bytes, which mostly trip checksums and never reach the interesting code):

* ``key``   a colour key-frame PNG (``tpn colorize --keyframes``): chunks re-checksummed
  after an edit, IHDR fields (size, depth, colour type), damaged zlib streams in IDAT,
  dropped, duplicated and unknown chunks, wrong chunk lengths, truncation, bit flips;
* ``mask``  a palette mask PNG (``tpn segment --mask``): the PNG edits plus PLTE and tRNS;
* ``exr``   an HDR key-frame (``tpn hdr --hdr-keys``): header attributes (data window,
  channel list, compression, line order), attribute sizes, the offset table, pixel
  chunks, version flags, truncation;
* ``video`` an MP4 input (``tpn colorize INPUT``): box sizes, sample tables (stsz, stco,
  stts, stss), track and media headers, the sample entry's codec and its avcC, payload
  bytes, dropped boxes, truncation; one input in four is the Matroska clip instead
  (elements found by their EBML IDs: size fields, payloads, truncation).

Every run goes through ``tpn_cli.cli.main`` in a long-lived worker process (importing
torch once per worker, not once per input) with file descriptors 1 and 2 captured, so a
library writing to stdout is seen. Each run is classified:

* ``named``     exit 2..6 with exactly one JSON ``{"error": ...}`` object on stdout whose
  code is not ``INTERNAL_ERROR``, and nothing left in the output folder;
* ``complete``  exit 0, one JSON summary, the output holds the summary's frame count and
  nothing else is left in the output folder;
* ``internal``  anything else that returned (exit 1, an empty or broken stdout, a leftover);
* ``traceback`` an exception escaped ``main`` (or "Traceback" on stderr);
* ``hang``      no answer within the time limit (the worker is killed and replaced).

``python tests/_fuzz.py --seed 7 --per-kind 200`` runs it by hand and prints the table;
``tests/test_fuzz.py`` runs it under ``pytest -m slow``.
"""
from __future__ import annotations

import json
import os
import random
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
KINDS = ("key", "mask", "exr", "video")


# ----------------------------------------------------------------------------------------
# PNG
# ----------------------------------------------------------------------------------------
PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes) -> list[list]:
    """``[type, payload]`` of each chunk (stops at the first chunk that does not fit)."""
    out, pos = [], 8
    while pos + 12 <= len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if pos + 12 + n > len(data):
            break
        out.append([kind, data[pos + 8:pos + 8 + n]])
        pos += 12 + n
    return out


def png_build(chunks: list[list]) -> bytes:
    """A PNG of ``chunks`` with correct lengths and CRCs (so edits reach the decoder)."""
    body = b"".join(struct.pack(">I", len(p)) + k + p + struct.pack(">I", zlib.crc32(k + p))
                    for k, p in chunks)
    return PNG_SIG + body


def _flip(data: bytes, rng: random.Random, lo: int = 0, hi: int | None = None, n: int = 0) -> bytes:
    hi = len(data) if hi is None else hi
    if hi <= lo:
        return data
    b = bytearray(data)
    for _ in range(n or rng.randint(1, 8)):
        i = rng.randrange(lo, hi)
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def _truncate(data: bytes, rng: random.Random) -> bytes:
    return data[:rng.randrange(1, len(data))]


def mutate_png(data: bytes, rng: random.Random, palette: bool = False) -> tuple[bytes, str]:
    """One structure-aware edit of a PNG; returns (bytes, description)."""
    chunks = png_chunks(data)
    ops = ["flip", "truncate", "chunk_flip", "ihdr", "ihdr", "drop", "dup", "length",
           "zlib", "zlib", "insert", "idat_split"]
    if palette:
        ops += ["plte", "plte", "trns"]
    op = rng.choice(ops)
    if op == "flip":
        return _flip(data, rng, 8), op
    if op == "truncate":
        return _truncate(data, rng), op
    if op == "chunk_flip":
        c = rng.choice(chunks)
        if c[1]:
            c[1] = _flip(c[1], rng, n=rng.randint(1, 3))
        return png_build(chunks), f"{op}:{c[0].decode('latin1')}"
    if op == "ihdr":
        ihdr = bytearray(chunks[0][1])
        field_ = rng.choice(["width", "height", "size", "depth", "ctype", "method", "interlace"])
        huge = [0, 1, 3, 65535, 100000, 2**31 - 1, 2**31, 2**32 - 1, 40000]
        if field_ in ("width", "height", "size"):
            for off in ([0] if field_ == "width" else [4] if field_ == "height" else [0, 4]):
                ihdr[off:off + 4] = struct.pack(">I", rng.choice(huge))
        elif field_ == "depth":
            ihdr[8] = rng.choice([0, 1, 2, 3, 4, 8, 16, 255])
        elif field_ == "ctype":
            ihdr[9] = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 255])
        elif field_ == "method":
            ihdr[rng.choice([10, 11])] = rng.choice([1, 2, 255])
        else:
            ihdr[12] = rng.choice([1, 2, 255])
        chunks[0][1] = bytes(ihdr)
        return png_build(chunks), f"ihdr:{field_}"
    if op == "drop":
        i = rng.randrange(len(chunks))
        kind = chunks.pop(i)[0]
        return png_build(chunks), f"drop:{kind.decode('latin1')}"
    if op == "dup":
        i = rng.randrange(len(chunks))
        chunks.insert(i, list(chunks[i]))
        return png_build(chunks), f"dup:{chunks[i][0].decode('latin1')}"
    if op == "length":
        # a chunk whose declared length is wrong (the CRC then lands elsewhere)
        out = png_build(chunks)
        starts, pos = [], 8
        for k, p in chunks:
            starts.append(pos)
            pos += 12 + len(p)
        s = rng.choice(starts)
        val = rng.choice([0, 1, 2**31 - 1, 2**32 - 1, rng.randrange(0, len(out) * 2)])
        return out[:s] + struct.pack(">I", val) + out[s + 4:], "length"
    if op in ("zlib", "idat_split"):
        idats = [c for c in chunks if c[0] == b"IDAT"]
        if not idats:
            return _flip(data, rng, 8), "flip"
        stream = b"".join(c[1] for c in idats)
        how = rng.choice(["flip", "truncate", "garbage", "extend"]) if op == "zlib" else "split"
        if how == "flip":
            stream = _flip(stream, rng, 2, None, rng.randint(1, 4))
        elif how == "truncate":
            stream = stream[:rng.randrange(0, len(stream))]
        elif how == "garbage":
            stream = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        elif how == "extend":  # a stream that inflates to far more than the image
            stream = zlib.compress(b"\x00" * rng.choice([10**6, 5 * 10**7]), 9)
        first = chunks.index(idats[0])
        rest = [c for c in chunks if c[0] != b"IDAT"]
        pieces = [stream] if how != "split" else [stream[i:i + 7] for i in range(0, len(stream), 7)]
        new = rest[:first] + [[b"IDAT", p] for p in pieces] + rest[first:]
        return png_build(new), f"idat:{how}"
    if op == "insert":
        kind = rng.choice([b"ZZZZ", b"abCD", b"tEXt", b"iCCP", b"zTXt", b"tRNS", b"gAMA", b"pHYs",
                           b"acTL", b"eXIf"])
        payload = bytes(rng.randrange(256) for _ in range(rng.randint(0, 40)))
        chunks.insert(rng.randint(1, max(1, len(chunks) - 1)), [kind, payload])
        return png_build(chunks), f"insert:{kind.decode('latin1')}"
    if op == "plte":
        plte = [c for c in chunks if c[0] == b"PLTE"]
        if not plte:
            return _flip(data, rng, 8), "flip"
        n = rng.choice([0, 1, 2, 3, 5, 6, 768, 771, 800])
        plte[0][1] = (plte[0][1] * 3)[:n] if n <= len(plte[0][1]) * 3 else plte[0][1] + b"\x00" * (n - len(plte[0][1]))
        return png_build(chunks), f"plte:{n}"
    # trns: a transparency chunk of random length (palette alpha)
    i = next((j for j, c in enumerate(chunks) if c[0] == b"IDAT"), 1)
    chunks.insert(i, [b"tRNS", bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 3, 255, 256, 300])))])
    return png_build(chunks), "trns"


# ----------------------------------------------------------------------------------------
# OpenEXR
# ----------------------------------------------------------------------------------------
def exr_attributes(data: bytes) -> tuple[list[tuple[str, str, int, int]], int]:
    """``(name, type, value offset, value size)`` of each header attribute, and the offset
    just after the header (the start of the offset table). Single-part scanline files."""
    pos, attrs = 8, []
    while pos < len(data) and data[pos] != 0:
        end = data.index(b"\0", pos)
        name = data[pos:end].decode("latin1")
        tend = data.index(b"\0", end + 1)
        kind = data[end + 1:tend].decode("latin1")
        (size,) = struct.unpack("<i", data[tend + 1:tend + 5])
        attrs.append((name, kind, tend + 5, size))
        pos = tend + 5 + size
    return attrs, pos + 1


def mutate_exr(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    attrs, table = exr_attributes(data)
    by = {a[0]: a for a in attrs}
    b = bytearray(data)
    op = rng.choice(["flip", "truncate", "window", "window", "channels", "channels", "compression",
                     "lineorder", "attrsize", "offsets", "offsets", "pixels", "version", "header_flip"])
    if op == "flip":
        return _flip(data, rng, 0), op
    if op == "truncate":
        return _truncate(data, rng), op
    if op == "window":
        name = rng.choice(["dataWindow", "displayWindow"])
        _, _, off, _ = by[name]
        i = rng.randrange(4)
        val = rng.choice([-1, 0, 1, 89, 90, 159, 160, 100000, 2**31 - 1, -(2**31), 1 << 20])
        b[off + 4 * i:off + 4 * i + 4] = struct.pack("<i", val)
        return bytes(b), f"window:{name}[{i}]={val}"
    if op == "channels":
        _, _, off, size = by["channels"]
        # each entry: name\0, int pixel type, u8 pLinear, 3 reserved, int xSampling, int ySampling
        p = off
        entries = []
        while p < off + size - 1 and b[p] != 0:
            e = b.index(0, p)
            entries.append(e + 1)
            p = e + 1 + 16
        if not entries:
            return _flip(data, rng, off, off + size), "channels:flip"
        e = rng.choice(entries)
        what = rng.choice(["type", "xs", "ys", "name"])
        if what == "type":
            b[e:e + 4] = struct.pack("<i", rng.choice([0, 1, 2, 3, 7, -1]))
        elif what in ("xs", "ys"):
            o = e + 8 if what == "xs" else e + 12
            b[o:o + 4] = struct.pack("<i", rng.choice([0, 2, 3, -1, 1000]))
        else:
            b[e - 2] = rng.choice(b"XYZAQ")
        return bytes(b), f"channels:{what}"
    if op == "compression":
        _, _, off, _ = by["compression"]
        b[off] = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 200])
        return bytes(b), f"compression={b[off]}"
    if op == "lineorder":
        _, _, off, _ = by["lineOrder"]
        b[off] = rng.choice([1, 2, 3, 255])
        return bytes(b), "lineorder"
    if op == "attrsize":
        name, _, off, _ = rng.choice(attrs)
        b[off - 4:off] = struct.pack("<i", rng.choice([0, -1, 1, 2**31 - 1, 3, 1000]))
        return bytes(b), f"attrsize:{name}"
    if op == "offsets":
        n = max(1, min(16, (len(data) - table) // 8))
        i = rng.randrange(n)
        val = rng.choice([0, 1, len(data), len(data) * 4, 2**63 - 1, table, table + 8])
        b[table + 8 * i:table + 8 * i + 8] = struct.pack("<Q", val)
        return bytes(b), f"offsets[{i}]"
    if op == "pixels":
        return _flip(data, rng, min(len(data), table + 64), None, rng.randint(1, 16)), op
    if op == "version":
        b[4:8] = struct.pack("<I", rng.choice([1, 2, 3, 2 | 0x200, 2 | 0x400, 2 | 0x800, 2 | 0x1000, 0xFFFF]))
        return bytes(b), "version"
    return _flip(data, rng, 8, table, rng.randint(1, 4)), op


# ----------------------------------------------------------------------------------------
# MP4 (ISO BMFF)
# ----------------------------------------------------------------------------------------
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"udta"}


def mp4_boxes(data: bytes, start: int = 0, end: int | None = None, depth: int = 0) -> list[tuple[bytes, int, int]]:
    """``(type, offset of the box, its size)`` of every box, depth first (also inside the
    sample entry: ``avc1`` holds ``avcC`` after its 78 fixed bytes; ``stsd`` has 8 first)."""
    end = len(data) if end is None else end
    out, pos = [], start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if size < 8 or pos + size > end:
            break
        out.append((kind, pos, size))
        if kind in _CONTAINERS and depth < 8:
            out += mp4_boxes(data, pos + 8, pos + size, depth + 1)
        elif kind == b"stsd":
            out += mp4_boxes(data, pos + 16, pos + size, depth + 1)
        elif kind in (b"avc1", b"hvc1", b"mp4a"):
            out += mp4_boxes(data, pos + (86 if kind != b"mp4a" else 36), pos + size, depth + 1)
        pos += size
    return out


def mutate_mp4(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    boxes = mp4_boxes(data)
    by: dict[bytes, list[tuple[int, int]]] = {}
    for kind, off, size in boxes:
        by.setdefault(kind, []).append((off, size))
    b = bytearray(data)
    op = rng.choice(["flip", "truncate", "truncate_mdat", "mdat", "mdat", "boxsize", "stsz_count",
                     "stsz_entry", "stco", "stts", "stss", "mdhd", "tkhd", "fourcc", "fourcc",
                     "avcc", "avcc", "drop", "leaf_flip"])

    def first(kind: bytes) -> tuple[int, int] | None:
        # the video track comes first in these clips; its boxes are the first of each type
        return by.get(kind, [None])[0]

    if op == "flip":
        return _flip(data, rng, 0, None, rng.randint(1, 16)), op
    if op == "truncate":
        return _truncate(data, rng), op
    if op in ("truncate_mdat", "mdat"):
        m = first(b"mdat")
        if m is None:
            return _truncate(data, rng), "truncate"
        off, size = m
        if op == "truncate_mdat":
            return data[:rng.randrange(off + 8, off + size)] + data[off + size:], op
        return _flip(data, rng, off + 8, off + size, rng.randint(1, 32)), op
    if op == "boxsize":
        kind, off, size = rng.choice(boxes)
        b[off:off + 4] = struct.pack(">I", rng.choice([0, 1, 7, 8, size - 1, size + 1, 2**32 - 1, size * 3]))
        return bytes(b), f"boxsize:{kind.decode('latin1')}"
    if op == "stsz_count":
        off, _ = first(b"stsz")
        (count,) = struct.unpack(">I", data[off + 16:off + 20])
        new = rng.choice([0, 1, count - 1, count + 1, count * 2, 2**31])
        b[off + 16:off + 20] = struct.pack(">I", max(0, new) & 0xFFFFFFFF)
        return bytes(b), f"stsz_count={new}"
    if op == "stsz_entry":
        off, size = first(b"stsz")
        n = (size - 20) // 4
        if n <= 0:
            return _flip(data, rng, off, off + size), "stsz_flip"
        i = rng.randrange(n)
        b[off + 20 + 4 * i:off + 24 + 4 * i] = struct.pack(">I", rng.choice([0, 1, 2**31, 10**6]))
        return bytes(b), f"stsz[{i}]"
    if op == "stco":
        found = first(b"stco")
        if found is None:
            return _flip(data, rng), "flip"
        off, size = found
        n = (size - 16) // 4
        i = rng.randrange(max(1, n))
        b[off + 16 + 4 * i:off + 20 + 4 * i] = struct.pack(">I", rng.choice([0, 8, len(data), 2**32 - 1]))
        return bytes(b), f"stco[{i}]"
    if op in ("stts", "stss", "mdhd", "tkhd", "leaf_flip"):
        kind = {"stts": b"stts", "stss": b"stss", "mdhd": b"mdhd", "tkhd": b"tkhd"}.get(op)
        if op == "leaf_flip":
            leaves = [x for x in boxes if x[0] not in _CONTAINERS and x[0] != b"mdat"]
            kind, off, size = rng.choice(leaves)
        else:
            found = first(kind)
            if found is None:
                return _flip(data, rng), "flip"
            off, size = found
        if op == "mdhd":  # version 0: timescale at +20, duration at +24
            b[off + 20 + 4 * rng.randrange(2):][:4] = struct.pack(">I", rng.choice([0, 1, 2**32 - 1]))
            return bytes(b), "mdhd"
        if op == "tkhd":  # version 0: width, height (16.16) at +84, +88
            o = off + rng.choice([84, 88])
            b[o:o + 4] = struct.pack(">I", rng.choice([0, 1 << 16, 0xFFFFFFFF, 10000 << 16]))
            return bytes(b), "tkhd"
        return _flip(data, rng, off + 8, off + size, rng.randint(1, 4)), f"{op}:{kind.decode('latin1')}"
    if op == "fourcc":
        entry = next(((o, s) for k, o, s in boxes if k in (b"avc1", b"hvc1")), None)
        if entry is None:
            return _flip(data, rng), "flip"
        new = rng.choice([b"xxxx", b"hev1", b"mp4v", b"av01", b"vp09", b"jpeg", b"raw ", b"avc3", b"\0\0\0\0"])
        b[entry[0] + 4:entry[0] + 8] = new
        return bytes(b), f"fourcc={new!r}"
    if op == "avcc":
        found = first(b"avcC")
        if found is None:
            return _flip(data, rng), "flip"
        off, size = found
        what = rng.choice(["flip", "profile", "nal_len", "sps_len", "zero"])
        if what == "flip":
            return _flip(data, rng, off + 8, off + size, rng.randint(1, 4)), "avcc:flip"
        if what == "profile":
            b[off + 9] = rng.choice([0, 1, 66, 77, 100, 244, 255])
        elif what == "nal_len":
            b[off + 12] = rng.choice([0xFC, 0xFD, 0xFE, 0xFF])
        elif what == "sps_len":
            b[off + 14:off + 16] = struct.pack(">H", rng.choice([0, 1, 2, 200, 0xFFFF]))
        else:
            b[off + 8:off + size] = bytes(size - 8)
        return bytes(b), f"avcc:{what}"
    # drop a box: keep the parent's size consistent is not attempted; tables vanish
    kind, off, size = rng.choice([x for x in boxes if x[0] in (b"stss", b"stsz", b"stco", b"avcC",
                                                                b"ctts", b"stts", b"edts", b"mdat")])
    b[off + 4:off + 8] = b"free"
    return bytes(b), f"drop:{kind.decode('latin1')}"


# ----------------------------------------------------------------------------------------
# Matroska (EBML): elements found by their IDs, then their size field or payload edited
# ----------------------------------------------------------------------------------------
_MKV_IDS = {"Cluster": b"\x1f\x43\xb6\x75", "Tracks": b"\x16\x54\xae\x6b", "SimpleBlock": b"\xa3",
            "CodecID": b"\x86", "CodecPrivate": b"\x63\xa2", "PixelWidth": b"\xb0",
            "PixelHeight": b"\xba", "Timecode": b"\xe7", "TimecodeScale": b"\x2a\xd7\xb1",
            "Cues": b"\x1c\x53\xbb\x6b"}


def mutate_mkv(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    name = rng.choice(sorted(_MKV_IDS))
    hits, start = [], 0
    while (i := data.find(_MKV_IDS[name], start)) >= 0:
        hits.append(i)
        start = i + 1
    if not hits:
        return _truncate(data, rng), "truncate"
    i = rng.choice(hits) + len(_MKV_IDS[name])
    b = bytearray(data)
    how = rng.choice(["size", "payload", "truncate_here"])
    if how == "size" and i < len(b):  # the size vint: make it 1 byte, huge or unknown
        b[i] = rng.choice([0x80, 0x81, 0xFF, 0x01, 0x40, 0x08])
    elif how == "payload":
        return _flip(data, rng, i, min(len(data), i + 64), rng.randint(1, 4)), f"mkv:{name}:payload"
    else:
        return data[:i + rng.randint(0, 16)], f"mkv:{name}:truncate"
    return bytes(b), f"mkv:{name}:{how}"


# ----------------------------------------------------------------------------------------
# cases
# ----------------------------------------------------------------------------------------
@dataclass
class Case:
    kind: str
    seed: int
    mutation: str
    input: Path               # the mutated file
    args: list[str]           # the tpn arguments (without the program name)
    out_dir: Path             # where the outputs go; must hold only the output afterwards
    output: Path
    expected_frames: int | None
    result: dict = field(default_factory=dict)


class Fixtures:
    """The valid inputs every mutation starts from, and the tiny untrained models."""

    def __init__(self, root: Path) -> None:
        sys.path.insert(0, str(HERE))
        from _cli_util import CAPS, CAPS_MASKS, DOG, extract_keys, hdr_keys, tiny_model

        self.root = root
        m = root / "models"
        m.mkdir(parents=True, exist_ok=True)
        self.models = {t: tiny_model(m / f"{t}.pt", t) for t in ("colour", "hdr", "segment")}
        from _cli_util import SUBS

        self.dog, self.caps, self.mkv = DOG, CAPS, SUBS
        self.keys = extract_keys(DOG, root / "keys", [0, 6])
        self.exr = hdr_keys(DOG, root / "exr", [0, 6])
        self.mask = CAPS_MASKS / "00000.png"

    def seed_bytes(self, kind: str) -> bytes:
        return {"key": (self.keys / "00006.png"), "mask": self.mask,
                "exr": (self.exr / "00006.exr"), "video": self.dog}[kind].read_bytes()


def make_case(fx: Fixtures, kind: str, seed: int, work: Path) -> Case:
    rng = random.Random(f"{kind}-{seed}")
    data = fx.seed_bytes(kind)
    if kind in ("key", "mask"):
        mutated, how = mutate_png(data, rng, palette=kind == "mask")
    elif kind == "exr":
        mutated, how = mutate_exr(data, rng)
    elif seed % 4 == 3:  # one video in four: the Matroska clip (no frame count declared)
        mutated, how = mutate_mkv(fx.mkv.read_bytes(), rng)
    else:
        mutated, how = mutate_mp4(data, rng)
    d = work / f"{kind}-{seed:05d}"
    d.mkdir(parents=True)
    out_dir = d / "out"
    out_dir.mkdir()
    if kind == "key":
        keys = d / "keys"
        keys.mkdir()
        shutil.copy(fx.keys / "00000.png", keys / "00000.png")
        (keys / "00006.png").write_bytes(mutated)
        out = out_dir / "o.mp4"
        args = ["colorize", str(fx.dog), "--keyframes", str(keys), "--weights", str(fx.models["colour"]),
                "-o", str(out), "--batch-size", "6"]
        return Case(kind, seed, how, keys / "00006.png", args, out_dir, out, 12)
    if kind == "mask":
        mask = d / "00000.png"
        mask.write_bytes(mutated)
        out = out_dir / "m"
        args = ["segment", str(fx.caps), "--mask", str(mask), "--weights", str(fx.models["segment"]),
                "-o", str(out), "--end", "3"]
        return Case(kind, seed, how, mask, args, out_dir, out, 3)
    if kind == "exr":
        keys = d / "exr"
        keys.mkdir()
        shutil.copy(fx.exr / "00000.exr", keys / "00000.exr")
        (keys / "00006.exr").write_bytes(mutated)
        out = out_dir / "h"
        args = ["hdr", str(fx.dog), "--hdr-keys", str(keys), "--weights", str(fx.models["hdr"]),
                "-o", str(out), "--batch-size", "6", "--end", "8"]
        return Case(kind, seed, how, keys / "00006.exr", args, out_dir, out, 8)
    video = d / ("in.mkv" if seed % 4 == 3 else "in.mp4")
    video.write_bytes(mutated)
    out = out_dir / "o.mp4"
    args = ["colorize", str(video), "--keyframes", str(fx.keys), "--weights", str(fx.models["colour"]),
            "-o", str(out), "--batch-size", "6"]
    return Case(kind, seed, how, video, args, out_dir, out, _declared_frames(video))


def _declared_frames(video: Path) -> int | None:
    """The frame count the container declares (None: none, or unreadable): a complete
    run must write that many frames, or fail naming the shortfall."""
    import av
    try:
        with av.open(str(video)) as c:
            return int(c.streams.video[0].frames) or None
    except Exception:
        return None


def _with_json(case: Case) -> Case:
    case.args.append("--json")  # every run must answer with one JSON object
    return case


# ----------------------------------------------------------------------------------------
# classification
# ----------------------------------------------------------------------------------------
def _count_output(path: Path) -> int | None:
    if path.is_dir():
        return len([p for p in path.iterdir() if not p.name.startswith(".")])
    import av
    try:
        with av.open(str(path)) as c:
            return sum(1 for _ in c.decode(video=0))
    except Exception:
        return None


def classify(case: Case, rc: int | None, stdout: str, stderr: str, escaped: str | None) -> str:
    if rc is None:
        return "hang"
    if escaped or "Traceback (most recent call last)" in stderr:
        return "traceback"
    try:
        objs = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    except ValueError:
        return "internal"
    if len(objs) != 1 or not isinstance(objs[0], dict):
        return "internal"
    obj = objs[0]
    left = sorted(p.name for p in case.out_dir.iterdir())
    if rc == 0:
        frames = obj.get("frames")
        if left != [case.output.name] or frames is None:
            return "internal"
        if case.expected_frames is not None and frames != case.expected_frames:
            return "internal"
        return "complete" if _count_output(case.output) == frames else "internal"
    err = obj.get("error") or {}
    if 2 <= rc <= 6 and err.get("exit_code") == rc and err.get("code") not in (None, "INTERNAL_ERROR") \
            and not left and "\ntpn: " in "\n" + stderr:
        return "named"
    return "internal"


# ----------------------------------------------------------------------------------------
# workers: one process imports tpn once and runs many cases in turn
# ----------------------------------------------------------------------------------------
WORKER = r"""
import json, os, sys, traceback
proto = os.fdopen(os.dup(1), "w")
request = os.fdopen(os.dup(0), "r")
from tpn_cli import cli as tpn_cli_module  # imported once (torch, av, ...)
for line in request:
    job = json.loads(line)
    out = os.open(job["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    err = os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    saved = os.dup(1), os.dup(2)
    os.dup2(out, 1); os.dup2(err, 2)
    sys.stdout = os.fdopen(os.dup(1), "w"); sys.stderr = os.fdopen(os.dup(2), "w")
    rc, escaped = None, None
    sys.argv = ["tpn", *job["args"]]
    try:
        tpn_cli_module.main()
        rc = 0
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:
        escaped = "".join(traceback.format_exception(e))
        rc = 1
    for f in (sys.stdout, sys.stderr):
        try: f.flush(); f.close()
        except Exception: pass
    os.dup2(saved[0], 1); os.dup2(saved[1], 2)
    for fd in (out, err, *saved): os.close(fd)
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
    proto.write(json.dumps({"rc": rc, "escaped": escaped}) + "\n"); proto.flush()
"""


class Worker:
    def __init__(self) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT) + os.pathsep
                   + os.environ.get("PYTHONPATH", ""))
        self.p = subprocess.Popen([sys.executable, "-c", WORKER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, env=env, cwd=str(ROOT), text=True,
                                  start_new_session=True)
        self.case: Case | None = None
        self.started = 0.0

    def start(self, case: Case) -> None:
        self.case, self.started = case, time.monotonic()
        d = case.out_dir.parent
        job = {"args": case.args, "stdout": str(d / "stdout"), "stderr": str(d / "stderr")}
        self.p.stdin.write(json.dumps(job) + "\n")
        self.p.stdin.flush()

    def kill(self) -> None:
        try:
            os.killpg(self.p.pid, 9)
        except ProcessLookupError:
            pass
        self.p.wait()


def run_cases(cases: list[Case], workers: int = 2, timeout: float = 60.0) -> None:
    todo = list(cases)
    pool = [Worker() for _ in range(min(workers, len(todo)))]
    busy: dict[int, Worker] = {}
    while todo or busy:
        for w in pool:
            if w.case is None and todo:
                w.start(todo.pop(0))
                busy[w.p.stdout.fileno()] = w
        ready, _, _ = select.select(list(busy), [], [], 1.0)
        for fd in ready:
            w = busy.pop(fd)
            line = w.p.stdout.readline()
            _finish(w.case, json.loads(line) if line else {"rc": 1, "escaped": "worker died"},
                    time.monotonic() - w.started)
            w.case = None
            if not line:  # the worker process died (a crash by signal counts as a traceback)
                pool[pool.index(w)] = Worker()
        now = time.monotonic()
        for fd, w in list(busy.items()):
            if now - w.started > timeout:
                busy.pop(fd)
                w.kill()
                _finish(w.case, {"rc": None, "escaped": None}, now - w.started)
                pool[pool.index(w)] = Worker()
    for w in pool:
        w.p.stdin.close()
        w.p.wait()


def _finish(case: Case, answer: dict, seconds: float) -> None:
    d = case.out_dir.parent
    read = lambda n: (d / n).read_text(errors="replace") if (d / n).exists() else ""  # noqa: E731
    stdout, stderr = read("stdout"), read("stderr")
    verdict = classify(case, answer["rc"], stdout, stderr, answer.get("escaped"))
    case.result = {"class": verdict, "rc": answer["rc"], "seconds": round(seconds, 2),
                   "stderr": stderr[-600:], "stdout": stdout[-300:], "escaped": answer.get("escaped")}


def fuzz(seed: int, per_kind: int, work: Path, workers: int = 2, timeout: float = 60.0,
         kinds=KINDS) -> list[Case]:
    """Generate ``per_kind`` mutated inputs of each kind from ``seed`` and run them all."""
    fx = Fixtures(work / "fixtures")
    cases = [_with_json(make_case(fx, kind, seed * 100000 + i, work / "cases")) for i in range(per_kind)
             for kind in kinds]
    run_cases(cases, workers=workers, timeout=timeout)
    return cases


def summary(cases: list[Case]) -> dict:
    table: dict[str, Counter] = {k: Counter() for k in {c.kind for c in cases}}
    for c in cases:
        table[c.kind][c.result["class"]] += 1
    return {k: dict(v) for k, v in sorted(table.items())}


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--per-kind", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--keep", type=Path, default=None, help="keep the cases here (default: a temp dir)")
    a = ap.parse_args(argv)
    work = a.keep or Path(tempfile.mkdtemp(prefix="tpn-fuzz-"))
    t0 = time.monotonic()
    cases = fuzz(a.seed, a.per_kind, work, a.workers, kinds=a.kinds.split(","))
    print(json.dumps({"inputs": len(cases), "seconds": round(time.monotonic() - t0, 1),
                      "classes": summary(cases)}, indent=1))
    for c in cases:
        if c.result["class"] not in ("named", "complete"):
            print(f"--- {c.kind} {c.seed} {c.mutation} -> {c.result['class']} rc={c.result['rc']} "
                  f"{c.input}\n{c.result['escaped'] or c.result['stderr'][-400:]}")
    if a.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
