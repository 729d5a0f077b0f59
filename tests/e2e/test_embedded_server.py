"""``wms-server`` with no DATABASE_URL: the embedded PostgreSQL's whole life cycle."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest

from tests.e2e.conftest import WMS_SERVER, Launch, postgres_pids, server_env
from wms.store.embedded import EmbeddedDatabaseError, EmbeddedPostgres, read_postmaster

pytestmark = pytest.mark.slow


def embedded_url(data_dir: Path) -> str:
    postmaster = read_postmaster(data_dir / "pgdata")
    assert postmaster is not None, "no embedded postmaster is running"
    return f"postgresql://postgres@127.0.0.1:{postmaster.port}/wms"


def test_ready_within_30_s_keeps_data_across_restarts_and_leaves_no_postgres(
    launch: Launch, tmp_path: Path
) -> None:
    env = server_env(tmp_path)
    data_dir = Path(env["WMS_DATA_DIR"])
    first = launch(env)
    assert first.wait_ready(timeout=30) < 30
    port = read_postmaster(data_dir / "pgdata").port  # type: ignore[union-attr]
    assert port != 5432
    with psycopg.connect(embedded_url(data_dir)) as conn:
        conn.execute("INSERT INTO wms.tenants (code, name) VALUES ('keep', 'Kept')")
    assert first.stop() == 0
    assert postgres_pids(data_dir / "pgdata") == []

    second = launch(env)
    second.wait_ready(timeout=30)
    with psycopg.connect(embedded_url(data_dir)) as conn:
        row = conn.execute("SELECT name FROM wms.tenants WHERE code = 'keep'").fetchone()
    assert row == ("Kept",)
    assert second.stop(signal.SIGINT) == 0  # Ctrl-C stops it cleanly too
    assert postgres_pids(data_dir / "pgdata") == []


def test_after_sigkill_the_next_start_adopts_the_orphaned_postgres(
    launch: Launch, tmp_path: Path
) -> None:
    env = server_env(tmp_path)
    data_dir = Path(env["WMS_DATA_DIR"])
    first = launch(env)
    first.wait_ready()
    orphan = postgres_pids(data_dir / "pgdata")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert postgres_pids(data_dir / "pgdata") == orphan  # left behind by the kill

    second = launch(env)
    second.wait_ready()
    assert postgres_pids(data_dir / "pgdata") == orphan  # adopted, not a second postmaster
    assert second.stop() == 0
    assert postgres_pids(data_dir / "pgdata") == []


def test_after_sigkill_of_server_and_postgres_the_next_start_recovers(
    launch: Launch, tmp_path: Path
) -> None:
    env = server_env(tmp_path)
    data_dir = Path(env["WMS_DATA_DIR"])
    first = launch(env)
    first.wait_ready()
    for pid in postgres_pids(data_dir / "pgdata"):
        os.kill(pid, signal.SIGKILL)
    first.stop(signal.SIGKILL)
    assert (data_dir / "pgdata" / "postmaster.pid").exists()  # stale lock file left

    second = launch(env)
    second.wait_ready()
    assert second.stop() == 0
    assert postgres_pids(data_dir / "pgdata") == []


def test_migrate_attaches_to_the_running_servers_database(launch: Launch, tmp_path: Path) -> None:
    env = server_env(tmp_path)
    data_dir = Path(env["WMS_DATA_DIR"])
    server = launch(env)
    server.wait_ready()
    before = postgres_pids(data_dir / "pgdata")
    result = subprocess.run(
        [WMS_SERVER, "migrate"], env=env, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("0 migration(s) applied")
    assert postgres_pids(data_dir / "pgdata") == before
    assert server.get("/health/ready")[0] == 200  # migrate leaving did not stop it
    assert server.stop() == 0
    assert postgres_pids(data_dir / "pgdata") == []


def test_concurrent_first_starts_share_one_postmaster(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    data_dir = Path(env["WMS_DATA_DIR"])
    results: list[subprocess.CompletedProcess[str]] = []

    def migrate() -> None:
        results.append(
            subprocess.run(
                [WMS_SERVER, "migrate"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
        )

    threads = [threading.Thread(target=migrate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    applied = sorted(r.stdout.strip().splitlines()[-1] for r in results)
    assert applied[:2] == ["0 migration(s) applied"] * 2
    assert postgres_pids(data_dir / "pgdata") == []


def test_a_start_that_fails_says_why_from_postgresql_s_log(tmp_path: Path) -> None:
    # pg_ctl alone says "Examine the log output": the error carries the log's last lines.
    embedded = EmbeddedPostgres(tmp_path / "data", shared_buffers="a-lot")
    with pytest.raises(EmbeddedDatabaseError, match="shared_buffers"):
        embedded.start()
    assert read_postmaster(tmp_path / "data" / "pgdata") is None
