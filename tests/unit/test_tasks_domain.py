"""The first check of every task confirmation (wms.domain.tasks)."""

from __future__ import annotations

import pytest

from wms.domain.errors import InvalidStateError, NotFoundError, UnknownReferenceError
from wms.domain.tasks import open_task

TASKS = {1: {"id": 1, "status": "open"}, 2: {"id": 2, "status": "confirmed"}}


def test_an_open_task_is_returned() -> None:
    assert open_task(TASKS, 1, what="pick task", at="", batch=False) is TASKS[1]


def test_an_unknown_task_is_a_field_error_in_a_batch_and_not_found_alone() -> None:
    with pytest.raises(UnknownReferenceError) as in_batch:
        open_task(TASKS, 9, what="pick task", at="/confirmations/3", batch=True)
    assert in_batch.value.errors == [("/confirmations/3/task", "no pick task 9")]
    with pytest.raises(NotFoundError):
        open_task(TASKS, 9, what="pick task", at="", batch=False)


def test_a_task_no_longer_open_is_a_conflict_naming_its_status() -> None:
    with pytest.raises(InvalidStateError) as done:
        open_task(TASKS, 2, what="putaway task", at="", batch=True)
    assert done.value.extensions == {"current_status": "confirmed"}
