"""What every task confirmation (pick, putaway) checks first, in one way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wms.domain.errors import InvalidStateError, NotFoundError, UnknownReferenceError

OPEN = "open"


def open_task(
    tasks: Mapping[int, dict[str, Any]], task_id: int, *, what: str, at: str, batch: bool
) -> dict[str, Any]:
    """The locked task ``task_id`` if it is open.

    Unknown: 422 at ``{at}/task`` in a batch, 404 for a single confirmation; not open: 409.
    """
    task = tasks.get(task_id)
    if task is None:
        if batch:
            raise UnknownReferenceError(f"{at}/task", f"no {what} {task_id}")
        raise NotFoundError(f"no {what} {task_id}")
    if task["status"] != OPEN:
        raise InvalidStateError(
            f"{what} {task_id} is already {task['status']}", current_status=task["status"]
        )
    return task
