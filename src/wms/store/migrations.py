"""Flyway-compatible migrations: the same files, history table and checksums as Flyway.

``wms-server migrate`` and Flyway may be used on the same database one after the other
(they take different locks, so never both at once), also after ``flyway baseline``. Each
file runs in its own transaction under a session advisory lock, as the ``wms_owner``
role, with ``lock_timeout`` and ``statement_timeout`` set.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import psycopg
import structlog
from psycopg import sql

from wms.store import roles

log = structlog.get_logger(__name__)

SCHEMA = "wms"
HISTORY_TABLE = "flyway_schema_history"
# Any constant works as long as every migrator agrees; this one spells "wmsmigr".
ADVISORY_LOCK_KEY = 0x776D736D696772
# Expand/contract (DESIGN §6.5): this build runs on any schema at least this version, so
# during a rolling deploy old pods keep serving after the new release has migrated. It
# is the newest migration whose tables or columns this build's code uses: V18's
# cancellations, V17's location walk versions, V16's commit order (the relay), V15's
# cancelled putaway tasks, V14's parked events. It said "1" until then, which no build
# since V2 could honour.
MINIMUM_SCHEMA_VERSION = "18"
_VERSION = r"\d+(?:[._]\d+)*"
_FILE_NAME = re.compile(rf"^V(?P<version>{_VERSION})__(?P<description>[^.]+)\.sql$")
# The history row `flyway baseline` writes: everything up to its version counts as applied.
BASELINE_TYPE = "BASELINE"


class MigrationError(RuntimeError):
    """A migration could not be applied, or the applied history disagrees with the files."""


@dataclass(frozen=True)
class Migration:
    """One versioned SQL file."""

    version: str
    description: str
    script: str
    checksum: int
    sql: str

    @property
    def version_key(self) -> tuple[int, ...]:
        """Version as integers, for ordering (``1.10`` after ``1.9``)."""
        return parse_version(self.version)


@dataclass(frozen=True)
class AppliedMigration:
    """A row of ``flyway_schema_history``."""

    installed_rank: int
    version: str | None
    type: str
    script: str
    checksum: int | None
    success: bool


def parse_version(version: str) -> tuple[int, ...]:
    """``"1.2"`` → ``(1, 2)``; trailing zeros dropped, so ``1.0`` and ``1`` are one version.

    ValueError for anything but digits separated by ``.`` or ``_``.
    """
    if not re.fullmatch(_VERSION, version, flags=re.ASCII):
        raise ValueError(f"{version!r} is not a migration version")
    parts = [int(part) for part in re.split(r"[._]", version)]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def flyway_checksum(content: bytes) -> int:
    """Flyway's checksum of a SQL file: CRC32 over each line's UTF-8 bytes, signed 32-bit.

    Lines split only on CR LF, CR and LF (as Java's ``BufferedReader.readLine``), without
    their terminators; a leading byte-order mark is dropped; a final terminator does not
    start another line.
    """
    text = content.decode("utf-8")
    text = text.removeprefix("\ufeff")
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    crc = 0
    for line in lines:
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc - (1 << 32) if crc >= (1 << 31) else crc


def default_migrations_dir() -> Path:
    """Where the SQL files are: inside the installed wheel, else the source checkout."""
    packaged = Path(str(resources.files("wms"))) / "migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "migrations"


def load_migrations(folder: Path | None = None) -> list[Migration]:
    """Every ``V<version>__<description>.sql`` in ``folder``, in version order."""
    folder = folder or default_migrations_dir()
    migrations: list[Migration] = []
    for path in sorted(folder.iterdir()):
        if path.suffix != ".sql":
            continue
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: not a Flyway versioned migration name")
        content = path.read_bytes()
        migrations.append(
            Migration(
                version=match["version"].replace("_", "."),
                description=match["description"].replace("_", " "),
                script=path.name,
                checksum=flyway_checksum(content),
                sql=content.decode("utf-8").removeprefix("\ufeff"),
            )
        )
    migrations.sort(key=lambda m: m.version_key)
    seen: dict[tuple[int, ...], str] = {}
    for migration in migrations:
        if migration.version_key in seen:
            raise MigrationError(
                f"version {migration.version} is used twice: {seen[migration.version_key]} "
                f"and {migration.script}"
            )
        seen[migration.version_key] = migration.script
    return migrations


def highest_version(versions: list[str]) -> str | None:
    """The greatest of Flyway version strings, or None."""
    return max(versions, key=parse_version) if versions else None


class Migrator:
    """Applies pending migrations to one database."""

    def __init__(
        self,
        url: str,
        *,
        folder: Path | None = None,
        statement_timeout_ms: int = 600_000,
        lock_timeout_ms: int = 10_000,
        lock_wait_seconds: float = 120.0,
    ) -> None:
        self.url = url
        self.migrations = load_migrations(folder)
        self.statement_timeout_ms = statement_timeout_ms
        self.lock_timeout_ms = lock_timeout_ms
        self.lock_wait_seconds = lock_wait_seconds

    def migrate(
        self, *, then: Callable[[psycopg.Connection], object] | None = None
    ) -> list[Migration]:
        """Apply what is pending; return the migrations applied by this call.

        ``then`` runs on the (autocommit) connection before the lock is released, so
        concurrent migrators do it one after the other too.
        """
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            self._acquire_lock(conn)
            try:
                roles.ensure_roles(conn)
                self._ensure_schema_and_history(conn)
                pending = self._pending(conn)
                for migration in pending:
                    self._apply(conn, migration)
                if then is not None:
                    then(conn)
                return pending
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))

    def _acquire_lock(self, conn: psycopg.Connection) -> None:
        deadline = time.monotonic() + self.lock_wait_seconds
        while True:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,)).fetchone()
            if row and row[0]:
                return
            if time.monotonic() > deadline:
                raise MigrationError(
                    f"another migration held the lock for over {self.lock_wait_seconds:.0f} s"
                )
            time.sleep(0.2)

    def _ensure_schema_and_history(self, conn: psycopg.Connection) -> None:
        with conn.transaction():
            conn.execute(f"SET LOCAL ROLE {roles.OWNER}")
            conn.execute(
                sql.SQL(
                    """
                    CREATE TABLE IF NOT EXISTS {schema}.{table} (
                        installed_rank integer NOT NULL,
                        version varchar(50),
                        description varchar(200) NOT NULL,
                        type varchar(20) NOT NULL,
                        script varchar(1000) NOT NULL,
                        checksum integer,
                        installed_by varchar(100) NOT NULL,
                        installed_on timestamp NOT NULL DEFAULT now(),
                        execution_time integer NOT NULL,
                        success boolean NOT NULL,
                        CONSTRAINT {pk} PRIMARY KEY (installed_rank)
                    )
                    """
                ).format(
                    schema=sql.Identifier(SCHEMA),
                    table=sql.Identifier(HISTORY_TABLE),
                    pk=sql.Identifier(f"{HISTORY_TABLE}_pk"),
                )
            )
            conn.execute(
                sql.SQL("CREATE INDEX IF NOT EXISTS {idx} ON {schema}.{table} (success)").format(
                    idx=sql.Identifier(f"{HISTORY_TABLE}_s_idx"),
                    schema=sql.Identifier(SCHEMA),
                    table=sql.Identifier(HISTORY_TABLE),
                )
            )

    def _applied(self, conn: psycopg.Connection) -> list[AppliedMigration]:
        rows = conn.execute(
            sql.SQL(
                "SELECT installed_rank, version, type, script, checksum, success "
                "FROM {schema}.{table} ORDER BY installed_rank"
            ).format(schema=sql.Identifier(SCHEMA), table=sql.Identifier(HISTORY_TABLE))
        ).fetchall()
        return [AppliedMigration(*row) for row in rows]

    def _pending(self, conn: psycopg.Connection) -> list[Migration]:
        applied = [row for row in self._applied(conn) if row.version is not None]
        failed = [row for row in applied if not row.success]
        if failed:
            raise MigrationError(
                f"{failed[0].script} failed earlier and is recorded as failed; repair it first"
            )
        # As Flyway: files at or below a baseline are taken as applied, never run or checked.
        baseline = max(
            (
                parse_version(row.version)
                for row in applied
                if row.version and row.type == BASELINE_TYPE
            ),
            default=(),
        )
        by_version = {
            parse_version(row.version): row
            for row in applied
            if row.version and row.type != BASELINE_TYPE
        }
        pending: list[Migration] = []
        for migration in self.migrations:
            if migration.version_key <= baseline:
                continue
            row = by_version.get(migration.version_key)
            if row is None:
                pending.append(migration)
            elif row.checksum != migration.checksum:
                raise MigrationError(
                    f"{migration.script} was changed after it was applied "
                    f"(applied checksum {row.checksum}, file checksum {migration.checksum})"
                )
        newest_applied = max(by_version, default=())
        out_of_order = [m for m in pending if m.version_key < newest_applied]
        if out_of_order:
            raise MigrationError(
                f"{out_of_order[0].script} is older than the newest applied migration "
                f"and was never applied"
            )
        return pending

    def _apply(self, conn: psycopg.Connection, migration: Migration) -> None:
        started = time.monotonic()
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL ROLE {roles.OWNER}")
                conn.execute(f"SET LOCAL search_path = {SCHEMA}, public")
                conn.execute(f"SET LOCAL lock_timeout = {int(self.lock_timeout_ms)}")
                conn.execute(f"SET LOCAL statement_timeout = {int(self.statement_timeout_ms)}")
                conn.execute(migration.sql.encode())
                elapsed_ms = int((time.monotonic() - started) * 1000)
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {schema}.{table} (installed_rank, version, description, "
                        "type, script, checksum, installed_by, execution_time, success) "
                        "SELECT coalesce(max(installed_rank), 0) + 1, %s, %s, 'SQL', %s, %s, "
                        "session_user, %s, true FROM {schema}.{table}"
                    ).format(schema=sql.Identifier(SCHEMA), table=sql.Identifier(HISTORY_TABLE)),
                    (
                        migration.version,
                        migration.description,
                        migration.script,
                        migration.checksum,
                        elapsed_ms,
                    ),
                )
        except psycopg.Error as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise MigrationError(f"{migration.script} failed: {message}") from None
        log.info("migration_applied", script=migration.script, ms=elapsed_ms)
