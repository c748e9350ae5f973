"""`tpn segment`: object masks carried frame to frame (:mod:`tpn_cli.chain`)."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import chain, keyframes, outputs
from ..adapters import SegmentAdapter
from ..engine import RunStats
from ..errors import BadInputError, UsageError
from ..keyframes import check_size
from ..media.masks import Mask, read_mask
from .base import Task

if TYPE_CHECKING:
    from ..runs import Options, Run


class SegmentTask(Task):
    name, command, output_suffix, noun = "segment", "segment", "_masks", "mask"
    default_work_size = SegmentAdapter.default_work_size
    uses_shots = False  # the chain goes frame to frame
    frames_size_kind = "masks"

    def __init__(self) -> None:
        #: the masks read by check_keys, by frame index
        self.masks: dict[int, Mask] = {}

    def find_keys(self, opts: "Options") -> list[keyframes.KeyFrame]:
        """The first mask (``--mask``), then the ``--masks`` folder's other masks."""
        if not opts.keys.is_file():
            raise BadInputError("mask file not found", path=opts.keys,
                                hint="pass the first frame's mask PNG (use --masks DIR for a folder)",
                                code="INPUT_MISSING")
        keys = keyframes.find_keyframes(opts.keys, index_base=opts.index_base)
        if opts.masks is not None:
            more = keyframes.find_keyframes(opts.masks, index_base=opts.index_base, what="mask")
            seen = {k.index for k in keys}
            keys = sorted(keys + [k for k in more if k.index not in seen], key=lambda k: k.index)
        return keys

    def check_output_kind(self, opts: "Options", output: Path, kind: str) -> None:
        if kind != "frames":
            raise UsageError("the mask output is a folder of PNGs", path=output,
                             hint="give a folder (e.g. -o clip_masks/); use --overlay OUT.mp4 for a "
                                  "preview video")

    def check_keys(self, run: "Run") -> None:
        """Read every mask (kept in ``self.masks``); frames before the first get it."""
        for k in run.keys:
            m = read_mask(k.path, void=run.opts.void)
            sc = check_size(m.size, run.reader.size, path=k.path)
            if sc.note:
                run.notes.append(sc.note + " (nearest neighbour)")
            self.masks[k.index] = m
        if not any(m.object_ids for m in self.masks.values()):
            raise BadInputError("the mask has no objects (every pixel is background, id 0)",
                                path=run.keys[0].path, hint="paint at least one object with a non-zero id")
        first = min(k.index for k in run.keys)
        if run.opts.start < first:
            run.notes.append(f"frames {run.opts.start}-{min(first, run.end) - 1} come before the first "
                             f"mask ({first}) and get it unchanged")

    #: The segment TPN refines the chain unless --no-tpn.
    USE_TPN = chain.USE_TPN

    def mode(self, opts: "Options") -> str:
        return "chain"

    def batch_size(self, opts: "Options") -> int:
        return 1  # the chain: one frame after another

    def propagation(self, run: "Run") -> str:
        return ("frame to frame: optical flow, " + ("segment TPN, " if run.uses_model else "")
                + "colour model of the mask frame, its mask by direct flow where consistent")

    def plan_lines(self, run: "Run") -> list[str]:
        return chain.describe([k.index for k in run.keys], run.opts.start, run.end, self.mask_objects())

    def channels(self, run: "Run") -> tuple[int, int]:
        """Background + each object (the model scans them one by one)."""
        objects = len({i for m in self.masks.values() for i in m.object_ids})
        return objects + 1, super().channels(run)[1]

    def mask_objects(self) -> dict[int, set[int]]:
        """{mask frame: its object ids}."""
        return {i: set(m.object_ids) for i, m in self.masks.items()}

    def load_key(self, run: "Run", index: int) -> np.ndarray:
        """The mask's id map at the video's size (nearest neighbour)."""
        w, h = run.reader.width, run.reader.height
        ids = self.masks[index].ids
        return ids if ids.shape == (h, w) else _resize_ids(ids, w, h)

    def adapter(self, run: "Run", model: Any) -> SegmentAdapter:
        ids = sorted({i for m in self.masks.values() for i in m.object_ids})
        return SegmentAdapter(run.work, "cpu", ids)  # the chain's state and flow are on the CPU

    def sinks(self, run: "Run", copy_streams: bool) -> list:
        o = run.opts
        palette = self.masks[run.keys[0].index].palette
        sinks = [outputs.MaskFolderSink(run.reader, run.output, palette=palette, fmt=o.mask_format,
                                        overwrite=o.overwrite)]
        if o.overlay:
            sinks.append(outputs.OverlaySink(run.reader, o.overlay, palette=palette, overwrite=o.overwrite,
                                             same_timeline=run.full_range))
        return sinks

    def pipelined(self, opts: "Options") -> bool:
        return False  # frame to frame, one step after another

    def stream(self, run: "Run", adapter: Any, model: Any, sinks: list) -> RunStats:
        """The mask chain from the latest mask it can restart from at or before --start."""
        from ..mask_tracker import MaskPropagator

        o = run.opts
        keys = [k.index for k in run.keys]
        first = chain.first_frame(keys, o.start, self.mask_objects())
        return chain.stream_masks(frames=run.reader.frames(first, run.end), keys=keys, load_key=run.load_key,
                         mask_chain=chain.MaskChain(adapter, MaskPropagator(model)), sinks=sinks,
                         start=o.start, total=run.end - first, quiet=o.quiet)


def _resize_ids(ids: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize of an id map (ids must never be interpolated)."""
    ys = (np.arange(height) * ids.shape[0] / height).astype(np.int64)
    xs = (np.arange(width) * ids.shape[1] / width).astype(np.int64)
    return ids[ys][:, xs]
