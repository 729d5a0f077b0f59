"""The ``wms-server`` command line: serve (the default), health, migrate, worker, backup,
restore, archive, tenant and apikey administration, parked events.

Every user mistake ends in one line on stderr and a non-zero exit (2 for bad usage or
configuration), never a traceback.
"""

from __future__ import annotations

import contextlib
import http.client
import math
import signal
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import FrameType
from typing import Any, NoReturn

import click
import psycopg

from wms import __version__
from wms.config import ConfigError, Settings, load_settings
from wms.domain.errors import DomainError
from wms.domain.roles import Role
from wms.events import outbox_sql
from wms.ops import archive as archival
from wms.ops import backup as backups
from wms.ops.archive import DEFAULT_RETENTION_MONTHS, MAX_RETENTION_MONTHS, ArchiveError
from wms.ops.backup import BackupError
from wms.ops.logging import configure_logging
from wms.ops.secrets import api_key_pepper
from wms.ops.storage import LocationError, StorageError, Store, open_store
from wms.services import tenants
from wms.store.archive import Month
from wms.store.database import DatabaseUnavailableError, wait_for_database
from wms.store.embedded import EmbeddedDatabaseError, EmbeddedPostgres
from wms.store.migrations import MigrationError, Migrator
from wms.store.partitions import create_missing_partitions
from wms.store.roles import RoleSetupError
from wms.store.tenants import admin_connection

EXIT_FAILURE = 1
EXIT_USAGE = 2
# The database stores to year 294276, but psycopg reads only up to 9999-12-31 in the
# session's time zone (up to UTC+14): a later expiry would break every `apikey list`.
LATEST_EXPIRY = datetime(9999, 12, 31, tzinfo=UTC)
# PostgreSQL's identifier limit (NAMEDATALEN - 1): a longer name is silently truncated.
MAX_IDENTIFIER_BYTES = 63
_OPERATIONAL_ERRORS = (
    ArchiveError,
    BackupError,
    StorageError,
    DatabaseUnavailableError,
    EmbeddedDatabaseError,
    MigrationError,
    RoleSetupError,
)


class CommandError(Exception):
    """A command failed for a reason the user can act on."""


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[Settings]:
    """Settings pointing at a reachable database: the configured one, or the embedded one."""
    if settings.database_url is not None:
        wait_for_database(settings.database_url, settings.db_connect_timeout_seconds)
        yield settings
        return
    embedded = EmbeddedPostgres(
        settings.data_dir,
        max_connections=settings.embedded_max_connections,
        avoid_ports=frozenset({settings.port, settings.metrics_port}),
    )
    url = embedded.start()
    try:
        yield settings.model_copy(update={"database_url": url, "database_admin_url": url})
    finally:
        embedded.stop()


def migrate_database(settings: Settings) -> list[str]:
    """Apply pending migrations with the migration URL; return the scripts applied."""
    migrator = Migrator(
        settings.migration_url,
        statement_timeout_ms=settings.migration_statement_timeout_ms,
        lock_wait_seconds=settings.migration_lock_wait_seconds,
    )
    # The partitions too under the migrator's lock: two pods starting at the turn of a
    # month must not both create the new month's.
    return [migration.script for migration in migrator.migrate(then=create_missing_partitions)]


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """During start-up SIGTERM raises SystemExit, so ``finally`` blocks stop what we started."""

    def _exit(signum: int, frame: FrameType | None) -> NoReturn:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wms-server")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """WMS Enterprise server. With no command: serve."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(serve)


@cli.command()
def serve() -> None:
    """Run the HTTP API (embedded PostgreSQL when DATABASE_URL is unset)."""
    from wms.ops.server import run_server  # noqa: PLC0415 - uvicorn and the app load only to serve

    settings = load_settings()
    configure_logging(settings.log_level)
    with sigterm_exits(), database(settings) as ready_settings:
        if ready_settings.migrate_on_start:
            migrate_database(ready_settings)
        started = run_server(ready_settings)
    if not started:
        raise CommandError("the server did not start; see the log above")


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    """Refuse NaN, which every range check lets through."""
    if math.isnan(value):
        raise click.BadParameter("must be a number", ctx, param)
    return value


def _local_url(settings: Settings, path: str) -> str:
    """``path`` on this host's server: at HOST, or loopback when it listens on every address."""
    host = settings.host if settings.host not in ("", "0.0.0.0", "::") else "127.0.0.1"  # noqa: S104
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    return f"http://{host}:{settings.port}{path}"


@cli.command()
@click.option("--url", help="Liveness URL (default: /health/live at $HOST:$PORT).")
@click.option(
    "--timeout",
    type=click.FloatRange(0, 3600, min_open=True),
    default=2.0,
    show_default=True,
    callback=_finite,
    help="Seconds to wait for the answer.",
)
def health(url: str | None, timeout: float) -> None:
    """Exit 0 when the local server's /health/live answers 200 in time (Docker HEALTHCHECK)."""
    if url is None:
        url = _local_url(load_settings(), "/health/live")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own URL
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (ValueError, http.client.InvalidURL) as exc:  # no scheme, bad IPv6 literal or port
        raise click.BadParameter(str(exc), param_hint="--url") from None
    except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"unhealthy: {url} did not answer: {reason}") from None
    if status != 200:
        raise CommandError(f"unhealthy: {url} answered {status}")
    click.echo("healthy")


@cli.command()
def migrate() -> None:
    """Apply pending migrations; non-zero exit on a changed or failed migration."""
    settings = load_settings()
    configure_logging(settings.log_level)
    with sigterm_exits(), database(settings) as ready_settings:
        applied = migrate_database(ready_settings)
    for script in applied:
        click.echo(f"applied {script}")
    click.echo(f"{len(applied)} migration(s) applied")


@cli.command()
def worker() -> None:
    """Relay the outbox to Kafka, take in orders from it; prune events, add partitions."""
    import asyncio  # noqa: PLC0415 - only the worker runs an event loop here

    from wms.events.worker import (  # noqa: PLC0415 - Kafka loads only to work
        WorkerFailedError,
        run_worker,
    )
    from wms.ops.metrics import start_metrics_server  # noqa: PLC0415

    settings = load_settings()
    configure_logging(settings.log_level)
    with sigterm_exits(), database(settings) as ready_settings:
        if settings.embedded and ready_settings.migrate_on_start:
            migrate_database(ready_settings)
        metrics = start_metrics_server(ready_settings.metrics_port, ready_settings.host)
        try:
            asyncio.run(run_worker(ready_settings))
        except WorkerFailedError as exc:
            raise CommandError(str(exc)) from None
        finally:
            if metrics is not None:
                metrics.shutdown()


class StoreLocation(click.ParamType[Store, Any]):
    """A directory path or ``s3://bucket/prefix`` (a malformed one is a usage error)."""

    name = "PATH_OR_URL"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Store:
        """Open the store, or fail as bad usage."""
        try:
            return open_store(str(value))
        except LocationError as exc:
            self.fail(str(exc), param, ctx)


@cli.command()
@click.option(
    "--to",
    "target",
    type=StoreLocation(),
    required=True,
    help="A new directory, or s3://bucket/prefix (endpoint: WMS_S3_ENDPOINT_URL).",
)
def backup(target: Store) -> None:
    """Back up the database (pg_dump custom format) with a checksummed manifest."""
    settings = load_settings()
    configure_logging("WARNING")
    with sigterm_exits(), database(settings) as ready:
        manifest = backups.backup(ready.migration_url, target)
    rows = sum(manifest.row_counts.values())
    click.echo(
        f"backed up schema version {manifest.schema_version}: {rows} rows in "
        f"{len(manifest.row_counts)} tables, {manifest.dump_bytes} bytes, "
        f"sha256 {manifest.dump_sha256}, {manifest.duration_seconds} s → {target.describe()}"
    )


@cli.command()
@click.option(
    "--from",
    "source",
    type=StoreLocation(),
    required=True,
    help="The backup's directory or s3://bucket/prefix.",
)
@click.option("--force", is_flag=True, help="Replace a database that is not empty.")
def restore(source: Store, force: bool) -> None:
    """Restore a backup into the configured (empty) database, verifying its manifest."""
    settings = load_settings()
    configure_logging("WARNING")
    with sigterm_exits(), database(settings) as ready:
        result = backups.restore(ready.migration_url, source, force=force)
    manifest = result.manifest
    click.echo(
        f"restored schema version {manifest.schema_version}: "
        f"{sum(manifest.row_counts.values())} rows in {len(manifest.row_counts)} tables, "
        f"checksum and row counts verified, {result.seconds} s"
        + (" (the previous schema was replaced)" if result.replaced else "")
    )
    if result.pending_migrations:
        click.echo(
            f"{result.pending_migrations} newer migration(s) pending: run wms-server migrate"
        )


@cli.group(invoke_without_command=True)
@click.option(
    "--to",
    "target",
    type=StoreLocation(),
    default=None,
    help="Where exports go: a directory or s3://bucket/prefix (one folder a month).",
)
@click.option(
    "--retention-months",
    type=click.IntRange(1, MAX_RETENTION_MONTHS),
    default=DEFAULT_RETENTION_MONTHS,
    show_default=True,
    help="Months kept in the database besides the current one.",
)
@click.option("--dry-run", is_flag=True, help="Print what would be archived; change nothing.")
@click.option(
    "--include-unpublished",
    is_flag=True,
    help="With KAFKA_BROKERS set, archive events Kafka has not acknowledged too "
    "(by default such a month is refused).",
)
@click.pass_context
def archive(
    ctx: click.Context,
    target: Store | None,
    retention_months: int,
    dry_run: bool,
    include_unpublished: bool,
) -> None:
    """Archive ledger, audit and outbox months older than the retention (export, verify, drop)."""
    if ctx.invoked_subcommand is not None:
        return
    if target is None and not dry_run:
        raise click.UsageError("archive needs --to (or --dry-run)")
    settings = load_settings()
    configure_logging("WARNING")
    cutoff = archival.cutoff_for(retention_months)
    # Without a relay nothing is ever "published": the feed's readers had the retention.
    keep_unpublished = bool(settings.kafka_brokers) and not include_unpublished
    with sigterm_exits(), database(settings) as ready:
        if dry_run:
            plans = archival.plan(ready.migration_url, cutoff)
            click.echo(f"dry run: months before {cutoff} would be archived; nothing changed")
            for planned in plans:
                rows = ", ".join(f"{table} {count}" for table, count in planned.rows.items())
                drop = f"; drop partition {planned.partition}" if planned.partition else ""
                waiting = (
                    f"; {planned.unpublished} event(s) not yet published to Kafka: refused"
                    if keep_unpublished and planned.unpublished
                    else ""
                )
                click.echo(f"would archive {planned.month.label}: {rows} rows{drop}{waiting}")
            click.echo(f"{len(plans)} month(s) would be archived")
            return
        assert target is not None
        done = archival.archive(
            ready.migration_url, target, cutoff, keep_unpublished=keep_unpublished
        )
    for month in done:
        rows = ", ".join(f"{table} {count}" for table, count in month.rows.items())
        click.echo(
            f"archived {month.month.label}: {rows} rows, {month.bytes} bytes, "
            f"{month.opening_keys} opening balance(s) updated, {month.seconds} s "
            f"→ {month.location}"
        )
    click.echo(f"{len(done)} month(s) archived (before {cutoff})")


def _new_schema_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A name PostgreSQL takes as is for a new schema, so restore makes the one named."""
    if value is None:
        return None
    if not 0 < len(value.encode()) <= MAX_IDENTIFIER_BYTES or "\x00" in value:
        raise click.BadParameter(f"must be 1 to {MAX_IDENTIFIER_BYTES} bytes", ctx, param)
    if value.startswith("pg_"):
        raise click.BadParameter("names starting with pg_ are reserved for the system", ctx, param)
    return value


@archive.command("restore")
@click.option(
    "--from",
    "source",
    type=StoreLocation(),
    required=True,
    help="The archive destination given to `archive --to`.",
)
@click.option("--month", required=True, help="The archived month, YYYY-MM.")
@click.option(
    "--schema",
    default=None,
    callback=_new_schema_name,
    help="New schema to load into (default archive_YYYY_MM).",
)
def archive_restore(source: Store, month: str, schema: str | None) -> None:
    """Load an archived month into tables of a new schema, for an audit."""
    try:
        wanted = Month.parse(month)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None
    settings = load_settings()
    configure_logging("WARNING")
    with sigterm_exits(), database(settings) as ready:
        counts = archival.restore_month(ready.migration_url, source, wanted, schema)
    name = schema or f"archive_{wanted.start:%Y_%m}"
    rows = ", ".join(f"{name}.{table} {count}" for table, count in counts.items())
    click.echo(f"restored {wanted.label} (checksums verified): {rows} rows")


@contextlib.contextmanager
def admin_session() -> Iterator[tuple[Settings, psycopg.Connection[Any]]]:
    """Settings and a ``wms_admin`` connection for the administration commands.

    On the embedded database pending migrations are applied first, so a fresh
    ``WMS_DATA_DIR`` works; an external database must have been migrated.
    """
    settings = load_settings()
    configure_logging("WARNING")
    with sigterm_exits(), database(settings) as ready:
        if settings.embedded:
            migrate_database(ready)
        with admin_connection(ready.migration_url) as conn:
            yield ready, conn


@cli.group()
def tenant() -> None:
    """Tenant administration."""


@tenant.command("create")
@click.argument("code")
@click.option("--name", required=True, help="Display name of the tenant.")
def tenant_create(code: str, name: str) -> None:
    """Create a tenant and print its code."""
    with admin_session() as (_settings, conn):
        tenants.create_tenant(conn, code, name)
    click.echo(code)


@cli.group()
def apikey() -> None:
    """API key administration (keys are shown once, stored only as a keyed hash)."""


def _future_expiry(
    ctx: click.Context, param: click.Parameter, value: datetime | None
) -> datetime | None:
    """The expiry in UTC (a bare date is midnight UTC); refused when past or too far ahead."""
    if value is None:
        return None
    try:
        expires: datetime | None = value.replace(tzinfo=value.tzinfo or UTC).astimezone(UTC)
    except OverflowError:  # before year 1 or after 9999 once in UTC
        expires = None
    if expires is None or not datetime.now(UTC) < expires <= LATEST_EXPIRY:
        raise click.BadParameter(
            f"must be in the future and at the latest {LATEST_EXPIRY:%Y-%m-%d} (UTC)", ctx, param
        )
    return expires


@apikey.command("create")
@click.option("--tenant", "tenant_code", required=True, help="Tenant code.")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--name", default=None, help="A label for the key.")
@click.option(
    "--expires",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z"]),
    default=None,
    callback=_future_expiry,
    help="Expiry: a date (midnight UTC) or an RFC 3339 time with offset; "
    "in the future, at the latest 9999-12-31 (UTC).",
)
def apikey_create(tenant_code: str, role: str, name: str | None, expires: datetime | None) -> None:
    """Create a key; the key alone is the last line of output."""
    with admin_session() as (settings, conn):
        token = tenants.create_api_key(
            conn,
            api_key_pepper(settings),
            tenant_code=tenant_code,
            role=Role(role),
            name=name,
            expires_at=expires,
        )
    click.echo(token)


@apikey.command("list")
@click.option("--tenant", "tenant_code", required=True, help="Tenant code.")
def apikey_list(tenant_code: str) -> None:
    """List a tenant's keys (never their secrets)."""
    with admin_session() as (_settings, conn):
        keys = tenants.list_api_keys(conn, tenant_code)
    click.echo("key_id\trole\tname\tcreated_at\texpires_at\trevoked_at\tlast_used_at")
    for key in keys:
        click.echo(
            "\t".join(
                "-" if key[column] is None else str(key[column])
                for column in (
                    "key_id", "role", "name", "created_at", "expires_at", "revoked_at",
                    "last_used_at",
                )
            )
        )  # fmt: skip


@apikey.command("revoke")
@click.argument("key_id")
def apikey_revoke(key_id: str) -> None:
    """Revoke a key."""
    with admin_session() as (_settings, conn):
        tenants.revoke_api_key(conn, key_id)
    click.echo(f"revoked {key_id}")


@cli.group()
def events() -> None:
    """Outbox events the relay parked because Kafka refused them for good."""


@events.command("parked")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True)
def events_parked(limit: int) -> None:
    """List parked events, oldest first, with Kafka's reason."""
    with admin_session() as (_settings, conn):
        rows = outbox_sql.parked(conn, limit=limit)
    click.echo("tenant\tevent_id\ttype\tsubject\toccurred_at\tparked_at\treason")
    for row in rows:
        click.echo("\t".join(str(value) for value in row))


@events.command("requeue")
@click.argument("event_ids", nargs=-1, type=click.UUID)
@click.option("--all", "every", is_flag=True, help="Requeue every parked event.")
def events_requeue(event_ids: tuple[uuid.UUID, ...], every: bool) -> None:
    """Give parked events back to the relay (after raising the limit that refused them).

    A requeued event reaches Kafka after the later events of its key, which went on.
    """
    if every == bool(event_ids):
        raise click.UsageError("name the event ids to requeue, or pass --all")
    with admin_session() as (_settings, conn):
        count = outbox_sql.requeue(conn, None if every else list(event_ids))
    click.echo(f"requeued {count} event(s)")


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the console script: run the CLI, turn every failure into one line."""
    sys.exit(run_cli(cli.main, argv))


def run_cli(entry: Callable[..., object], argv: list[str] | None) -> int:
    """Run ``entry`` (a click main) and map exceptions to exit codes with one-line messages."""
    message: str | None
    try:
        entry(args=argv, prog_name="wms-server", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except KeyboardInterrupt:
        return 130
    except click.exceptions.Abort:
        message, code = "aborted", EXIT_FAILURE
    except click.UsageError as exc:
        message, code = f"{exc.format_message()} (see --help)", EXIT_USAGE
    except ConfigError as exc:
        message, code = f"configuration error: {exc}", EXIT_USAGE
    except (CommandError, DomainError, *_OPERATIONAL_ERRORS) as exc:
        message, code = str(exc), EXIT_FAILURE
    except psycopg.OperationalError as exc:
        message, code = f"database error: {str(exc).strip().splitlines()[0]}", EXIT_FAILURE
    except (psycopg.IntegrityError, psycopg.DataError) as exc:
        # A value the database refused (a CHECK, a NUL in a text) is the user's to correct:
        # one line like any other mistake, not a traceback.
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        message, code = f"the database refused the value: {detail}", EXIT_FAILURE
    else:
        return 0
    click.echo(f"wms-server: {message}", err=True)
    return code
