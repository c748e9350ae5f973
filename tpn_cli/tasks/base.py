"""What a task is to a run: one object per task (colour, HDR, segment) behind this class.

:mod:`tpn_cli.runs` checks, plans and streams a run without knowing which task it is:
everything task-specific is a method or attribute here, so a new task is one new file
(a subclass) plus its model and tests. The defaults are those of a key-frame task
(colour, HDR): every frame predicted from its key-frames by
:class:`tpn_cli.propagator.KeyPropagator`, streamed by :func:`tpn_cli.engine.stream_from_keys`.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import engine, keyframes, outputs
from ..engine import RunStats
from ..models.tasks import task_config
from ..propagator import KeyPropagator

if TYPE_CHECKING:  # the run holds the task: types only
    from ..runs import Options, Run

__all__ = ["Task"]


class Task:
    """One task's part of a run (the defaults: a key-frame task; see the module doc).

    A run makes its own object (``TASKS[name]()``): what a task learns while checking its
    key-frames (e.g. the masks a segment run read) is the object's, not the run's."""

    name: str = ""             # 'colour', 'hdr', 'segment': weights' task, Options.task
    command: str = ""          # the CLI command that runs it
    output_suffix: str = ""    # default output: INPUT_STEM + suffix
    noun: str = ""             # what a key-frame gives, for messages ('colour')
    #: Working short side when --work-size is not given.
    default_work_size: int = 480
    #: Shot detection keeps key-frames within their shot (a frame-to-frame task: False).
    uses_shots: bool = True

    # -- options and inputs -------------------------------------------------------------
    def default_output(self, input_path: Path) -> Path:
        """A folder next to the input: ``clip`` → ``clip<suffix>``."""
        stem = input_path.stem if input_path.is_file() else input_path.name
        return input_path.with_name(stem + self.output_suffix)

    def check_input(self, reader: Any, opts: "Options") -> None:
        """Refuse an input this task cannot take (raises BadInputError)."""

    def find_keys(self, opts: "Options") -> list[keyframes.KeyFrame]:
        """The key-frame files the user gave, by index (checked against the video later)."""
        return keyframes.find_keyframes(opts.keys, index_base=opts.index_base)

    def check_output_kind(self, opts: "Options", output: Path, kind: str) -> None:
        """Refuse an output kind ('video', 'frames', 'image') the task cannot write."""

    #: The output-size estimate of a frame-folder output (:func:`tpn_cli.outputs.estimate_bytes`).
    frames_size_kind: str = "png"

    def output_size_kind(self, kind: str, output: Path, codec: str | None) -> str:
        """Which size estimate of :func:`tpn_cli.outputs.estimate_bytes` this run's output
        takes (``kind``: 'video', 'frames'); a video's encoder is checked on the way."""
        if kind != "video":
            return self.frames_size_kind
        name = outputs.check_video_encoder(output, codec)
        return name if name in ("ffv1", "prores_ks") else "video"

    def check_keys(self, run: "Run") -> None:
        """Read and check every key-frame (content, size); may add notes to the run."""

    #: Whether the task's TPN runs when neither --tpn/--no-tpn nor --weights says.
    USE_TPN = True
    #: Whether a frame's output depends on the previous frame's (then a run is cut into
    #: segments only at key-frames, :func:`tpn_cli.scale.segments.split`).
    chains_frames = False

    def uses_model(self, opts: "Options") -> bool:
        """The task's TPN runs with --tpn (or --weights, which names one), not with
        --no-tpn, else by :data:`USE_TPN`."""
        return opts.tpn if opts.tpn is not None else (opts.weights is not None or self.USE_TPN)

    # -- the plan ---------------------------------------------------------------------------
    def mode(self, opts: "Options") -> str:
        """The schedule's name for the plan and the summary."""
        return opts.mode

    def batch_size(self, opts: "Options") -> int:
        return opts.batch_size

    def ahead_frames(self, run: "Run") -> int:
        """Frames the run's adapter takes at once for a backward pass (0: none); decides
        where the frame loop closes its batches (:class:`tpn_cli.engine.Batching`)."""
        return 0

    def propagation(self, run: "Run") -> str:
        """One line: how frames are computed."""
        return "TPN from the key-frame"

    def plan_lines(self, run: "Run") -> list[str]:
        """``--dry-run`` lines: which key-frames feed which frames."""
        return keyframes.describe_plan(run.assignments(), run.mode, run.cuts)

    def channels(self, run: "Run") -> tuple[int, int]:
        """(property channels, guidance channels), for the memory estimate: the task's
        model configuration's (:mod:`tpn_cli.models.tasks`)."""
        config = task_config(self.name)
        return config.prop_channels, config.guide_channels

    # -- the run ----------------------------------------------------------------------------
    def load_key(self, run: "Run", index: int) -> np.ndarray:
        """The property image of key ``index`` at the video's size (checked before)."""
        raise NotImplementedError

    def adapter(self, run: "Run", model: Any) -> Any:
        """The :mod:`tpn_cli.adapters` object of this run, configured for ``model``."""
        raise NotImplementedError

    def sinks(self, run: "Run", copy_streams: bool) -> list:
        """The output sinks (not yet entered); ``copy_streams``: copy audio/subtitles."""
        raise NotImplementedError

    def pipelined(self, opts: "Options") -> bool:
        """Whether the run overlaps its stages in threads (then one torch thread each)."""
        return opts.pipeline

    def stream(self, run: "Run", adapter: Any, model: Any, sinks: list) -> RunStats:
        """Compute every frame and hand it to ``sinks``: each frame from its key-frames."""
        o = run.opts
        feed = None
        if adapter.needs_key_video_frame:
            feed = engine.KeyFrameFeed(lambda: run.reader.frames(0, max(k.index for k in run.keys) + 1))
        return engine.stream_from_keys(frames=run.reader.frames(o.start, run.end), assignments=run.assignments(),
                          propagator=KeyPropagator(adapter, model), load_key=run.load_key,
                          sinks=sinks, batch_size=o.batch_size, key_feed=feed,
                          total=run.end - o.start, quiet=o.quiet, pipeline=o.pipeline)
