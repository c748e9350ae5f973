"""The tasks a run can do, one class each (:class:`tpn_cli.tasks.base.Task`); a run makes
its own object (it holds the run's task state: a colour run's partly painted keys, a
segment run's masks)."""
from .base import Task
from .colour import ColourTask
from .hdr import HdrTask
from .segment import SegmentTask

#: Task name (Options.task, the weights' task) → its class (``TASKS[name]()``: one run's task).
TASKS: dict[str, type[Task]] = {t.name: t for t in (ColourTask, HdrTask, SegmentTask)}

__all__ = ["TASKS", "ColourTask", "HdrTask", "SegmentTask", "Task"]
