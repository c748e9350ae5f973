"""``tpn batch``: many files from a job list, and ``tpn colorize|hdr --engine ray``.

A job list is a CSV file with a header row, or JSON Lines (one object per line), with
the fields

    input    the video or frame folder                                  (required)
    task     colorize | hdr | segment (also: colour, color)             (required)
    keys     the key-frame folder / HDR key folder / first mask (or the column
             ``mask``, ``keyframes``, ``hdr_keys``)                      (required)
    output   where the result goes (default: next to the input, as the commands do)
    options  more options of the command: a string as typed on the command line
             (``--mode blend --work-size 240``), or in JSON Lines also an object
             (``{"mode": "blend", "no_audio": true}``) or a list of arguments

Relative paths are taken from the job list's folder. Each row is checked and run as
``tpn TASK INPUT --keyframes KEYS -o OUTPUT OPTIONS`` would be, the options parsed by
that command itself. A job whose output already exists is skipped (``--overwrite``
redoes it); a job that fails (its error as the command would report it) does not stop
the others.
"""
from __future__ import annotations

import csv
import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import TpnError, UsageError
from .ray_engine import Job, WorkerError, import_ray, run_jobs

__all__ = ["EXIT_SOME_FAILED", "JobSpec", "read_jobs", "run_batch", "run_on_ray"]

#: Exit status of ``tpn batch`` when at least one job failed (the others done or skipped).
EXIT_SOME_FAILED = 7

#: Job-list task names → (command, its key option, Options.task).
TASKS = {"colorize": ("colorize", "--keyframes", "colour"), "colour": ("colorize", "--keyframes", "colour"),
         "color": ("colorize", "--keyframes", "colour"), "hdr": ("hdr", "--hdr-keys", "hdr"),
         "segment": ("segment", "--mask", "segment")}
_KEY_COLUMNS = ("keys", "mask", "keyframes", "hdr_keys")
#: Options of the single-file commands that mean nothing per job.
_RUN_ONLY = ("as_json", "dry_run", "engine", "ray_address", "workers", "segment_frames")


@dataclass
class JobSpec:
    """One row of a job list (paths resolved); ``line`` is its line in the file."""

    line: int
    input: Path
    task: str
    keys: Path | None
    output: Path | None
    options: list[str]


def _options_args(value: Any, line: int, path: Path) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, dict):
        args = []
        for k, v in value.items():
            flag = "--" + str(k).replace("_", "-")
            if v is True:
                args.append(flag)
            elif v not in (False, None):
                args += [flag, str(v)]
        return args
    raise UsageError(f"line {line}: options must be a string, a list or an object", path=path)


def read_jobs(path: Path) -> list[JobSpec]:
    """The jobs of a ``.csv`` or ``.jsonl`` job list (see the module doc).

    Raises:
        UsageError: unreadable list, unknown format, a row without input, task or keys.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the job list ({exc.strerror})", path=path) from exc
    rows: list[tuple[int, dict]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        rows = [(i + 2, {(k or "").strip().lower(): (v or "").strip() for k, v in r.items()})
                for i, r in enumerate(reader)]
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        for i, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise UsageError(f"line {i} is not JSON ({exc.msg})", path=path) from exc
                if not isinstance(obj, dict):
                    raise UsageError(f"line {i} is not a JSON object", path=path)
                rows.append((i, {str(k).lower(): v for k, v in obj.items()}))
    else:
        raise UsageError("a job list is a .csv or .jsonl file", path=path,
                         hint="columns: input, task, keys, output, options (see tpn batch --help)")
    base = path.parent
    jobs = []
    for line, r in rows:
        task = str(r.get("task") or "").lower()
        keys = next((r[c] for c in _KEY_COLUMNS if r.get(c)), None)
        if not r.get("input") or task not in TASKS:
            raise UsageError(f"line {line}: needs an input and a task (colorize, hdr or segment)",
                             path=path)
        if keys is None:
            raise UsageError(f"line {line}: needs the key-frames (column keys)", path=path)
        jobs.append(JobSpec(line, base / str(r["input"]), task, base / str(keys),
                            base / str(r["output"]) if r.get("output") else None,
                            _options_args(r.get("options"), line, path)))
    if not jobs:
        raise UsageError("the job list has no job", path=path)
    return jobs


def _options(spec: JobSpec, overwrite: bool) -> Any:
    """The job's :class:`tpn_cli.runs.Options`, its options parsed by its own command."""
    import click

    from ..cli import cli
    from ..runs import Options

    command, key_flag, task = TASKS[spec.task]
    args = [str(spec.input), key_flag, str(spec.keys), "--quiet", *spec.options]
    if spec.output is not None:
        args += ["-o", str(spec.output)]
    if overwrite:
        args.append("--overwrite")
    try:
        ctx = cli.commands[command].make_context(command, args)
    except click.ClickException as exc:
        raise UsageError(f"options of line {spec.line}: {exc.format_message()}") from exc
    kw = {k: v for k, v in ctx.params.items() if k not in _RUN_ONLY and k not in ("input_path", "keys")}
    kw["index_base"] = int(kw["index_base"])
    return Options(task=task, input=spec.input, keys=spec.keys, **kw)


def _job_json(spec: JobSpec, job: Job | None, status: str, reason: str | None,
              exit_code: int, output: Path | None) -> dict:
    return {"line": spec.line, "input": str(spec.input), "task": spec.task,
            "output": str(output) if output else None, "status": status, "reason": reason,
            "exit_code": exit_code, "frames": job.frames if job else 0,
            "seconds": round(job.seconds, 3) if job else 0.0}


def run_batch(jobs_file: Path, *, engine: str = "local", overwrite: bool = False,
              address: str | None = None, workers: int | None = None, segment_frames: int = 300,
              quiet: bool = False) -> tuple[dict, int]:
    """Run every job of ``jobs_file``; returns the summary and the exit status
    (0: every job done or skipped; :data:`EXIT_SOME_FAILED`: some failed)."""
    from ..runs import check_and_plan, default_output

    if engine == "ray":
        import_ray()  # before any work: say what to install
    t0 = time.perf_counter()
    specs = read_jobs(jobs_file)
    prepared: list[tuple[JobSpec, Job | None, str, str | None, int, Path | None]] = []
    for i, spec in enumerate(specs):
        output = None
        try:
            opts = _options(spec, overwrite)
            output = opts.output or default_output(opts.task, opts.input)
            if output.exists() and not overwrite:
                prepared.append((spec, None, "skipped", "output exists", 0, output))
                continue
            prepared.append((spec, Job(i, check_and_plan(opts)), "pending", None, 0, output))
        except TpnError as exc:
            prepared.append((spec, None, "failed", str(exc), exc.exit_code, output))
    jobs = [j for _, j, *_ in prepared if j is not None]
    pool: dict = {}
    if engine == "ray" and jobs:
        pool = run_jobs(jobs, address=address, workers=workers, segment_frames=segment_frames,
                        quiet=quiet)
    elif jobs:
        for job in jobs:  # today's run, one file after the other
            t = time.perf_counter()
            try:
                job.results["whole"] = job.run.execute()
                job.status = "done"
            except TpnError as exc:
                job.error, job.status = WorkerError(str(exc), exc.exit_code, exc.code), "failed"
            job.seconds = time.perf_counter() - t
    results = []
    for spec, job, status, reason, code, output in prepared:
        if job is not None:
            status = job.status
            reason = str(job.error) if job.error else None
            code = job.error.exit_code if job.error else 0
        results.append(_job_json(spec, job, status, reason, code, output))
    counts = {s: sum(r["status"] == s for r in results) for s in ("done", "skipped", "failed")}
    summary = {"tpn": __version__, "command": "batch", "jobs_file": str(jobs_file), "engine": engine,
               **counts, "jobs": results, "seconds": round(time.perf_counter() - t0, 3), **pool}
    return summary, (EXIT_SOME_FAILED if counts["failed"] else 0)


def run_on_ray(run: Any, *, address: str | None, workers: int | None, segment_frames: int,
               quiet: bool) -> dict:
    """``tpn colorize|hdr --engine ray``: the prepared ``run`` in segments on Ray; returns
    the ``--json`` summary (the local run's fields, and the segments). Raises the first
    error of a worker with its exit code."""
    from ..ops import backend

    job = Job(0, run)
    t0 = time.perf_counter()
    pool = run_jobs([job], address=address, workers=workers, segment_frames=segment_frames, quiet=quiet)
    if job.error is not None:
        raise job.error
    seconds = time.perf_counter() - t0
    parts = [r for r in job.results.values()]
    segments = [{"index": u.segment.index, "start": u.segment.start, "end": u.segment.end,
                 "seconds": round(job.results[u.segment.index]["seconds"], 3),
                 "worker_pid": job.results[u.segment.index]["pid"]}
                for u in job.units if u.segment is not None]
    summary = dict(parts[0]["summary"]) if not segments else {}
    frames = job.frames
    summary.update({
        "tpn": __version__, "command": run.task.command, "input": str(run.opts.input),
        "output": str(run.output), "frames": frames, "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 2) if seconds > 0 else 0.0,
        "video_fps": float(run.reader.fps), "size": [run.reader.width, run.reader.height],
        "work_size": [run.work[1], run.work[0]], "device": str(run.device), "mode": run.mode,
        "backend": backend(), "batch_size": run.task.batch_size(run.opts),
        "keyframes": len(run.keys), "propagation": run.task.propagation(run),
        "weights": str(run.weights_path) if run.uses_model else None,
        "extra_outputs": [str(p) for p in (run.opts.sdr_preview, run.opts.overlay) if p], "engine": "ray", "workers": pool["workers"], "segments": segments,
        "peak_memory_mb": round(max(r.get("peak_memory_mb", r.get("summary", {}).get("peak_memory_mb", 0.0))
                                    for r in parts), 1),
        "notes": run.notes, "warnings": run.warnings + job.warnings, **run._shots_json(),
    })
    return summary
