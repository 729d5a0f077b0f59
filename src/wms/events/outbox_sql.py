"""The relay's and the feed's SQL over the outbox (cross-tenant as ``wms_admin``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from wms.events.cloudevents import EventRow

# The key shard of a row: one aggregate's events always fall in the same shard.
SHARD = "(hashtext(o.tenant_id::text || '/' || o.aggregate || '/' || o.aggregate_id) & 2147483647)"
_COLUMNS = (
    "t.code AS tenant, o.tenant_id, o.id, o.xid::text::numeric AS xid, o.event_id, o.type, "
    "o.source, o.subject, o.aggregate, o.aggregate_id, o.occurred_at, o.data"
)


def to_row(row: dict[str, Any]) -> EventRow:
    """An ``EventRow`` of a query row."""
    return EventRow(**{**row, "xid": int(row["xid"])})


async def unpublished(
    conn: AsyncConnection, *, shards: list[int], shard_count: int, limit: int
) -> list[EventRow]:
    """The unpublished events of ``shards`` in commit order (V16), oldest first.

    Pending commits are walked in their order and each one's waiting rows read by its
    transaction id; committed rows only, so nothing waits for transactions still open.
    """
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"SELECT {_COLUMNS} FROM outbox_commits c "
        "JOIN LATERAL (SELECT * FROM outbox o WHERE o.tenant_id = c.tenant_id "
        "AND o.xid = c.xid AND o.published_at IS NULL AND o.parked_at IS NULL "
        f"AND {SHARD} %% %(n)s = ANY(%(shards)s)) o ON true "
        "JOIN tenants t ON t.id = o.tenant_id ORDER BY c.seq, o.id LIMIT %(limit)s",
        {"n": shard_count, "shards": shards, "limit": limit},
    )
    return [to_row(row) for row in await cursor.fetchall()]


async def mark_published(conn: AsyncConnection, rows: list[EventRow]) -> None:
    """Record that Kafka acknowledged these rows; forget the commits left with none waiting.

    Two statements, each committed on its own (autocommit): of two relays publishing the
    rows of one commit at once, the later DELETE sees the other's UPDATE. A crash between
    them leaves a commit row to ``sweep_commits``.
    """
    tenants, ids = [r.tenant_id for r in rows], [r.id for r in rows]
    xids = [str(r.xid) for r in rows]
    await conn.execute(
        "UPDATE outbox SET published_at = now() FROM unnest(%s::bigint[], %s::bigint[]) "
        "AS k(tenant_id, id) WHERE outbox.tenant_id = k.tenant_id AND outbox.id = k.id",
        (tenants, ids),
    )
    await conn.execute(
        "DELETE FROM outbox_commits c USING unnest(%s::bigint[], %s::text[]) AS k(tenant_id, xid) "
        "WHERE c.tenant_id = k.tenant_id AND c.xid = k.xid::xid8 AND NOT EXISTS ("
        "SELECT 1 FROM outbox o WHERE o.tenant_id = c.tenant_id AND o.xid = c.xid "
        "AND o.published_at IS NULL)",
        (tenants, xids),
    )


async def sweep_commits(conn: AsyncConnection) -> int:
    """Forget the commits older than the oldest one with an event still waiting.

    What the relay leaves (a crash between publishing a commit's rows and forgetting it)
    and, without a relay, the commits of pruned events. A walk from the oldest commit
    that stops at the first one still waiting: each run reads about what it deletes.
    """
    cursor = await conn.execute(
        "WITH waiting AS (SELECT c.seq FROM outbox_commits c WHERE EXISTS (SELECT 1 "
        "FROM outbox o WHERE o.tenant_id = c.tenant_id AND o.xid = c.xid "
        "AND o.published_at IS NULL) ORDER BY c.seq LIMIT 1) "
        "DELETE FROM outbox_commits WHERE seq < coalesce((SELECT seq FROM waiting), "
        "9223372036854775807)"
    )
    return cursor.rowcount


async def park(conn: AsyncConnection, row: EventRow, reason: str) -> None:
    """Set ``row`` aside: Kafka refused it for good, and the events behind it must not wait."""
    await conn.execute(
        "UPDATE outbox SET parked_at = now(), parked_reason = %s "
        "WHERE tenant_id = %s AND id = %s AND published_at IS NULL",
        (reason[:1000], row.tenant_id, row.id),
    )


class Backlog(NamedTuple):
    """Unpublished events: waiting for the relay, the oldest one's age, and parked ones."""

    waiting: int
    oldest_age_seconds: float
    parked: int


async def backlog(conn: AsyncConnection) -> Backlog:
    """The outbox's unpublished events, parked ones counted apart."""
    cursor = await conn.execute(
        "SELECT count(*) FILTER (WHERE parked_at IS NULL), "
        "coalesce(extract(epoch FROM now() - min(occurred_at) FILTER (WHERE parked_at IS NULL)), "
        "0), count(*) FILTER (WHERE parked_at IS NOT NULL) "
        "FROM outbox WHERE published_at IS NULL"
    )
    row = await cursor.fetchone()
    return Backlog(int(row[0]), float(row[1]), int(row[2])) if row else Backlog(0, 0.0, 0)


async def prune(
    conn: AsyncConnection, *, retention_hours: float, limit: int, published_only: bool
) -> int:
    """Delete up to ``limit`` events older than the retention; remember the newest per tenant.

    With a relay running (``published_only``) an event Kafka has not acknowledged is kept
    whatever its age: Kafka away for longer than the retention loses nothing. Without a
    relay nothing is ever published and the feed is the only reader: age alone decides.
    """
    cursor = await conn.execute(
        "WITH gone AS (DELETE FROM outbox WHERE (tenant_id, id) IN ("
        "  SELECT tenant_id, id FROM outbox "
        "  WHERE occurred_at < now() - make_interval(secs => %(secs)s) "
        "  AND (published_at IS NOT NULL OR NOT %(published_only)s) LIMIT %(limit)s) "
        "  RETURNING tenant_id, xid, id), "
        "newest AS (SELECT DISTINCT ON (tenant_id) tenant_id, xid, id FROM gone "
        "  ORDER BY tenant_id, xid DESC, id DESC), "
        "marked AS (INSERT INTO outbox_pruned AS p (tenant_id, xid, id) "
        "  SELECT tenant_id, xid, id FROM newest ON CONFLICT (tenant_id) DO UPDATE "
        "  SET xid = excluded.xid, id = excluded.id, pruned_at = now() "
        "  WHERE (excluded.xid, excluded.id) > (p.xid, p.id)) "
        "SELECT count(*) FROM gone",
        {"secs": retention_hours * 3600, "limit": limit, "published_only": published_only},
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0


class ParkedEvent(NamedTuple):
    """An event set aside by the relay, and why."""

    tenant: str
    event_id: str
    type: str
    subject: str
    occurred_at: datetime
    parked_at: datetime
    reason: str


# The two operator commands below run from the CLI, on its synchronous admin session.
def parked(conn: psycopg.Connection[Any], *, limit: int = 1000) -> list[ParkedEvent]:
    """Parked events, oldest first."""
    cursor = conn.execute(
        "SELECT t.code, o.event_id::text, o.type, o.subject, o.occurred_at, o.parked_at, "
        "o.parked_reason FROM outbox o JOIN tenants t ON t.id = o.tenant_id "
        "WHERE o.published_at IS NULL AND o.parked_at IS NOT NULL "
        "ORDER BY o.xid, o.id LIMIT %s",
        (limit,),
    )
    return [ParkedEvent(*row) for row in cursor.fetchall()]


def requeue(conn: psycopg.Connection[Any], event_ids: list[uuid.UUID] | None) -> int:
    """Give parked events (all of them with ``None``) back to the relay; how many."""
    cursor = conn.execute(
        "UPDATE outbox SET parked_at = NULL, parked_reason = NULL "
        "WHERE published_at IS NULL AND parked_at IS NOT NULL "
        "AND (%(all)s OR event_id = ANY(%(ids)s::uuid[]))",
        {"all": event_ids is None, "ids": event_ids or []},
    )
    return cursor.rowcount
