"""The tasks a run can do, one object each (:class:`tpn_cli.tasks.base.Task`)."""
from .base import Task
from .colour import ColourTask
from .hdr import HdrTask
from .segment import SegmentTask

#: Task name (Options.task, the weights' task) → its object.
TASKS: dict[str, Task] = {t.name: t for t in (ColourTask(), HdrTask(), SegmentTask())}

__all__ = ["TASKS", "ColourTask", "HdrTask", "SegmentTask", "Task"]
