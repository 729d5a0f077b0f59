"""The server's pool across a primary and its standbys: writes follow the primary, reads go on.

``DATABASE_URL`` may list several hosts. The pool takes only a writable one
(``target_session_attrs=read-write``). While none is writable (the primary died and no
standby has been promoted yet, or the URL names a standby only), requests are served by a
second pool on any host that answers: reads work there, ``/health/ready`` reports the
role ``standby``, and a write is refused with ``DatabaseReadOnlyError`` (503 with
``Retry-After``). A background probe looks for a writable host every
``PROBE_INTERVAL_SECONDS`` and switches back as soon as one answers, without a restart.

Whether a host is writable is asked by opening a connection, so it is asked once for all
the requests waiting at that moment, and the answer serves for ``PROBE_INTERVAL_SECONDS``.
A busy pool is the common reason to wait: asked once per waiting request, an overloaded
server opened one PostgreSQL session per queued request, and the sessions' start-up cost
cut what it served to a fifth of its capacity or less (bench/FINDINGS.md, "overload").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import structlog
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from wms.ops.singleflight import SingleFlight
from wms.store.database import (
    RECONNECT_TIMEOUT_SECONDS,
    DatabaseReadOnlyError,
    check_idle_connection,
    session_configurer,
    session_conninfo,
)

log = structlog.get_logger(__name__)

# How long a request waits for a writable connection before asking whether any host is
# writable at all; short, so that the readiness check (2 s) can still answer "standby".
PRIMARY_WAIT_SECONDS = 1.0
PROBE_INTERVAL_SECONDS = 0.5
PROBE_CONNECT_TIMEOUT_SECONDS = 2
# SQLSTATEs of a write refused because the server is in recovery: 25006 for a write
# statement, 25001 for ``set_config('transaction_read_only', 'off')`` after the first query,
# 0A000 for the same before it ("cannot set transaction read-write mode during recovery").
_READ_ONLY_SQLSTATES = frozenset({"25006", "25001", "0A000"})


class StandbyAwarePool(AsyncConnectionPool[AsyncConnection]):
    """A read-write pool that serves from ``standby`` while no writable host answers."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int,
        max_size: int,
        statement_timeout_ms: int,
        lock_timeout_ms: int,
        primary_wait: float = PRIMARY_WAIT_SECONDS,
        probe_interval: float = PROBE_INTERVAL_SECONDS,
    ) -> None:
        configure = session_configurer(statement_timeout_ms, lock_timeout_ms)
        self.writable_conninfo = session_conninfo(url, "read-write")
        super().__init__(
            self.writable_conninfo,
            min_size=min_size,
            max_size=max_size,
            configure=configure,
            # A connection broken by a dead server is replaced before it is handed out.
            check=check_idle_connection,
            reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
            open=False,
            name="primary",
            timeout=10.0,
        )
        self.standby: AsyncConnectionPool[AsyncConnection] = AsyncConnectionPool(
            # Any host, in the URL's order: used only while none is writable, so a standby.
            session_conninfo(url, "any"),
            min_size=0,
            max_size=max_size,
            configure=configure,
            check=check_idle_connection,
            reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
            open=False,
            name="standby",
            timeout=2.0,
        )
        self.primary_wait = primary_wait
        self.probe_interval = probe_interval
        self.on_standby = False
        self._probe: asyncio.Task[None] | None = None
        self._asking: SingleFlight[str, bool] = SingleFlight()
        self._answer: tuple[float, bool] | None = None  # (monotonic time, writable?)

    async def open(self, wait: bool = False, timeout: float = 30.0) -> None:  # noqa: ASYNC109
        """Open both pools (the standby pool holds no connection until needed)."""
        await self.standby.open(wait=False)
        await super().open(wait=wait, timeout=timeout)

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - the base's signature
        """Stop the probe and close both pools."""
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None
        self._asking.cancel()
        await super().close(timeout)
        await self.standby.close(timeout)

    @asynccontextmanager
    async def connection(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - the base class's signature
    ) -> AsyncIterator[AsyncConnection]:
        """A writable connection; while none exists, one of the standby (writes refused)."""
        conn = None if self.on_standby else await self._writable_connection(timeout)
        if conn is None:
            async with self.standby.connection(timeout) as standby_conn:
                try:
                    yield standby_conn
                except psycopg.Error as exc:
                    if exc.sqlstate in _READ_ONLY_SQLSTATES:
                        raise DatabaseReadOnlyError(
                            "the database is a standby; writes resume after failover"
                        ) from exc
                    raise
            return
        try:
            async with conn:
                yield conn
        finally:
            await self.putconn(conn)

    async def _writable_connection(self, wait: float | None) -> AsyncConnection | None:
        """A connection of this pool, or None once no host is writable (standby mode begins)."""
        total = self.timeout if wait is None else wait
        deadline = time.monotonic() + total
        try:
            return await self.getconn(min(total, self.primary_wait))
        except PoolTimeout:
            if await self._writable_host_answers_shared():
                # Only busy: wait out the rest of the caller's timeout as usual.
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise
                return await self.getconn(remaining)
        self._enter_standby_mode()
        return None

    async def _writable_host_answers_shared(self) -> bool:
        """``_writable_host_answers``, asked once for all waiters; kept ``probe_interval``."""
        if self._answer is not None and time.monotonic() - self._answer[0] < self.probe_interval:
            return self._answer[1]
        return await self._asking.run("writable", self._ask_once)

    async def _ask_once(self) -> bool:
        writable = await self._writable_host_answers()
        self._answer = (time.monotonic(), writable)
        return writable

    async def _writable_host_answers(self) -> bool:
        """Whether a new read-write connection can be opened right now."""
        try:
            conn = await AsyncConnection.connect(
                self.writable_conninfo, connect_timeout=PROBE_CONNECT_TIMEOUT_SECONDS
            )
        except psycopg.OperationalError:
            return False
        await conn.close()
        return True

    def _enter_standby_mode(self) -> None:
        if self.on_standby:
            return
        log.warning("database_no_writable_host", pool=self.name)
        self.on_standby = True
        self._probe = asyncio.create_task(self._probe_until_writable())

    async def _probe_until_writable(self) -> None:
        """Every ``probe_interval``, look for a writable host; leave standby mode on one."""
        while True:
            if await self._writable_host_answers():
                break
            await asyncio.sleep(self.probe_interval)
        log.warning("database_writable_host_found", pool=self.name)
        self._answer = (time.monotonic(), True)
        self.on_standby = False
        self._probe = None
