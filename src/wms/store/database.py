"""Connection pools and the database facts the server needs (role, schema version)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool

from wms.store.migrations import HISTORY_TABLE, SCHEMA, highest_version


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


def create_pool(
    url: str,
    *,
    min_size: int,
    max_size: int,
    statement_timeout_ms: int,
    lock_timeout_ms: int,
    name: str = "primary",
) -> AsyncConnectionPool[AsyncConnection]:
    """A pool whose sessions carry the server's search path and time limits."""

    async def configure(conn: AsyncConnection) -> None:
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
        await conn.set_autocommit(False)

    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        configure=configure,
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
