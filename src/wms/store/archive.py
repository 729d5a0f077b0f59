"""SQL of archival: which months are old, exporting them, folding the ledger into openings.

The connection is the admin login (a member of ``wms_owner`` and ``wms_admin``). Reads
and row deletes run as ``wms_admin`` (BYPASSRLS: archival spans every tenant); locking
and dropping a ledger partition run as ``wms_owner``, who owns it.

Months are calendar months in UTC. A ledger month is its partition (named
``inventory_movements_yYYYYmMM`` by ``ensure_movement_partitions``) plus any rows of that
month in the default partition. ``audit_log`` and ``outbox`` are not partitioned: their
rows of the month are deleted in the same transaction that verified their export.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg import sql

from wms.store.roles import ADMIN, OWNER, SCHEMA

LEDGER = "inventory_movements"
DEFAULT_PARTITION = "inventory_movements_default"
KEY_COLUMNS = ("tenant_id", "warehouse_id", "location_id", "product_id", "lot_code", "status")
# Export order is the primary key, so an export of the same rows is byte-identical.
TABLES = ("inventory_movements", "audit_log", "outbox")
_PARTITION_NAME = re.compile(r"^inventory_movements_y(\d{4})m(\d{2})$")

LedgerKey = tuple[int, int, int, int, str, str]


@dataclass(frozen=True)
class Month:
    """One calendar month (UTC): ``start`` inclusive, ``end`` exclusive."""

    start: date

    @property
    def end(self) -> date:
        """First day of the next month."""
        year, month = divmod(self.start.month, 12)
        return date(self.start.year + year, month + 1, 1)

    @property
    def label(self) -> str:
        """``2026-03``."""
        return f"{self.start:%Y-%m}"

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM`` → Month; ValueError otherwise."""
        match = re.fullmatch(r"(\d{4})-(\d{2})", text)
        if not match or not 1 <= int(match[2]) <= 12:
            raise ValueError(f"{text!r} is not a month (YYYY-MM)")
        return cls(date(int(match[1]), int(match[2]), 1))


def set_role(conn: psycopg.Connection[Any], role: str) -> None:
    """``SET LOCAL ROLE`` for the rest of the transaction."""
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))


def ledger_partitions(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Monthly ledger partitions by month label (``2026-03`` → partition name)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        (f"{SCHEMA}.{LEDGER}",),
    ).fetchall()
    partitions: dict[str, str] = {}
    for (name,) in rows:
        match = _PARTITION_NAME.match(str(name))
        if match:
            partitions[f"{match[1]}-{match[2]}"] = str(name)
    return partitions


def months_before(conn: psycopg.Connection[Any], cutoff: date) -> list[Month]:
    """Months entirely before ``cutoff`` that still hold ledger, audit or outbox rows."""
    labels = {label for label in ledger_partitions(conn) if Month.parse(label).end <= cutoff}
    rows = conn.execute(
        sql.SQL(
            "SELECT DISTINCT to_char(date_trunc('month', occurred_at AT TIME ZONE 'UTC'), "
            "'YYYY-MM') FROM (SELECT occurred_at FROM {default} WHERE occurred_at < %(cut)s "
            "UNION ALL SELECT occurred_at FROM {audit} WHERE occurred_at < %(cut)s "
            "UNION ALL SELECT occurred_at FROM {outbox} WHERE occurred_at < %(cut)s) old"
        ).format(
            default=sql.Identifier(SCHEMA, DEFAULT_PARTITION),
            audit=sql.Identifier(SCHEMA, "audit_log"),
            outbox=sql.Identifier(SCHEMA, "outbox"),
        ),
        {"cut": _utc(cutoff)},
    ).fetchall()
    labels.update(str(row[0]) for row in rows)
    return [Month.parse(label) for label in sorted(labels)]


def _utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def month_source(conn: psycopg.Connection[Any], table: str, month: Month) -> sql.Composed:
    """A SELECT of ``table``'s rows of ``month`` (the ledger: partition + default rows)."""
    start, end = sql.Literal(_utc(month.start)), sql.Literal(_utc(month.end))
    if table == LEDGER:
        parts = [
            sql.SQL("SELECT * FROM {} WHERE occurred_at >= {} AND occurred_at < {}").format(
                sql.Identifier(SCHEMA, DEFAULT_PARTITION), start, end
            )
        ]
        partition = ledger_partitions(conn).get(month.label)
        if partition is not None:
            parts.insert(0, sql.SQL("SELECT * FROM {}").format(sql.Identifier(SCHEMA, partition)))
        return sql.SQL(" UNION ALL ").join(parts)
    return sql.SQL("SELECT * FROM {} WHERE occurred_at >= {} AND occurred_at < {}").format(
        sql.Identifier(SCHEMA, table), start, end
    )


def count_rows(conn: psycopg.Connection[Any], table: str, month: Month) -> int:
    """How many rows of ``table`` belong to ``month``."""
    query = sql.SQL("SELECT count(*) FROM ({}) m").format(month_source(conn, table, month))
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def unpublished_events(conn: psycopg.Connection[Any], month: Month) -> int:
    """How many of ``month``'s events Kafka has not acknowledged (parked ones included)."""
    row = conn.execute(
        "SELECT count(*) FROM wms.outbox WHERE occurred_at >= %s AND occurred_at < %s "
        "AND published_at IS NULL",
        (_utc(month.start), _utc(month.end)),
    ).fetchone()
    return int(row[0]) if row else 0


def columns(conn: psycopg.Connection[Any], table: str) -> list[tuple[str, str]]:
    """(name, SQL type) of ``table``'s columns, in order: kept with the export."""
    rows = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        (f"{SCHEMA}.{table}",),
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def export_csv(conn: psycopg.Connection[Any], table: str, month: Month) -> Iterator[bytes]:
    """The month's rows of ``table`` as CSV with a header, ordered by primary key."""
    query = sql.SQL(
        "COPY (SELECT * FROM ({}) m ORDER BY tenant_id, id) TO STDOUT "
        "WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')"
    ).format(month_source(conn, table, month))
    with conn.cursor() as cursor, cursor.copy(query) as copy:
        for chunk in copy:
            yield bytes(chunk)


def ledger_sums(conn: psycopg.Connection[Any], month: Month) -> dict[LedgerKey, int]:
    """Sum of the month's movements per balance key."""
    keys = sql.SQL(", ").join(sql.Identifier(c) for c in KEY_COLUMNS)
    rows = conn.execute(
        sql.SQL("SELECT {keys}, sum(quantity) FROM ({src}) m GROUP BY {keys}").format(
            keys=keys, src=month_source(conn, LEDGER, month)
        )
    ).fetchall()
    return {
        (int(r[0]), int(r[1]), int(r[2]), int(r[3]), str(r[4]), str(r[5])): int(r[6]) for r in rows
    }


def fold_into_openings(conn: psycopg.Connection[Any], month: Month, as_of: datetime) -> int:
    """Add the month's per-key sums to the opening snapshots (as wms_admin); keys touched.

    One INSERT ... SELECT in the archival snapshot: the same rows whose sums were just
    checked against the export.
    """
    keys = sql.SQL(", ").join(sql.Identifier(c) for c in KEY_COLUMNS)
    cursor = conn.execute(
        sql.SQL(
            "INSERT INTO {openings} AS o ({keys}, quantity, as_of) "
            "SELECT {keys}, sum(quantity), %(as_of)s FROM ({src}) m GROUP BY {keys} "
            "ON CONFLICT ({keys}) DO UPDATE SET quantity = o.quantity + excluded.quantity, "
            "as_of = greatest(o.as_of, excluded.as_of)"
        ).format(
            openings=sql.Identifier(SCHEMA, "inventory_openings"),
            keys=keys,
            src=month_source(conn, LEDGER, month),
        ),
        {"as_of": as_of},
    )
    return cursor.rowcount


def remove_month(conn: psycopg.Connection[Any], month: Month, partition: str | None) -> None:
    """Drop the ledger partition, delete the month's other rows (exported, in the snapshot)."""
    start, end = _utc(month.start), _utc(month.end)
    if partition is not None:
        set_role(conn, OWNER)
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(SCHEMA, partition)))
        set_role(conn, ADMIN)
    # Through the parent, where wms_admin may DELETE; only the default partition's rows
    # (a neighbouring partition's bounds may overlap the UTC month by the server's offset).
    conn.execute(
        "DELETE FROM wms.inventory_movements WHERE occurred_at >= %s AND occurred_at < %s "
        "AND tableoid = 'wms.inventory_movements_default'::regclass",
        (start, end),
    )
    conn.execute(
        "DELETE FROM wms.audit_log WHERE occurred_at >= %s AND occurred_at < %s", (start, end)
    )
    # As the worker's prune does: remember the newest removed event per tenant, so a
    # feed cursor from before it is answered 410 rather than silently skipping events.
    conn.execute(
        "WITH gone AS (DELETE FROM wms.outbox WHERE occurred_at >= %s AND occurred_at < %s "
        "  RETURNING tenant_id, xid, id), "
        "newest AS (SELECT DISTINCT ON (tenant_id) tenant_id, xid, id FROM gone "
        "  ORDER BY tenant_id, xid DESC, id DESC) "
        "INSERT INTO wms.outbox_pruned AS p (tenant_id, xid, id) "
        "SELECT tenant_id, xid, id FROM newest ON CONFLICT (tenant_id) DO UPDATE "
        "SET xid = excluded.xid, id = excluded.id, pruned_at = now() "
        "WHERE (excluded.xid, excluded.id) > (p.xid, p.id)",
        (start, end),
    )
