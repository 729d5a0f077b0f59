"""Concurrent callers asking the same question share one call in flight.

Under load many requests miss a cache at the same moment (an API key's record expiring,
the pool asking whether a writable host answers); each asking the database on its own
multiplies the work exactly when there is least room for it (bench/FINDINGS.md,
"overload").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from functools import partial
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """One call per key at a time; callers arriving meanwhile await its result.

    The call runs in its own task and callers await it shielded, so a caller that gives
    up (a client that disconnects) does not cancel the answer the others wait for.
    """

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[V]] = {}

    async def run(self, key: K, call: Callable[[], Coroutine[Any, Any, V]]) -> V:
        """``call()``'s result, shared with every caller of the same key while it runs."""
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(call())
            self._running[key] = task
            task.add_done_callback(partial(self._finished, key))
        return await asyncio.shield(task)

    def cancel(self) -> None:
        """Cancel the calls in flight (at shutdown)."""
        for task in self._running.values():
            task.cancel()

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            # Retrieved here too: when every caller gave up, nobody else reads it.
            task.exception()
