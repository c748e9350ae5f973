"""`tpn colorize`: colour key-frames (RGB, or RGBA painted in parts) → every frame."""
from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import keyframes, outputs
from ..adapters import ColourAdapter
from ..errors import BadInputError, UsageError
from ..keyframes import check_colour_keyframe, check_size
from ..media import read_image
from ..media.frames import resize_image
from ..models import infer
from .base import Task

if TYPE_CHECKING:
    from ..runs import Options, Run


class ColourTask(Task):
    name, command, output_suffix, noun = "colour", "colorize", "_color", "colour"
    default_work_size = ColourAdapter.default_work_size

    def __init__(self) -> None:
        #: key-frames painted only in parts (RGBA; alpha = where colour is given)
        self.partial_keys: set[int] = set()

    def default_output(self, input_path: Path) -> Path:
        """A video keeps its container: ``movie.mp4`` → ``movie_color.mp4``."""
        if input_path.is_file():
            return input_path.with_name(input_path.stem + self.output_suffix + input_path.suffix)
        return super().default_output(input_path)

    #: Whether the colour TPN runs without --tpn/--no-tpn: no. Since the flow part carries
    #: the previous frame's colour as a candidate (ColourAdapter.RECURSIVE_SHARE), mixing
    #: the TPN in scores lower on the tuning clips (+0.53 / +1.28 dB over the two-key
    #: baseline at K = 10 / 40 against +0.84 / +2.38 without it, both with the previous
    #: frame at share 0.25) at ~2× the time
    #: (docs/what-we-tried.md, "Colour: the previous frame as a candidate").
    USE_TPN = False
    #: A frame's colour depends on the frames between its key-frames (the flow part's
    #: chains, ColourAdapter.chain): a run may only be cut into segments at key-frames.
    chains_frames = True

    def ahead_frames(self, run: "Run") -> int:
        """The flow part's backward pass (:meth:`ColourAdapter.ahead_frames`)."""
        return self.adapter(run, None).ahead_frames(run.reader.height, run.reader.width)

    def propagation(self, run: "Run") -> str:
        keys = "the key-frame" if run.mode != "blend" else "both neighbouring key-frames"
        tpn = "the colour TPN's prediction mixed with " if run.uses_model else ""
        return (f"{tpn}{keys} and their colour carried frame to frame, forwards and backwards, "
                "warped by optical flow at full size (up to 720 lines), blended by per-pixel fit, "
                "unfit pixels filled edge-aware; chroma (Cb, Cr) on each frame's own luma")

    def check_output_kind(self, opts: "Options", output: Path, kind: str) -> None:
        if kind == "image":
            raise UsageError("the output must be a video file or a folder, not one image",
                             path=output, hint="e.g. -o out.mp4 or -o out_frames/")

    def check_keys(self, run: "Run") -> None:
        for k in run.keys:
            img = read_image(k.path, depth=8, keep_alpha=True)
            check_colour_keyframe(img, k.path)
            if img.shape[2] == 4:
                self.partial_keys.add(k.index)
            sc = check_size((img.shape[1], img.shape[0]), run.reader.size, path=k.path)
            if sc.note:
                run.notes.append(sc.note)
        if self.partial_keys:
            note = (f"{len(self.partial_keys)} key-frame(s) painted only in parts (alpha): where no "
                    "key's paint reaches, frames keep their own colour")
            if run.opts.mode != "blend" and len(run.keys) > 1:  # one key per frame: no combining
                note += "; --mode blend combines keys painted in different regions"
            run.notes.append(note)
        if run.opts.snap_check:
            _snap_checks(run)

    def load_key(self, run: "Run", index: int) -> np.ndarray:
        """RGB, or RGBA when partly painted (alpha = where colour is given)."""
        k = next(k for k in run.keys if k.index == index)
        return resize_image(read_image(k.path, depth=8, keep_alpha=True), run.reader.width, run.reader.height)

    def adapter(self, run: "Run", model: Any) -> ColourAdapter:
        # the flow-warped keys alone without a model (--no-tpn); a flow-aligned model's
        # colour mixed with them (FLOW_MIX); an older model's alone
        if model is None:
            mix = 1.0
        else:
            mix = ColourAdapter.FLOW_MIX if infer.wants_alignment(model) else 0.0
        return ColourAdapter(run.work, run.device, run.opts.chroma_upsample, flow_mix=mix,
                             partial_keys=bool(self.partial_keys))

    def sinks(self, run: "Run", copy_streams: bool) -> list:
        o = run.opts
        if run.kind == "video":
            return [outputs.VideoSink(run.reader, run.output, overwrite=o.overwrite, copy_streams=copy_streams,
                                      crf=o.crf, preset=o.preset, codec=o.codec,
                                      same_timeline=run.full_range)]
        return [outputs.FramesSink(run.reader, run.output, ext=".png", overwrite=o.overwrite)]


def _snap_checks(run: "Run", radius: int = 2) -> None:
    """Off-by-one check: compare each colour key's lightness with frames index±radius, in
    one forward decoding pass holding 2·radius+1 frames."""
    want = {k.index: k for k in run.keys}
    last = max(want)
    window: deque = deque(maxlen=2 * radius + 1)

    def check(k: keyframes.KeyFrame) -> None:
        cands = {f.index: (f.image if f.image.dtype == np.uint8 else (f.image // 257).astype(np.uint8))
                 for f in window if abs(f.index - k.index) <= radius}
        key = resize_image(read_image(k.path, depth=8, keep_alpha=True), run.reader.width, run.reader.height)
        # a partly painted key is compared as the run uses it: over the frame it names
        key = keyframes.over_frame(key, cands[k.index])
        res = keyframes.snap_check(key, cands, k.index, path=k.path)
        if not res.ok:
            raise BadInputError(res.note, path=k.path, frame=k.index,
                                hint=f"rename it to index {res.best}, or pass --no-snap-check "
                                     "if it really belongs to frame " + str(k.index),
                                code="KEYFRAME_MISMATCH")

    pending = sorted(want)
    for f in run.reader.frames(0, min(run.frame_count, last + radius + 1)):
        window.append(f)
        while pending and f.index >= min(pending[0] + radius, run.frame_count - 1):
            check(want[pending.pop(0)])
    for i in pending:
        check(want[i])
