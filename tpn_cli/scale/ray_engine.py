"""``--engine ray``: runs spread over a Ray cluster (or a Ray started for the run).

Ray's own primitives do the work: one actor per worker (:class:`SegmentWorker`, the
model loaded once per actor, ``num_gpus=1`` per actor on CUDA) in a
:class:`ray.util.ActorPool`; a worker that dies (machine lost, process killed) is
restarted by Ray and its segment run again (``max_restarts`` / ``max_task_retries``),
which is safe because a segment only ever rewrites its own files in the run's staging
folder (:func:`tpn_cli.scale.segments.run_segment`). Errors a worker raises (bad input,
out of memory) are not retried: they would fail again; they end their job only.

The driver (this process) checks and plans every job with :func:`tpn_cli.runs.check_and_plan`
as the local run does, cuts colour/HDR runs into segments, and once a job's last unit is
back, renames its frame folder into place or joins its video chunks
(:func:`tpn_cli.scale.segments.join_chunks`). Inputs and outputs must be visible to every
worker under the same paths (one machine, or a shared filesystem).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ..errors import TpnError, UsageError
from ..media.atomic import AtomicPath
from . import segments as seg

__all__ = ["Job", "Progress", "SegmentWorker", "WorkerError", "connect", "import_ray", "run_jobs"]

#: Restarts of a dead worker and re-runs of its segment before the segment counts as failed.
RETRIES = 3

#: Object store of a Ray started for the run: only small results travel through it.
LOCAL_OBJECT_STORE_BYTES = 200 * 2**20


def import_ray():
    """The ``ray`` module, or a usage error (exit 2) naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise UsageError("--engine ray needs Ray, which is not installed",
                         hint='pip install "tpn[ray]" (Ray 2.x), or use --engine local',
                         code="RAY_MISSING") from exc
    return ray


@contextlib.contextmanager
def connect(address: str | None, workers: int | None) -> Iterator[Any]:
    """Ray for the run: already initialised (a caller's), the cluster at ``address`` or
    ``$RAY_ADDRESS``, else a local Ray with ``workers`` CPUs (default: all), shut down at
    the end. Yields the ``ray`` module."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    else:
        # workers import the same tpn_cli as this process (a source checkout included)
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        # ERROR: Ray's start-up notices would sit between tpn's own messages
        ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                 runtime_env={"env_vars": {"PYTHONPATH": path}})
    try:
        yield ray
    finally:
        ray.shutdown()


class WorkerError(TpnError):
    """An error a worker raised, with its exit code (see :mod:`tpn_cli.errors`)."""

    def __init__(self, message: str, exit_code: int, code: str) -> None:
        super().__init__(message, code=code)
        self.exit_code = exit_code


@dataclass
class Unit:
    """One piece of work for a worker: a segment of a colour/HDR job, or a whole job."""

    job: int
    segment: seg.Segment | None     # None: the whole job (``Run.execute``)
    staging: Path | None

    @property
    def key(self) -> str:
        return f"{self.job}:{self.segment.index if self.segment else 'whole'}"


class Progress:
    """A Ray actor holding how many frames each unit has written so far (the latest
    count, so a retried unit is not counted twice): the driver's one progress bar."""

    def __init__(self) -> None:
        self.frames: dict[str, int] = {}

    def report(self, unit: str, frames: int) -> None:
        self.frames[unit] = frames

    def total(self) -> int:
        return sum(self.frames.values())


class _ReportSink:
    """Tells the Progress actor every few frames how far a segment is (fire and forget)."""

    EVERY = 8

    def __init__(self, progress: Any, unit: str) -> None:
        self.progress, self.unit, self.count = progress, unit, 0

    def write(self, frame: Any, result: Any) -> None:
        self.count += 1
        if self.count % self.EVERY == 0:
            self.progress.report.remote(self.unit, self.count)


class SegmentWorker:
    """A Ray actor: computes units of prepared runs; keeps its model(s) between units and
    each run's adapter (HDR: the fitted camera response) between that run's segments."""

    def __init__(self) -> None:
        self._models: dict[tuple, Any] = {}
        self._adapters: dict[int, Any] = {}
        self._pts: dict[str, Any] = {}

    def _model(self, run: Any) -> Any:
        from .. import weights

        key = (str(run.weights_path), run.opts.task, str(run.device), run.opts.precision)
        if key not in self._models:
            model, _ = weights.load(run.opts.weights, run.opts.task, device=str(run.device))
            model.for_inference(channels_last=True, precision=run.opts.precision)
            self._models[key] = model
        return self._models[key]

    def run_unit(self, run: Any, unit: Unit, progress: Any = None) -> dict:
        """Compute ``unit`` of ``run``; returns its result, or ``{"error": ...}`` for an
        error of the run itself (an internal one as exit code 1). ``progress``: a
        :class:`Progress` actor to report frames to."""
        import torch

        t0 = time.perf_counter()
        try:
            if unit.segment is None:
                summary = run.execute()
                return {"job": unit.job, "segment": None, "frames": summary["frames"],
                        "seconds": time.perf_counter() - t0, "summary": summary}
            if run.device.type == "cpu":  # as Run.execute: the pipeline's stages are the threads
                torch.set_num_threads(run.opts.threads or (1 if run.opts.pipeline else torch.get_num_threads()))
            model = self._model(run)
            if unit.job not in self._adapters:
                self._adapters = {unit.job: run.task.adapter(run, model)}  # one run at a time
            path = str(run.opts.input)
            if path not in self._pts:
                self._pts = {path: seg.packet_pts(run.opts.input) if run.opts.input.is_file() else None}
            extra = [_ReportSink(progress, unit.key)] if progress is not None else []
            stats, timing = seg.run_segment(run, unit.segment, unit.staging, self._adapters[unit.job],
                                            model, self._pts[path], extra_sinks=extra)
            return {"job": unit.job, "segment": unit.segment.index, "frames": stats.frames,
                    "seconds": time.perf_counter() - t0, "timing": timing,
                    "warnings": stats.warnings, "peak_memory_mb": stats.peak_memory_mb,
                    "pid": os.getpid()}
        except TpnError as exc:
            return {"job": unit.job, "error": {"message": str(exc), "exit_code": exc.exit_code,
                                               "code": exc.code}}
        except Exception as exc:  # noqa: BLE001 - reported as the job's internal error
            return {"job": unit.job, "error": {"message": f"internal error: {type(exc).__name__}: {exc}",
                                               "exit_code": 1, "code": "INTERNAL_ERROR"}}


@dataclass
class Job:
    """One file to process: its prepared run (None: failed or skipped before running),
    its units and results, and how it ended."""

    index: int
    run: Any
    status: str = "pending"          # pending, done, failed, skipped
    error: WorkerError | None = None
    units: list[Unit] = field(default_factory=list)
    results: dict[Any, dict] = field(default_factory=dict)
    staging: AtomicPath | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def frames(self) -> int:
        return sum(r.get("frames", 0) for r in self.results.values())


def _plan_units(job: Job, segment_frames: int) -> None:
    """Cut a colour/HDR job into segments writing into a staging folder next to its
    output; anything else (masks, HDR10 video) is one unit running the whole job."""
    run = job.run
    why_not = seg.supports_segments(run)
    if why_not is not None:
        job.units = [Unit(job.index, None, None)]
        return
    if run.kind == "video":  # chunks in a hidden folder, removed once joined
        job.staging = AtomicPath(run.output.with_name(run.output.name + ".chunks"), overwrite=True,
                                 is_dir=True)
    else:  # frames under their final names in the folder that becomes the output
        job.staging = AtomicPath(run.output, overwrite=run.opts.overwrite, is_dir=True)
    job.units = [Unit(job.index, s, job.staging.path) for s in seg.split(run, segment_frames)]


def _finish(job: Job) -> None:
    """All units of ``job`` are back: put its output in place (or clean up on failure)."""
    try:
        if job.error is None and job.staging is not None:
            run = job.run
            if run.kind == "video":
                chunks = [(job.staging.path / seg.chunk_name(u.segment, run.output),
                           job.results[u.segment.index]["timing"]) for u in job.units]
                job.warnings += seg.join_chunks(run, chunks)
            else:
                job.staging.commit()
        if job.error is None:
            job.status = "done"
    except TpnError as exc:
        job.error = WorkerError(str(exc), exc.exit_code, exc.code)
    finally:
        if job.staging is not None and (job.error is not None or job.run.kind == "video"):
            job.staging.abort()
        if job.error is not None:
            job.status = "failed"


def run_jobs(jobs: list[Job], *, address: str | None = None, workers: int | None = None,
             segment_frames: int = 300, quiet: bool = False) -> dict:
    """Run every pending job of ``jobs`` on Ray, segments of all jobs in one actor pool,
    with one progress bar over all frames; sets each job's status, error and results.
    Returns facts about the pool (workers, seconds)."""
    from tqdm import tqdm

    pending = [j for j in jobs if j.status == "pending"]
    # Ray's driver threads print what its cluster reports (a worker died ...) on stdout,
    # which --json keeps for the one summary object: send it to stderr with our messages
    with contextlib.redirect_stdout(sys.stderr), connect(address, workers) as ray:
        from ray.util import ActorPool

        for job in pending:
            _plan_units(job, segment_frames)
        units = [(job, u) for job in pending for u in job.units]
        gpu = any(j.run.device.type == "cuda" for j in pending)
        # no more actors than the cluster can hold at once: a unit handed to an actor that
        # never gets its CPU/GPU would wait forever
        capacity = max(1, int(ray.cluster_resources().get("GPU" if gpu else "CPU", 1)))
        n = max(1, min(workers or capacity, capacity, len(units) or 1))
        actor = ray.remote(num_cpus=1, num_gpus=1 if gpu else 0, max_restarts=RETRIES,
                           max_task_retries=RETRIES)(SegmentWorker)
        pool = ActorPool([actor.remote() for _ in range(n)])
        progress = ray.remote(num_cpus=0)(Progress).remote()
        refs = {job.index: ray.put(job.run) for job in pending}
        total = sum(u.segment.frames if u.segment else job.run.end - job.run.opts.start
                    for job, u in units)
        left = {job.index: len(job.units) for job in pending}
        t0 = time.perf_counter()
        bar = tqdm(total=total, unit="frame", file=sys.stderr, disable=quiet or None,
                   dynamic_ncols=True, smoothing=0.1)
        try:
            for job, u in units:
                pool.submit(lambda a, x: a.run_unit.remote(refs[x.job], x, progress), u)
            for job, u in units:  # results in submission order: a lost worker names its unit
                try:
                    while True:
                        try:
                            result = pool.get_next(timeout=0.5)
                            break
                        except TimeoutError:  # meanwhile: the frames the workers report
                            done = ray.get(progress.total.remote())
                            bar.update(max(0, done - bar.n))
                except ray.exceptions.RayError as exc:
                    result = {"job": job.index, "error": {
                        "message": f"a worker was lost {RETRIES + 1} times on this unit ({type(exc).__name__})",
                        "exit_code": 1, "code": "WORKER_LOST"}}
                if "error" in result:
                    e = result["error"]
                    job.error = job.error or WorkerError(e["message"], e["exit_code"], e["code"])
                else:
                    job.results[u.segment.index if u.segment else "whole"] = result
                    job.warnings += result.get("warnings", []) + result.get("summary", {}).get("warnings", [])
                    progress.report.remote(u.key, result["frames"])  # whole jobs report only here
                bar.update(max(0, ray.get(progress.total.remote()) - bar.n))
                job.seconds += result.get("seconds", 0.0)
                left[job.index] -= 1
                if left[job.index] == 0:
                    _finish(job)
        finally:
            bar.close()
            for job in pending:  # interrupted: no staging folder left behind
                if job.status == "pending" and job.staging is not None:
                    job.staging.abort()
        return {"workers": n, "seconds": round(time.perf_counter() - t0, 3)}
