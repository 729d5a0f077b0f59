"""A busy pool under a queue of requests: waiting costs the database nothing more.

Nor does a crowd of requests that miss the same cached API key record at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from psycopg import AsyncConnection
from psycopg_pool import PoolTimeout

from tests.conftest import TenantKeys
from wms.api.auth import ApiKeyAuthenticator, Principal, UnauthorizedError
from wms.config import Settings
from wms.domain.roles import Role
from wms.ops.secrets import api_key_pepper
from wms.store.database import create_pool
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


async def _authenticate_together(
    url: str, pepper: bytes, token: str, callers: int
) -> tuple[list[Principal], list[int]]:
    """``callers`` requests with the same key, twice: at once on an empty cache, then again
    after the record expired (the first caller of each round gives up midway). The
    pool's connection requests are read after each round: one per read of the record."""
    pool = create_pool(
        url, min_size=1, max_size=4, statement_timeout_ms=5_000, lock_timeout_ms=1_000
    )
    await pool.open(wait=True)
    authenticator = ApiKeyAuthenticator(pool, pepper, cache_seconds=0.2)
    principals: list[Principal] = []
    requests_after_round: list[int] = []
    try:
        for _ in range(2):
            impatient = asyncio.create_task(authenticator.authenticate(token))
            await asyncio.sleep(0)  # its read has begun
            crowd = [authenticator.authenticate(token) for _ in range(callers)]
            impatient.cancel()
            principals += await asyncio.gather(*crowd)
            requests_after_round.append(pool.get_stats()["requests_num"])
            await asyncio.sleep(0.3)  # the record expires
    finally:
        await pool.close()
    return principals, requests_after_round


def test_requests_missing_one_cached_key_record_read_it_once(
    database_url: str, settings: Settings, make_tenant: Callable[[], TenantKeys]
) -> None:
    tenant = make_tenant()
    principals, requests_after_round = asyncio.run(
        _authenticate_together(
            database_url, api_key_pepper(settings), tenant.keys[Role.OPERATOR], callers=40
        )
    )
    # One read per round (each caller reading its own: 41 and 82), and the caller that gave
    # up did not cancel the read the others waited for.
    assert requests_after_round == [1, 2]
    assert len(principals) == 80
    assert {(p.tenant_id, p.role) for p in principals} == {(tenant.tenant_id, Role.OPERATOR)}


async def _authenticate_strangers(
    url: str, pepper: bytes, token: str, strangers: int
) -> tuple[int, Principal]:
    """``strangers`` well-formed tokens of unknown key ids, then ``token``; the number of
    records cached at the end and the principal of ``token``."""
    pool = create_pool(url, min_size=1, max_size=2, statement_timeout_ms=5_000,
                       lock_timeout_ms=1_000)  # fmt: skip
    await pool.open(wait=True)
    authenticator = ApiKeyAuthenticator(pool, pepper, cache_seconds=60)
    try:
        for n in range(strangers):
            with pytest.raises(UnauthorizedError):
                await authenticator.authenticate(f"wms_{n:08d}_{'x' * 24}")
        principal = await authenticator.authenticate(token)
        return len(authenticator._cache), principal
    finally:
        await pool.close()


def test_unknown_key_ids_never_grow_the_cache_past_its_bound(
    database_url: str,
    settings: Settings,
    make_tenant: Callable[[], TenantKeys],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every unknown key id of an unauthenticated request was cached as a miss for good:
    # anyone could grow the server's memory without a credential.
    monkeypatch.setattr("wms.api.auth.MAX_CACHED_KEYS", 8, raising=False)
    tenant = make_tenant()
    cached, principal = asyncio.run(
        _authenticate_strangers(
            database_url, api_key_pepper(settings), tenant.keys[Role.OPERATOR], strangers=30
        )
    )
    assert cached <= 8
    assert (principal.tenant_id, principal.role) == (tenant.tenant_id, Role.OPERATOR)
