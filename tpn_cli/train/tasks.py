"""Per-task training data: how a batch is drawn and which pairs validate it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import hdr_video, pairs, sources

VAL_SEED = 12345
VAL_MAX_DIST = 20


@dataclass
class TaskData:
    """A training-pair generator and a fixed validation set for one task."""

    make_train: Callable[[np.random.Generator], dict]
    make_val: Callable[[np.random.Generator], dict]
    batch: int
    val_pairs: int
    info: str

    def train_batch(self, rng: np.random.Generator) -> dict:
        """A batch of fresh training pairs drawn with ``rng``."""
        return pairs.collate([self.make_train(rng) for _ in range(self.batch)])

    def val_batches(self, chunk: int = 8) -> list[dict]:
        """The fixed validation pairs, in batches of ``chunk``."""
        items = pairs.fixed_pairs(self.make_val, self.val_pairs, VAL_SEED)
        return [pairs.collate(items[i:i + chunk]) for i in range(0, len(items), chunk)]

    def describe(self) -> str:
        return self.info


def task_data(task: str, cfg) -> TaskData:
    """The data of ``task`` configured by a TrainConfig ``cfg``."""
    if task == "colour":
        train = sources.colour_clips(cfg.data)
        val = [sources.davis_clip(n) for n in sources.DAVIS_VAL]
        return TaskData(
            lambda r: pairs.colour_pair(r, train, cfg.crop, cfg.max_dist, cfg.align, cfg.still_prob,
                                        cfg.short_side),
            lambda r: pairs.colour_pair(r, val, cfg.val_crop, VAL_MAX_DIST, cfg.align,
                                        short_side=cfg.short_side),
            cfg.batch, cfg.val_pairs,
            f"colour train clips {[c.name for c in train]}, val DAVIS {list(sources.DAVIS_VAL)}")
    if task == "segment":
        train, val = sources.segment_clips("train"), sources.segment_clips("val")
        return TaskData(
            lambda r: pairs.segment_pair(r, train, cfg.crop, cfg.max_dist, cfg.align, cfg.degrade,
                                           cfg.mask_guide),
            lambda r: pairs.segment_pair(r, val, cfg.val_crop, cfg.max_dist, cfg.align, cfg.degrade,
                                           cfg.mask_guide),
            cfg.batch, cfg.val_pairs,
            f"segment train DAVIS {list(sources.DAVIS_TRAIN)}, val DAVIS {list(sources.DAVIS_VAL)}")
    if task == "hdr":
        train, val = hdr_video.hdr_images("train"), hdr_video.hdr_images("val")
        return TaskData(
            lambda r: hdr_video.hdr_pair(r, train, cfg.crop, cfg.max_dist, cfg.align),
            lambda r: hdr_video.hdr_pair(r, val, cfg.val_crop, cfg.max_dist, cfg.align),
            cfg.batch, cfg.val_pairs,
            f"hdr train {sorted(train)}, val {sorted(val)}")
    raise ValueError(f"unknown task {task!r}")
