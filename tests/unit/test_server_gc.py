"""The server's garbage-collector settings (wms.ops.server.tune_garbage_collector)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from wms.ops.server import GC_THRESHOLDS, tune_garbage_collector


@pytest.fixture
def restored_gc() -> Iterator[None]:
    """Give the test process its own collector settings back afterwards."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_tuning_freezes_the_start_up_heap_and_collects_young_objects_in_larger_batches() -> None:
    gc.unfreeze()
    tune_garbage_collector()
    assert gc.get_freeze_count() > 1_000  # modules, classes, functions of this process
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[0] > 700  # CPython's default, which ran several times per request


@pytest.mark.usefixtures("restored_gc")
def test_cyclic_garbage_made_after_tuning_is_still_collected_automatically() -> None:
    tune_garbage_collector()

    class Node:
        partner: object = None

    first, second = Node(), Node()
    first.partner, second.partner = second, first
    gone = weakref.ref(first)
    del first, second
    # Enough new container objects to pass the young generation's threshold.
    survivors = [[index] for index in range(GC_THRESHOLDS[0] * 3)]
    assert gone() is None
    assert len(survivors) == GC_THRESHOLDS[0] * 3
