"""``Migrator`` against a real PostgreSQL: Flyway's history, roles, locking, refusal of edits."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from tests.conftest import until_sessions_wait_for_locks
from wms.cli import cli, migrate_database, run_cli
from wms.config import Settings
from wms.store.migrations import MigrationError, Migrator, default_migrations_dir, load_migrations
from wms.store.partitions import ensure_movement_partitions


def history(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT installed_rank, version, description, type, script, checksum, success "
            "FROM wms.flyway_schema_history ORDER BY installed_rank"
        ).fetchall()


def copy_migrations(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(default_migrations_dir(), folder)
    return folder


def test_migrate_applies_every_file_once_in_flyway_layout(empty_database_url: str) -> None:
    applied = Migrator(empty_database_url).migrate()
    shipped = load_migrations()
    assert [m.script for m in applied] == [m.script for m in shipped]
    rows = history(empty_database_url)
    assert rows == [
        (rank, m.version, m.description, "SQL", m.script, m.checksum, True)
        for rank, m in enumerate(shipped, start=1)
    ]
    assert Migrator(empty_database_url).migrate() == []
    assert len(history(empty_database_url)) == len(shipped)


def test_history_table_has_flyways_columns_and_types(empty_database_url: str) -> None:
    Migrator(empty_database_url).migrate()
    with psycopg.connect(empty_database_url) as conn:
        columns = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'wms' AND table_name = 'flyway_schema_history' "
            "ORDER BY ordinal_position"
        ).fetchall()
    assert columns == [
        ("installed_rank", "integer", "NO"),
        ("version", "character varying", "YES"),
        ("description", "character varying", "NO"),
        ("type", "character varying", "NO"),
        ("script", "character varying", "NO"),
        ("checksum", "integer", "YES"),
        ("installed_by", "character varying", "NO"),
        ("installed_on", "timestamp without time zone", "NO"),
        ("execution_time", "integer", "NO"),
        ("success", "boolean", "NO"),
    ]


def test_migrate_creates_the_three_roles_and_objects_belong_to_the_owner(
    empty_database_url: str,
) -> None:
    Migrator(empty_database_url).migrate()
    with psycopg.connect(empty_database_url) as conn:
        roles = dict(
            conn.execute(
                "SELECT rolname, rolbypassrls FROM pg_roles "
                "WHERE rolname IN ('wms_owner', 'wms_app', 'wms_admin')"
            ).fetchall()
        )
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'wms'"
        ).fetchall()
        schema_owner = conn.execute(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'wms'"
        ).fetchone()
    assert roles == {"wms_owner": False, "wms_app": False, "wms_admin": True}
    assert owners == [("wms_owner",)]
    assert schema_owner == ("wms_owner",)


def test_a_migration_changed_after_it_was_applied_stops_migrate_naming_it(
    empty_database_url: str, tmp_path: Path
) -> None:
    folder = copy_migrations(tmp_path)
    Migrator(empty_database_url, folder=folder).migrate()
    first = folder / "V1__initial_schema.sql"
    first.write_text(first.read_text() + "\n-- an innocent-looking edit\n")
    with pytest.raises(MigrationError, match=r"V1__initial_schema\.sql was changed"):
        Migrator(empty_database_url, folder=folder).migrate()


def test_a_failing_migration_changes_nothing_and_names_the_file(
    empty_database_url: str, tmp_path: Path
) -> None:
    folder = copy_migrations(tmp_path)
    (folder / "V900__half_done.sql").write_text("CREATE TABLE half_done (id int);\nSELECT 1 / 0;\n")
    with pytest.raises(MigrationError, match=r"V900__half_done\.sql failed: division by zero"):
        Migrator(empty_database_url, folder=folder).migrate()
    with psycopg.connect(empty_database_url) as conn:
        table = conn.execute("SELECT to_regclass('wms.half_done')").fetchone()
    assert table == (None,)
    assert "V900__half_done.sql" not in [row[4] for row in history(empty_database_url)]


def test_concurrent_migrate_calls_apply_each_migration_once(empty_database_url: str) -> None:
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(len(Migrator(empty_database_url).migrate()))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [0] * 5 + [len(load_migrations())]
    versions = [row[1] for row in history(empty_database_url)]
    assert len(versions) == len(set(versions)) == len(load_migrations())


def test_a_newer_schema_from_a_later_release_is_tolerated(
    empty_database_url: str, tmp_path: Path
) -> None:
    folder = copy_migrations(tmp_path)
    (folder / "V9000__from_the_future.sql").write_text("CREATE TABLE future (id int);\n")
    Migrator(empty_database_url, folder=folder).migrate()
    # The previous release (without V9000) still migrates cleanly during a rolling deploy.
    assert Migrator(empty_database_url).migrate() == []


def test_a_pending_migration_older_than_the_applied_ones_is_refused(
    empty_database_url: str, tmp_path: Path
) -> None:
    folder = copy_migrations(tmp_path)
    (folder / "V9000__later.sql").write_text("SELECT 1;\n")
    Migrator(empty_database_url, folder=folder).migrate()
    (folder / "V8000__forgotten.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=r"V8000__forgotten\.sql is older"):
        Migrator(empty_database_url, folder=folder).migrate()


def test_migrate_command_against_database_url(
    empty_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    assert run_cli(cli.main, ["migrate"]) == 0
    out = capsys.readouterr().out
    assert "applied V1__initial_schema.sql" in out
    assert run_cli(cli.main, ["migrate"]) == 0
    assert capsys.readouterr().out.strip().endswith("0 migration(s) applied")


def test_migrate_command_with_an_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from wms.store.embedded import free_port

    monkeypatch.setenv("DATABASE_URL", f"postgresql://wms:secret@127.0.0.1:{free_port()}/wms")
    monkeypatch.setenv("WMS_DB_CONNECT_TIMEOUT_SECONDS", "1")
    assert run_cli(cli.main, ["migrate"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("wms-server: cannot connect to the database wms@127.0.0.1:")
    assert err.count("\n") == 1
    assert "secret" not in err


def flyway_baseline(database_url: str, version: str) -> None:
    """Leave the history as ``flyway baseline -baselineVersion=version`` writes it."""
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM wms.flyway_schema_history")
        conn.execute(
            "INSERT INTO wms.flyway_schema_history (installed_rank, version, description, type, "
            "script, checksum, installed_by, execution_time, success) VALUES "
            "(1, %s, '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, "
            "'flyway', 0, true)",
            (version,),
        )


def test_migrate_takes_its_turn_after_a_flyway_baseline(
    empty_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The BASELINE row (checksum NULL) was compared as an applied file: migrate refused.
    *older, newest = load_migrations()
    folder = copy_migrations(tmp_path)
    (folder / newest.script).unlink()
    Migrator(empty_database_url, folder=folder).migrate()  # a schema made by V1..V(n-1)
    flyway_baseline(empty_database_url, older[-1].version)
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    assert run_cli(cli.main, ["migrate"]) == 0, capsys.readouterr().err
    said = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("{")]
    assert said == [f"applied {newest.script}", "1 migration(s) applied"]  # logs aside
    assert [row[3:5] for row in history(empty_database_url)] == [
        ("BASELINE", "<< Flyway Baseline >>"),
        ("SQL", newest.script),
    ]
    assert run_cli(cli.main, ["migrate"]) == 0
    assert capsys.readouterr().out.endswith("0 migration(s) applied\n")


def test_concurrent_migrations_creating_a_new_months_partition_both_succeed(
    database_url: str, settings: Settings
) -> None:
    # The second creator of a month's ledger partition failed with DuplicateTable (a
    # traceback) instead of finding it made.
    with psycopg.connect(database_url, autocommit=True) as conn:
        newest = conn.execute(
            "SELECT max(c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'wms.inventory_movements'::regclass "
            "AND c.relname LIKE 'inventory_movements_y%'"
        ).fetchone()[0]  # type: ignore[index]
        conn.execute("SET ROLE wms_owner")
        conn.execute(f"DROP TABLE wms.{newest}")  # a month not made yet
    result: dict[str, object] = {}

    def migrate() -> None:
        try:
            result["applied"] = migrate_database(settings)
        except BaseException as exc:  # noqa: BLE001 - reported below
            result["exc"] = exc

    with psycopg.connect(database_url) as other:
        other.execute("SET ROLE wms_owner")
        other.execute("SET search_path = wms")
        assert other.execute("SELECT ensure_movement_partitions(3)").fetchone() == (1,)
        thread = threading.Thread(target=migrate)
        thread.start()
        until_sessions_wait_for_locks(database_url, 1, "the migrator creating the month")
        other.commit()
        thread.join(30)
    assert "exc" not in result, f"the second migration failed: {result.get('exc')!r}"
    assert result["applied"] == []
    assert ensure_movement_partitions(database_url) == 0
