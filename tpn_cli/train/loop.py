"""The resumable training loop: fixed seeds, periodic validation, atomic checkpoints,
a log file, progress on stdout.

Run directory layout:
  log.txt        human-readable progress
  metrics.jsonl  one JSON record per log/validation step (loss curves)
  last.ckpt      resumable state (model, optimiser, iteration), written atomically
  best.tpn       model file (tpn_cli.models.load_model) with the best validation score
  last.tpn       model file at the last checkpoint
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from ..models import TPN, load_model, save_model, task_config
from . import validate
from .tasks import TaskData, task_data


@dataclass
class TrainConfig:
    """Settings of one training run (all have defaults; see the task presets in tasks.py)."""

    run_dir: str = "/work/runs/tpn"
    minutes: float = 60.0        # wall-clock budget of this invocation (resume continues)
    max_iters: int = 20000       # length of the learning-rate schedule; training stops there
    stop_iter: int = 0           # stop earlier, schedule unchanged (0: at max_iters); for
                                 # comparing runs at an equal iteration
    batch: int = 8
    crop: int = 160
    lr: float = 5e-4
    warmup: int = 100
    seed: int = 0
    threads: int = 1
    ckpt_minutes: float = 3.0
    val_every: int = 250
    log_every: int = 20
    max_dist: int = 30           # frames between key and target (clips), or pan px (HDR)
    align: bool = False          # flow-align the key-frame to the target before the TPN
    still_prob: float = 0.1      # share of similarity-transformed still pairs (colour)
    data: str = "permissive"     # colour: 'permissive' clips only, or 'all' (+ DAVIS train)
    short_side: int = 0          # colour: shrink frames to this short side (240: colorize's
                                 # working size); 0: as stored (480p)
    init: str = ""               # start a new run from these weights (a .tpn file)
    degrade: float = 0.0         # segment: spoil the key mask like a chained prediction
    mask_guide: bool = False     # segment: the key mask is a 4th guidance channel (set
                                 # model.guide_channels=4)
    val_pairs: int = 24
    val_crop: int = 256
    model: dict = field(default_factory=dict)  # overrides of the task's TPNConfig

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)}")
        return cls(**d)


class _Log:
    """Append lines to log.txt and records to metrics.jsonl; echo lines to stdout."""

    def __init__(self, run_dir: Path):
        self.text = open(run_dir / "log.txt", "a", buffering=1)
        self.jsonl = open(run_dir / "metrics.jsonl", "a", buffering=1)

    def line(self, msg: str) -> None:
        msg = f"{time.strftime('%H:%M:%S')} {msg}"
        print(msg, flush=True)
        self.text.write(msg + "\n")

    def record(self, rec: dict) -> None:
        self.jsonl.write(json.dumps(rec) + "\n")


def _lr(cfg: TrainConfig, it: int) -> float:
    """Linear warm-up, then cosine decay to 10 % over max_iters."""
    if it < cfg.warmup:
        return cfg.lr * (it + 1) / cfg.warmup
    t = min(1.0, (it - cfg.warmup) / max(1, cfg.max_iters - cfg.warmup))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def fit(task: str, config: dict | TrainConfig | None = None) -> Path:
    """Train (or resume training) a TPN for ``task`` ('colour'/'color', 'hdr', 'segment').

    Resumes from ``run_dir/last.ckpt`` when it exists (the stored settings win over
    ``config`` except ``minutes``, ``max_iters`` and ``stop_iter``, so a run can be extended
    or cut at a chosen iteration). Returns the
    run directory.
    """
    task = "colour" if task == "color" else task
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config or {})
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(cfg.threads)
    log = _Log(run_dir)
    ckpt_path = run_dir / "last.ckpt"

    state = None
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        minutes, max_iters, stop_iter = cfg.minutes, cfg.max_iters, cfg.stop_iter
        cfg = TrainConfig.from_dict({**state["train_config"], "stop_iter": stop_iter})
        cfg.minutes, cfg.max_iters = minutes, max_iters
        log.line(f"resuming {task} from iteration {state['iter']}")

    torch.manual_seed(cfg.seed)
    model_cfg = task_config(task, **cfg.model)
    model_cfg.extra.update({"align": cfg.align})
    if cfg.mask_guide:
        model_cfg.extra["mask_guide"] = True
    model = TPN(model_cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    it, best = 0, None
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        it, best = state["iter"], state["best"]
    else:
        if cfg.init:  # fine-tuning: the same architecture, new optimiser and schedule
            model.load_state_dict(load_model(cfg.init).state_dict())
        log.line(f"new {task} run: {json.dumps(asdict(cfg))}")
        log.line(f"model: {json.dumps(model_cfg.to_dict())}")

    data: TaskData = task_data(task, cfg)
    model.config.extra["data"] = data.describe()  # stored with the weights (licences!)
    val_set = data.val_batches()
    log.line(f"data: {data.describe()}; validation pairs: {sum(len(b['u1']) for b in val_set)}")

    def checkpoint():
        _atomic_save({"iter": it, "model": model.state_dict(), "opt": opt.state_dict(),
                      "best": best, "train_config": asdict(cfg), "task": task}, ckpt_path)
        save_model(model, run_dir / "last.tpn", meta={"iter": it, "task": task})

    def run_validation():
        nonlocal best
        scores = validate.evaluate(task, model, val_set)
        score = scores["score"]
        improved = best is None or score > best
        if improved:
            best = score
            save_model(model, run_dir / "best.tpn", meta={"iter": it, "task": task, **scores})
        log.record({"iter": it, "val": scores})
        log.line(f"val @ {it}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
                 + (" (best)" if improved else ""))
        model.train()

    start = last_ckpt = time.time()
    t_log, sums, n_sum = time.time(), {}, 0
    model.train()
    end = min(cfg.max_iters, cfg.stop_iter or cfg.max_iters)
    while it < end and time.time() - start < cfg.minutes * 60:
        if it % cfg.val_every == 0 and (state is None or it != state["iter"]):
            run_validation()
        rng = np.random.default_rng([cfg.seed, it])  # same batch for the same iteration
        batch = data.train_batch(rng)
        for g in opt.param_groups:
            g["lr"] = _lr(cfg, it)
        loss, parts, _ = model.pair_loss(batch["u1"], batch["v1"], batch["u2"], batch["v2"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        it += 1
        for k, v in {"loss": loss.detach(), **parts}.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        n_sum += 1
        if it % cfg.log_every == 0:
            rate = n_sum / (time.time() - t_log)
            means = {k: v / n_sum for k, v in sums.items()}
            log.record({"iter": it, "lr": _lr(cfg, it), "it_per_s": rate, **means})
            log.line(f"it {it}/{cfg.max_iters} " + " ".join(f"{k} {v:.5f}" for k, v in means.items())
                     + f" lr {_lr(cfg, it):.2e} {rate:.2f} it/s")
            t_log, sums, n_sum = time.time(), {}, 0
        if time.time() - last_ckpt > cfg.ckpt_minutes * 60:
            checkpoint()
            last_ckpt = time.time()
    run_validation()
    checkpoint()
    log.line(f"stopped at iteration {it} ({'done' if it >= end else 'time budget'})")
    return run_dir
