"""``wms-server backup`` / ``restore`` against real PostgreSQL and a real moto S3 server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import ApiClient, TenantKeys
from tests.integration.stock_world import build_world
from tests.integration.test_migrate import flyway_baseline
from wms.cli import cli, run_cli
from wms.config import Settings
from wms.ops.backup import DUMP, MANIFEST
from wms.ops.storage import sha256_of
from wms.store.embedded import free_port
from wms.store.migrations import highest_version, load_migrations

SHIPPED = highest_version([m.version for m in load_migrations()])  # the newest schema version

VENV_BIN = Path(sys.executable).parent


def run(argv: list[str]) -> int:
    return run_cli(cli.main, argv)


def fingerprint(url: str) -> dict[str, tuple[int, str]]:
    """Rows and an md5 of the sorted rows of every table of schema wms."""
    with psycopg.connect(url) as conn:
        tables = [
            str(r[0])
            for r in conn.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'wms'::regnamespace "
                "AND relkind = 'r' ORDER BY 1"
            ).fetchall()
        ]
        result: dict[str, tuple[int, str]] = {}
        for table in tables:
            count, digest = conn.execute(
                f"SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') "
                f"FROM wms.{table} t"
            ).fetchone()  # type: ignore[misc]
            result[table] = (int(count), str(digest))
    return result


def use_database(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("DATABASE_ADMIN_URL", raising=False)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    assert settings.database_url is not None
    use_database(monkeypatch, settings.database_url)
    monkeypatch.setenv("WMS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ENVIRONMENT", "test")
    monkeypatch.setenv("WMS_DB_CONNECT_TIMEOUT_SECONDS", "1")
    return settings


@pytest.fixture
def populated(api: ApiClient, tenant: TenantKeys, database_url: str) -> str:
    """A database with master data, stock, ledger, audit and outbox rows."""
    build_world(api, tenant, database_url)
    for quantity, location in [(40, "A-01"), (15, "A-02"), (-5, "A-01"), (9, "P-01")]:
        response = api.post(
            "/inventory/adjustments",
            json={"warehouse": "SP1", "location": location, "sku": "SKU-1",
                  "quantity": quantity, "reason": "found" if quantity > 0 else "lost"},
        )  # fmt: skip
        assert response.status_code == 201, response.text
    return database_url


def test_backup_then_restore_into_an_empty_database_gives_identical_tables(
    env: Settings,
    populated: str,
    *,
    empty_database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "backup-1"
    assert run(["backup", "--to", str(target)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.startswith(f"backed up schema version {SHIPPED}:")

    manifest = json.loads((target / MANIFEST).read_text())
    assert manifest["dump_sha256"] == sha256_of(target / DUMP)
    source = fingerprint(populated)
    assert manifest["row_counts"] == {table: rows for table, (rows, _) in source.items()}
    assert manifest["row_counts"]["inventory_movements_default"] == 0
    assert sum(manifest["row_counts"].values()) > 20

    use_database(monkeypatch, empty_database_url)
    assert run(["restore", "--from", str(target)]) == 0, capsys.readouterr().err
    assert "checksum and row counts verified" in capsys.readouterr().out
    assert fingerprint(empty_database_url) == source

    # The restored database is a working one: roles, RLS and grants came back too.
    with psycopg.connect(empty_database_url) as conn:
        forced = conn.execute(
            "SELECT relforcerowsecurity FROM pg_class "
            "WHERE oid = 'wms.inventory_balances'::regclass"
        ).fetchone()
        assert forced == (True,)
        conn.execute("SET ROLE wms_app")
        assert conn.execute("SELECT count(*) FROM wms.inventory_balances").fetchone() == (0,)

    # A second restore onto it is refused without --force, and replaces it with --force.
    assert run(["restore", "--from", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "is not empty" in err
    assert "--force" in err
    with psycopg.connect(empty_database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM wms.audit_log")
    assert run(["restore", "--from", str(target), "--force"]) == 0, capsys.readouterr().err
    assert "previous schema was replaced" in capsys.readouterr().out
    assert fingerprint(empty_database_url) == source
    with psycopg.connect(empty_database_url) as conn:
        leftovers = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'wms_replaced%'"
        ).fetchall()
    assert leftovers == []


def test_a_tampered_dump_is_refused_and_the_target_left_untouched(
    env: Settings,
    populated: str,
    *,
    empty_database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = tmp_path / "b"
    assert run(["backup", "--to", str(target)]) == 0
    capsys.readouterr()
    dump = target / DUMP
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))

    use_database(monkeypatch, empty_database_url)
    assert run(["restore", "--from", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "does not match its manifest" in err
    assert "refusing to restore" in err
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT to_regclass('wms.tenants')").fetchone() == (None,)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"schema_version": "99"}, f"is newer than this build knows ({SHIPPED})"),
        ({"schema_version": "0"}, "is older than this build supports"),
        ({"format": "wms-backup/9"}, "not a wms-backup/1 manifest"),
        # Damaged or hand-edited: parse_version's ValueError (and KeyErrors) ended in tracebacks.
        ({"schema_version": "v18"}, "the manifest is malformed (invalid: schema_version)"),
        ({"migrations": [{"script": "V1__x.sql"}]}, "malformed (invalid: migrations)"),
        ({"pg_dump_version": "eighteen", "dump_bytes": "1"}, "dump_bytes, pg_dump_version"),
        ({"row_counts": None, "surprise": 1}, "unknown: surprise; invalid: row_counts"),
    ],
)
def test_a_manifest_this_build_cannot_restore_is_refused(
    env: Settings,
    populated: str,
    *,
    empty_database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    edit: dict[str, object],
    message: str,
) -> None:
    target = tmp_path / "b"
    assert run(["backup", "--to", str(target)]) == 0
    capsys.readouterr()
    manifest = json.loads((target / MANIFEST).read_text())
    manifest.update(edit)
    (target / MANIFEST).write_text(json.dumps(manifest))

    use_database(monkeypatch, empty_database_url)
    assert run(["restore", "--from", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert message in err


def test_a_backup_of_a_flyway_baselined_database_restores(
    env: Settings,
    populated: str,
    *,
    empty_database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The baseline row's NULL checksum "differed from this build's": such a backup never restored.
    flyway_baseline(populated, SHIPPED)
    target = tmp_path / "b"
    assert run(["backup", "--to", str(target)]) == 0
    capsys.readouterr()
    use_database(monkeypatch, empty_database_url)
    assert run(["restore", "--from", str(target)]) == 0, capsys.readouterr().err
    assert fingerprint(empty_database_url) == fingerprint(populated)


def test_a_migration_that_differs_from_this_build_is_refused(
    env: Settings, populated: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "b"
    assert run(["backup", "--to", str(target)]) == 0
    capsys.readouterr()
    manifest = json.loads((target / MANIFEST).read_text())
    manifest["migrations"][2]["checksum"] += 1
    (target / MANIFEST).write_text(json.dumps(manifest))
    assert run(["restore", "--from", str(target)]) == 1
    assert "V3__command_pipeline.sql differs from this build's" in capsys.readouterr().err


def test_mistakes_end_in_one_line_and_the_right_exit_code(
    env: Settings,
    populated: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases: list[tuple[list[str], int, str]] = [
        (["restore", "--from", str(tmp_path / "nowhere")], 1, "no backup at"),
        (["restore", "--from", "ftp://host/x"], 2, "only directory paths and s3://"),
        (["backup", "--to", "s3:///prefix"], 2, "needs a bucket"),
        (["backup"], 2, "--to"),
    ]
    target = tmp_path / "once"
    assert run(["backup", "--to", str(target)]) == 0
    capsys.readouterr()
    cases.append((["backup", "--to", str(target)], 1, "already holds a backup"))
    for argv, code, text in cases:
        assert run(argv) == code, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith("wms-server: "), err
        assert text in err, err

    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/wms"
    use_database(monkeypatch, dead)
    for argv in (["backup", "--to", str(tmp_path / "x")], ["restore", "--from", str(target)]):
        assert run(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert "127.0.0.1" in err


def test_the_console_script_reports_a_bad_location_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "wms-server"), "restore", "--from", "gopher://x"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "WMS_DATA_DIR": str(tmp_path)},
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "gopher://x" in result.stderr


@pytest.fixture
def moto_s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A moto S3 server process on a free loopback port; its endpoint URL."""
    port = free_port()
    log = (tmp_path / "moto.log").open("wb")
    process = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)
        monkeypatch.setenv("WMS_S3_ENDPOINT_URL", endpoint)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_s3_round_trip_through_a_moto_server(
    env: Settings,
    populated: str,
    *,
    empty_database_url: str,
    moto_s3: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    bucket = f"wms-backups-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=moto_s3)
    s3.create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/nightly/2026-11-29"

    assert run(["backup", "--to", url]) == 0, capsys.readouterr().err
    capsys.readouterr()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted([f"nightly/2026-11-29/{DUMP}", f"nightly/2026-11-29/{MANIFEST}"])

    source = fingerprint(populated)
    use_database(monkeypatch, empty_database_url)
    assert run(["restore", "--from", url]) == 0, capsys.readouterr().err
    assert fingerprint(empty_database_url) == source
    capsys.readouterr()

    # A flipped byte in the stored object is caught after download.
    body = bytearray(s3.get_object(Bucket=bucket, Key=f"nightly/2026-11-29/{DUMP}")["Body"].read())
    body[100] ^= 0xFF
    s3.put_object(Bucket=bucket, Key=f"nightly/2026-11-29/{DUMP}", Body=bytes(body))
    assert run(["restore", "--from", url, "--force"]) == 1
    assert "does not match its manifest" in capsys.readouterr().err

    for argv, text in [
        (["restore", "--from", f"s3://{bucket}/missing"], "no backup at"),
        (["backup", "--to", "s3://no-such-bucket/x"], "NoSuchBucket"),
    ]:
        use_database(monkeypatch, populated)
        assert run(argv) == 1, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert text in err, err

    monkeypatch.setenv("WMS_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    assert run(["restore", "--from", url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Could not connect" in err, err


def test_restore_into_a_fresh_cluster_directory_copy(
    env: Settings, populated: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A backup directory copied elsewhere (as to another machine) restores the same."""
    target = tmp_path / "b"
    assert run(["backup", "--to", str(target)]) == 0
    copy = tmp_path / "copied"
    shutil.copytree(target, copy)
    capsys.readouterr()
    assert run(["restore", "--from", str(copy)]) == 1  # the source is not empty
    assert "is not empty" in capsys.readouterr().err
