"""`tpn hdr`: radiance key-frames (EXR/.hdr) + an LDR video → HDR frames.

By default no network runs: each frame fuses its own LDR, inverted with the camera
response fitted to the key-frames, with both neighbouring key-frames flow-aligned to it
(:mod:`tpn_cli.hdr_fusion`); ``--tpn`` puts each aligned key through the HDR TPN first.
On pseudo-video the TPN added nothing in this fusion (docs/what-we-tried.md, "HDR: two
key-frames"), so the default skips it and needs no weights."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import camera_response, engine, keyframes, outputs, timing
from ..adapters import HdrAdapter
from ..errors import BadInputError, UsageError
from ..keyframes import check_size
from ..media.frames import resize_image
from ..media.hdr import HDR_EXTENSIONS, read_hdr_image
from .base import Task

if TYPE_CHECKING:
    from ..runs import Options, Run


class HdrTask(Task):
    name, command, output_suffix, noun = "hdr", "hdr", "_hdr", "radiance"
    default_work_size = HdrAdapter.default_work_size
    frames_size_kind = "exr"

    def output_size_kind(self, kind: str, output: Path, codec: str | None) -> str:
        """An EXR folder, or HDR10/HLG HEVC (libx265, checked when the writer opens)."""
        return "hdr-video" if kind == "video" else self.frames_size_kind

    #: The HDR TPN runs only with --tpn (or --weights, which names one).
    USE_TPN = False

    def propagation(self, run: "Run") -> str:
        keys = "the key-frame(s)" if run.mode != "blend" else "both neighbouring key-frames"
        how = "through the HDR TPN" if run.uses_model else "no TPN (--tpn to add it)"
        return (f"{keys} flow-aligned ({how}), fused per channel with the frame's own LDR "
                "inverted by the camera response fitted to the keys")

    def check_input(self, reader: Any, opts: "Options") -> None:
        if getattr(reader, "is_hdr", False):
            raise BadInputError("the input is already radiance (EXR/HDR frames)", path=opts.input,
                                hint="tpn hdr takes an LDR video or a folder of PNG/JPEG frames")

    def find_keys(self, opts: "Options") -> list[keyframes.KeyFrame]:
        return keyframes.find_keyframes(opts.keys, index_base=opts.index_base,
                                        extensions=HDR_EXTENSIONS, what="HDR key-frame")

    def check_output_kind(self, opts: "Options", output: Path, kind: str) -> None:
        if kind == "video" and output.suffix.lower() not in (".mp4", ".mkv", ".mov"):
            raise UsageError(f"HDR video output must be .mp4, .mkv or .mov, not {output.suffix}",
                             path=output, hint="or give a folder for an EXR sequence")
        if kind == "image":
            raise UsageError("the HDR output must be a folder (EXR sequence) or a .mp4/.mkv video",
                             path=output, hint="e.g. -o out_exr/ or -o out_hdr10.mp4")

    def check_keys(self, run: "Run") -> None:
        for k in run.keys:
            if k.path.suffix.lower() not in HDR_EXTENSIONS:
                raise BadInputError(f"{k.path.suffix} is not a radiance image", path=k.path,
                                    hint="HDR key-frames are .exr or .hdr files (linear, 1.0 = LDR white)")
            img = read_hdr_image(k.path)  # refuses NaN/Inf with the pixel position
            sc = check_size((img.shape[1], img.shape[0]), run.reader.size, path=k.path)
            if sc.note:
                run.notes.append(sc.note)

    def load_key(self, run: "Run", index: int) -> np.ndarray:
        k = next(k for k in run.keys if k.index == index)
        return resize_image(read_hdr_image(k.path), run.reader.width, run.reader.height)

    def adapter(self, run: "Run", model: Any) -> HdrAdapter:
        return HdrAdapter(run.work, run.device, self.fit_camera_response(run))

    def fit_camera_response(self, run: "Run") -> camera_response.CameraResponse:
        """The video's inverse camera response, from every key-frame and the video frame
        at its index (read once more, before the run; only per-level sums are kept)."""
        idx = sorted(k.index for k in run.keys)
        feed = engine.KeyFrameFeed(lambda: run.reader.frames(0, idx[-1] + 1))
        with timing.section("keys"):
            response = camera_response.fit((feed.get(i), run.load_key(i)) for i in idx)
        run.notes.append(
            f"camera response fitted to {len(idx)} key-frame(s): log-RMSE on their unclipped "
            f"values {response.key_rmse:.3f} (generic curve {response.generic_key_rmse:.3f})")
        return response

    def sinks(self, run: "Run", copy_streams: bool) -> list:
        o, r = run.opts, run.reader
        if run.kind == "video":
            sinks = [outputs.HdrVideoSink(r, run.output, transfer=o.transfer, paper_white=o.paper_white,
                                          overwrite=o.overwrite, copy_streams=copy_streams,
                                          same_timeline=run.full_range)]
        else:
            sinks = [outputs.FramesSink(r, run.output, ext=".exr", overwrite=o.overwrite)]
        if o.sdr_preview:
            sinks.append(outputs.SdrPreviewSink(r, o.sdr_preview, overwrite=o.overwrite,
                                                copy_streams=copy_streams, same_timeline=run.full_range))
        return sinks
