"""Connection pools and the database facts the server needs (role, schema version)."""

from __future__ import annotations

import select
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool

from wms.domain.errors import ConflictError
from wms.store.arrays import send_lists_as_literals
from wms.store.migrations import HISTORY_TABLE, SCHEMA, highest_version


def constraint_conflict(exc: psycopg.errors.IntegrityError) -> ConflictError:
    """A write a constraint refused, as the conflict it is (DESIGN §6.2: the last wall)."""
    return ConflictError(f"the change violates {exc.diag.constraint_name or type(exc).__name__}")


class DatabaseUnavailableError(RuntimeError):
    """The configured database did not answer."""


def describe_url(url: str) -> str:
    """``user@host:port/db`` of a connection URL, never its password."""
    info = conninfo_to_dict(url)
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"{info.get('user', '')}@{host}:{port}/{info.get('dbname', '')}".lstrip("@")


def wait_for_database(url: str, timeout_seconds: float) -> None:
    """Return once a connection succeeds; raise ``DatabaseUnavailableError`` after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        remaining = deadline - time.monotonic()
        try:
            with psycopg.connect(url, connect_timeout=max(1, int(min(remaining, 5)))) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() + 0.5 >= deadline:
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "no answer"
                raise DatabaseUnavailableError(
                    f"cannot connect to the database {describe_url(url)} "
                    f"within {timeout_seconds:g} s: {reason}"
                ) from None
            time.sleep(0.5)


# Without connect_timeout psycopg waits 130 s for a host that drops packets, and every new
# connection of a multi-host URL would try that host first.
DEFAULT_CONNECT_TIMEOUT_SECONDS = 5
# Reconnection backs off 1, 2, 4, 8 … s; a short give-up lets the next request start a fresh
# attempt, so a new primary is found within about a second of its promotion.
RECONNECT_TIMEOUT_SECONDS = 3.0


class DatabaseReadOnlyError(RuntimeError):
    """A write reached a standby (or no writable server answered): retry after failover."""


# A host that vanishes without closing its sockets (a partition, a dead VM) leaves a
# request waiting on an answer that never comes; the server's statement timeout cannot
# end it. TCP keepalives do: about 30 + 3 × 10 s after the last byte.
DEFAULT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                      "keepalives_count": 3}  # fmt: skip


def session_conninfo(url: str, target_session_attrs: str) -> str:
    """``url`` with ``target_session_attrs`` set, and a connect timeout and TCP keepalives
    where it sets none."""
    given = conninfo_to_dict(url)
    params: dict[str, str | int] = {"target_session_attrs": target_session_attrs}
    if "connect_timeout" not in given:
        params["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT_SECONDS
    params.update({k: v for k, v in DEFAULT_KEEPALIVES.items() if k not in given})
    return make_conninfo(url, **params)


def session_configurer(
    statement_timeout_ms: int, lock_timeout_ms: int
) -> Callable[[AsyncConnection], Awaitable[None]]:
    """The pool's ``configure``: search path, time limits, application name, list dumping.

    Sessions stay in autocommit: a transaction is opened by an explicit ``BEGIN`` that
    ``tenant_transaction`` sends in the same round trip as the tenant binding (psycopg's
    implicit ``BEGIN`` would cost a round trip of its own), or by ``conn.transaction()``.
    """

    async def configure(conn: AsyncConnection) -> None:
        send_lists_as_literals(conn)
        await conn.set_autocommit(True)
        await conn.execute(
            sql.SQL(
                "SET search_path = {schema}, public; SET statement_timeout = {st}; "
                "SET lock_timeout = {lt}; SET application_name = 'wms-server'"
            ).format(
                schema=sql.Identifier(SCHEMA),
                st=sql.Literal(statement_timeout_ms),
                lt=sql.Literal(lock_timeout_ms),
            )
        )

    return configure


async def check_idle_connection(conn: AsyncConnection) -> None:
    """The pools' ``check``: a round trip only if the server spoke to an idle session.

    A server that shuts down, crashes or is killed closes its sessions' sockets (after
    a ``FATAL`` message, or with a bare EOF), which makes them readable; an idle session
    the server has said nothing to is handed out without the empty query psycopg_pool's
    own check sends before every use (one round trip a request, about a fifth of a
    stock lookup). A host that vanishes without closing its sockets is caught by neither
    check: the sessions' TCP keepalives (``DEFAULT_KEEPALIVES``) end those requests.
    """
    if conn.closed:
        raise psycopg.OperationalError("the connection is closed")
    # poll, not select: select() refuses descriptors above 1024.
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN)
    if poller.poll(0):  # readable, or hung up / in error (always reported)
        await AsyncConnectionPool.check_connection(conn)


def create_pool(
    url: str,
    *,
    min_size: int,
    max_size: int,
    statement_timeout_ms: int,
    lock_timeout_ms: int,
    name: str = "primary",
    target_session_attrs: str = "read-write",
) -> AsyncConnectionPool[AsyncConnection]:
    """A pool whose sessions carry the server's search path and time limits.

    ``url`` may list several hosts (``postgresql://h1:p1,h2:p2/db``); by default only a
    writable one is taken, so after a failover new connections find the new primary.
    """
    return AsyncConnectionPool(
        session_conninfo(url, target_session_attrs),
        min_size=min_size,
        max_size=max_size,
        configure=session_configurer(statement_timeout_ms, lock_timeout_ms),
        # A connection broken by a dead server is found and replaced before it is handed
        # out, instead of failing the request that draws it.
        check=check_idle_connection,
        reconnect_timeout=RECONNECT_TIMEOUT_SECONDS,
        open=False,
        name=name,
        timeout=10.0,
    )


@dataclass(frozen=True)
class DatabaseStatus:
    """What the readiness check learns from one round trip."""

    role: Literal["primary", "standby"]
    schema_version: str | None
    latency_ms: float


_STATUS_QUERY = sql.SQL(
    "SELECT pg_is_in_recovery(), "
    "ARRAY(SELECT version FROM {schema}.{table} WHERE success AND version IS NOT NULL)"
).format(schema=sql.Identifier(SCHEMA), table=sql.Identifier(HISTORY_TABLE))


async def database_status(pool: AsyncConnectionPool[AsyncConnection]) -> DatabaseStatus:
    """Ask the database whether it is a standby and which schema version it holds."""
    started = time.perf_counter()
    async with pool.connection(timeout=2.0) as conn:
        try:
            cursor = await conn.execute(_STATUS_QUERY)
            row = await cursor.fetchone()
            in_recovery, versions = (row[0], row[1]) if row else (False, [])
        except psycopg.errors.UndefinedTable:
            await conn.rollback()
            cursor = await conn.execute("SELECT pg_is_in_recovery()")
            row = await cursor.fetchone()
            in_recovery, versions = (bool(row and row[0]), [])
    latency_ms = (time.perf_counter() - started) * 1000
    return DatabaseStatus(
        role="standby" if in_recovery else "primary",
        schema_version=highest_version(list(versions)),
        latency_ms=round(latency_ms, 2),
    )
