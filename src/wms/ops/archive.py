"""Archival of months older than a retention: export, verify, then remove in one transaction.

For each old month (oldest first), one REPEATABLE READ transaction:

1. SHARE-locks the month's ledger partition (nothing can be added while it is read);
2. exports the month's ``inventory_movements``, ``audit_log`` and ``outbox`` rows as
   gzip-compressed CSV, each with the SHA-256 of the file and of its content;
3. verifies each export by reading it back (rows, content hash, and for the ledger the
   sum per balance key against the database), writes it and a ``manifest.json`` to the
   destination (``<dest>/<YYYY-MM>/``) and verifies the stored copies' checksums;
4. adds the month's per-key sums to ``inventory_openings`` and drops the partition and
   deletes the other rows, in that same transaction, so ``opening + ledger = balance``
   holds for every key before and after the commit.

Where the relay publishes events to Kafka (``keep_unpublished``), a month holding an
event Kafka has not acknowledged is refused before anything is exported: removing it
would lose it for Kafka's consumers, the retention's rule (``outbox_sql.prune``) too.

If anything fails the transaction rolls back and the month stays in the database; files
already written are replaced by the next run only when they hold the very same rows.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from wms.ops.backup import schema_version_of
from wms.ops.storage import StorageError, Store, sha256_of
from wms.store import archive as archive_sql
from wms.store.archive import LEDGER, TABLES, LedgerKey, Month
from wms.store.roles import ADMIN, OWNER, SCHEMA

FORMAT = "wms-archive/1"
MANIFEST = "manifest.json"
DEFAULT_RETENTION_MONTHS = 13
# A hundred years: anything longer archives nothing and only risks dates before year 1.
MAX_RETENTION_MONTHS = 1200
LOCK_TIMEOUT_MS = 5000
# Any constant every archiver agrees on; spells "wmsarch".
ADVISORY_LOCK_KEY = 0x776D7361726368
_SQL_TYPE = re.compile(r"^[a-z][a-z0-9 _]*(\([0-9, ]+\))?(\[\])*$")


class ArchiveError(RuntimeError):
    """Archival or an archive restore failed or was refused; one line says why."""


@dataclass
class MonthPlan:
    """What archiving one month would remove."""

    month: Month
    partition: str | None
    rows: dict[str, int]
    unpublished: int


@dataclass
class ArchivedMonth:
    """One month archived."""

    month: Month
    location: str
    rows: dict[str, int]
    bytes: int
    seconds: float
    partition: str | None
    opening_keys: int


@dataclass
class _Export:
    table: str
    path: Path
    rows: int
    content_sha256: str
    columns: list[tuple[str, str]]
    sha256: str = ""
    sums: dict[LedgerKey, int] = field(default_factory=dict)


def cutoff_for(retention_months: int, today: date | None = None) -> date:
    """First day of the month ``retention_months`` before this one (UTC): older goes."""
    if not 1 <= retention_months <= MAX_RETENTION_MONTHS:
        raise ArchiveError(f"the retention must be 1 to {MAX_RETENTION_MONTHS} months")
    today = today or datetime.now(UTC).date()
    index = today.year * 12 + (today.month - 1) - retention_months
    return date(index // 12, index % 12 + 1, 1)


def _first_line(exc: psycopg.Error) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, connect_timeout=10)


def plan(url: str, cutoff: date) -> list[MonthPlan]:
    """The months before ``cutoff`` and their row counts (reads only)."""
    with _connect(url) as conn, conn.transaction():
        archive_sql.set_role(conn, ADMIN)
        partitions = archive_sql.ledger_partitions(conn)
        return [
            MonthPlan(
                month,
                partitions.get(month.label),
                {t: archive_sql.count_rows(conn, t, month) for t in TABLES},
                archive_sql.unpublished_events(conn, month),
            )
            for month in archive_sql.months_before(conn, cutoff)
        ]


def _export(conn: psycopg.Connection[Any], table: str, month: Month, folder: Path) -> _Export:
    path = folder / f"{table}.csv.gz"
    content = hashlib.sha256()
    # mtime=0: the same rows give the same file, byte for byte.
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        for chunk in archive_sql.export_csv(conn, table, month):
            content.update(chunk)
            out.write(chunk)
    return _Export(
        table=table,
        path=path,
        rows=archive_sql.count_rows(conn, table, month),
        content_sha256=content.hexdigest(),
        columns=archive_sql.columns(conn, table),
    )


def _read_back(export: _Export) -> tuple[int, str, dict[LedgerKey, int]]:
    """Rows, content hash and (for the ledger) per-key sums, read from the file itself."""
    content = hashlib.sha256()
    with gzip.open(export.path, "rb") as compressed:
        while chunk := compressed.read(1 << 20):
            content.update(chunk)
    sums: dict[LedgerKey, int] = defaultdict(int)
    rows = 0
    with gzip.open(export.path, "rt", encoding="utf-8", newline="") as text:
        reader = csv.reader(text)
        header = next(reader, [])
        if header != [name for name, _ in export.columns]:
            raise ArchiveError(f"{export.table}: the export's header does not match the table")
        index = {name: i for i, name in enumerate(header)}
        for record in reader:
            rows += 1
            if export.table == LEDGER:
                key = (
                    int(record[index["tenant_id"]]), int(record[index["warehouse_id"]]),
                    int(record[index["location_id"]]), int(record[index["product_id"]]),
                    record[index["lot_code"]], record[index["status"]],
                )  # fmt: skip
                sums[key] += int(record[index["quantity"]])
    return rows, content.hexdigest(), dict(sums)


def _without_zeros(sums: dict[LedgerKey, int]) -> dict[LedgerKey, int]:
    """The sums without keys that net to zero (stock in and out again in the month), which
    one side of the check may list and the other not."""
    return {key: total for key, total in sums.items() if total}


def _verify(export: _Export, expected_sums: dict[LedgerKey, int] | None) -> None:
    rows, content, sums = _read_back(export)
    if rows != export.rows or content != export.content_sha256:
        raise ArchiveError(
            f"{export.table}: the export reads back as {rows} rows (expected {export.rows}) "
            f"or with another content hash; nothing was removed"
        )
    if expected_sums is not None and _without_zeros(sums) != _without_zeros(expected_sums):
        raise ArchiveError(f"{export.table}: per-key sums of the export differ from the database")


def _manifest(
    month: Month, exports: list[_Export], partition: str | None, schema_version: str | None
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "month": month.label,
        "range": [month.start.isoformat(), month.end.isoformat()],
        "opening_as_of": _midnight(month.end).isoformat(),
        "ledger_partition": partition,
        "schema_version": schema_version,
        "archived_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "tables": {
            e.table: {
                "file": e.path.name,
                "rows": e.rows,
                "bytes": e.path.stat().st_size,
                "sha256": e.sha256,
                "content_sha256": e.content_sha256,
                "columns": [list(column) for column in e.columns],
            }
            for e in exports
        },
    }


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def read_month_manifest(store: Store, month: Month) -> dict[str, Any]:
    """The manifest of an archived month at ``store``."""
    where = f"{store.describe()}/{month.label}"
    try:
        data = json.loads(store.read_text(f"{month.label}/{MANIFEST}"))
    except StorageError as exc:
        raise ArchiveError(f"no archive of {month.label}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ArchiveError(f"{where}/{MANIFEST} is not JSON ({exc.msg})") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != FORMAT
        or not isinstance(data.get("tables"), dict)
    ):
        raise ArchiveError(f"{where}/{MANIFEST} is not a {FORMAT} manifest")
    return data


def _check_replaceable(store: Store, month: Month, exports: list[_Export]) -> None:
    """An earlier run's files may be replaced only when they hold the same rows."""
    if not store.exists(f"{month.label}/{MANIFEST}"):
        return
    earlier = read_month_manifest(store, month)["tables"]
    for export in exports:
        if earlier.get(export.table, {}).get("content_sha256") != export.content_sha256:
            raise ArchiveError(
                f"{store.describe()}/{month.label} already holds an archive of other rows of "
                f"{export.table}; move it aside before archiving {month.label} again"
            )


def _store_and_check(store: Store, month: Month, exports: list[_Export], folder: Path) -> None:
    for export in exports:
        store.put(export.path, f"{month.label}/{export.path.name}")
        copy = folder / f"stored-{export.path.name}"
        store.get(f"{month.label}/{export.path.name}", copy)
        if sha256_of(copy) != export.sha256:
            raise ArchiveError(f"the stored copy of {month.label}/{export.path.name} differs")
        copy.unlink()


def archive_month(
    url: str,
    store: Store,
    month: Month,
    *,
    keep_unpublished: bool,
    work_dir: Path | None = None,
) -> ArchivedMonth:
    """Export, verify and remove one month (see the module docstring)."""
    started = time.monotonic()
    with _connect(url) as planner, planner.transaction():
        archive_sql.set_role(planner, ADMIN)
        partition = archive_sql.ledger_partitions(planner).get(month.label)
        schema_version = schema_version_of(planner)
    with (
        tempfile.TemporaryDirectory(prefix="wms-archive-", dir=work_dir) as tmp,
        _connect(url) as conn,
    ):
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
            conn.execute("SET LOCAL statement_timeout = 0")
            if partition is not None:
                # Before any query, so the snapshot is taken after the lock.
                archive_sql.set_role(conn, OWNER)
                conn.execute(
                    sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(SCHEMA, partition))
                )
            archive_sql.set_role(conn, ADMIN)
            if archive_sql.ledger_partitions(conn).get(month.label) != partition:
                raise ArchiveError(f"the ledger partition of {month.label} changed meanwhile")
            if keep_unpublished and (waiting := archive_sql.unpublished_events(conn, month)):
                raise ArchiveError(
                    f"{month.label}: {waiting} event(s) of that month are not yet published to "
                    "Kafka (`wms-server events parked` lists parked ones); nothing of that "
                    "month was removed. Publish them, or archive them anyway with "
                    "--include-unpublished"
                )
            folder = Path(tmp)
            exports = [_export(conn, table, month, folder) for table in TABLES]
            sums = archive_sql.ledger_sums(conn, month)
            for export in exports:
                _verify(export, sums if export.table == LEDGER else None)
                export.sha256 = sha256_of(export.path)
            _check_replaceable(store, month, exports)
            _store_and_check(store, month, exports, folder)
            manifest_path = folder / MANIFEST
            manifest_path.write_text(
                json.dumps(_manifest(month, exports, partition, schema_version), indent=2) + "\n",
                encoding="utf-8",
            )
            store.put(manifest_path, f"{month.label}/{MANIFEST}")
            read_month_manifest(store, month)
            archive_sql.fold_into_openings(conn, month, _midnight(month.end))
            archive_sql.remove_month(conn, month, partition)
        size = sum(e.path.stat().st_size for e in exports)
    return ArchivedMonth(
        month=month,
        location=f"{store.describe()}/{month.label}",
        rows={e.table: e.rows for e in exports},
        bytes=size,
        seconds=round(time.monotonic() - started, 2),
        partition=partition,
        opening_keys=len(sums),
    )


def archive(
    url: str,
    store: Store,
    cutoff: date,
    *,
    keep_unpublished: bool,
    work_dir: Path | None = None,
) -> list[ArchivedMonth]:
    """Archive every month before ``cutoff``, oldest first; stop at the first failure.

    ``keep_unpublished``: refuse a month holding events Kafka has not acknowledged.
    """
    with _connect(url) as lock:
        row = lock.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()
        if not (row and row[0]):
            raise ArchiveError("another archive run holds the lock; try again when it ends")
        done: list[ArchivedMonth] = []
        for month_plan in plan(url, cutoff):
            try:
                done.append(
                    archive_month(
                        url,
                        store,
                        month_plan.month,
                        keep_unpublished=keep_unpublished,
                        work_dir=work_dir,
                    )
                )
            except psycopg.errors.LockNotAvailable:
                raise ArchiveError(
                    f"{month_plan.month.label}: the ledger stayed locked by other sessions for "
                    f"over {LOCK_TIMEOUT_MS} ms; nothing of that month was removed, run again"
                ) from None
            except psycopg.Error as exc:
                raise ArchiveError(
                    f"{month_plan.month.label}: {_first_line(exc)}; nothing of that month was "
                    "removed"
                ) from None
        return done


def _file_name(store: Store, month: Month, entry: Any) -> str:
    """The manifest entry's file: a plain name inside the month's folder, nothing else."""
    name = entry.get("file") if isinstance(entry, dict) else None
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
        raise ArchiveError(
            f"{store.describe()}/{month.label}/{MANIFEST} names the file {name!r}, which is not "
            f"a file of that folder; refusing to read it"
        )
    return name


def restore_month(
    url: str, store: Store, month: Month, schema: str | None = None
) -> dict[str, int]:
    """Load an archived month into tables of a new schema (for an audit); rows per table."""
    schema = schema or f"archive_{month.start:%Y_%m}"
    manifest = read_month_manifest(store, month)
    tables: dict[str, Any] = manifest["tables"]
    with tempfile.TemporaryDirectory(prefix="wms-archive-restore-") as tmp:
        files: dict[str, Path] = {}
        for table, entry in tables.items():
            name = _file_name(store, month, entry)
            path = Path(tmp) / name
            store.get(f"{month.label}/{name}", path)
            if sha256_of(path) != entry["sha256"]:
                raise ArchiveError(
                    f"{store.describe()}/{month.label}/{name} does not match its "
                    f"manifest: damaged or altered; refusing to load it"
                )
            files[table] = path
        try:
            return _load(url, schema, tables, files)
        except psycopg.Error as exc:
            raise ArchiveError(
                f"{month.label} was not restored into {schema}: {_first_line(exc)}"
            ) from None


def _load(url: str, schema: str, tables: dict[str, Any], files: dict[str, Path]) -> dict[str, int]:
    """Create ``schema``, its tables and their rows in one transaction; rows per table."""
    counts: dict[str, int] = {}
    with psycopg.connect(url, connect_timeout=10) as conn, conn.transaction():
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if exists:
            raise ArchiveError(f"schema {schema} already exists; choose another --schema")
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for table, entry in tables.items():
            definitions = []
            for name, kind in entry["columns"]:
                if not _SQL_TYPE.match(str(kind)):
                    raise ArchiveError(f"{table}.{name}: unexpected column type {kind!r}")
                definitions.append(
                    sql.SQL("{} {}").format(sql.Identifier(str(name)), sql.SQL(str(kind)))
                )
            target = sql.Identifier(schema, table)
            conn.execute(
                sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(definitions))
            )
            copy_sql = sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv, HEADER true)").format(target)
            with (
                conn.cursor() as cursor,
                cursor.copy(copy_sql) as copy,
                gzip.open(files[table], "rb") as data,
            ):
                while chunk := data.read(1 << 20):
                    copy.write(chunk)
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()
            counts[table] = int(row[0]) if row else 0
            if counts[table] != entry["rows"]:
                raise ArchiveError(
                    f"{table}: {counts[table]} rows loaded, the manifest says {entry['rows']}"
                )
    return counts
