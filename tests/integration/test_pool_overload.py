"""A busy pool under a queue of requests: waiting costs the database nothing more."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from psycopg import AsyncConnection
from psycopg_pool import PoolTimeout

from wms.store.failover import StandbyAwarePool

WAITERS = 30


async def _queue_behind_a_held_connection(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, list[BaseException | None], bool]:
    """Hold the pool's only connection, let ``WAITERS`` requests wait past the primary
    wait; count the new sessions opened meanwhile. The real connect runs; it is counted."""
    opened = 0
    real_connect = AsyncConnection.connect.__func__  # type: ignore[attr-defined]

    async def counting_connect(cls: type[AsyncConnection], *args: Any, **kwargs: Any) -> Any:
        nonlocal opened
        opened += 1
        return await real_connect(cls, *args, **kwargs)

    pool = StandbyAwarePool(
        url, min_size=1, max_size=1, statement_timeout_ms=5_000, lock_timeout_ms=1_000,
        primary_wait=0.1, probe_interval=5.0,
    )  # fmt: skip
    await pool.open(wait=True)
    try:
        async with pool.connection():
            monkeypatch.setattr(AsyncConnection, "connect", classmethod(counting_connect))

            async def wait_in_line() -> None:
                async with pool.connection(timeout=0.6):
                    pass

            outcomes = await asyncio.gather(
                *(wait_in_line() for _ in range(WAITERS)), return_exceptions=True
            )
            monkeypatch.undo()
        return opened, list(outcomes), pool.on_standby
    finally:
        await pool.close()


def test_waiters_of_a_busy_pool_ask_once_whether_the_primary_answers(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Asked once per waiting request, an overloaded server opened one session per queued
    # request and served a fifth of its capacity or less (bench/FINDINGS.md, "overload").
    opened, outcomes, on_standby = asyncio.run(
        _queue_behind_a_held_connection(database_url, monkeypatch)
    )
    assert opened == 1
    assert all(isinstance(outcome, PoolTimeout) for outcome in outcomes), outcomes
    assert not on_standby  # only busy: the primary answered
