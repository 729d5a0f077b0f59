"""Standby awareness: writes follow the writable host, reads go on from a standby."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import conninfo_to_dict

from tests.conftest import ApiClient, PostgresServer, TenantKeys
from tests.integration.standby_server import streaming_standby
from wms.app import create_app
from wms.config import Settings
from wms.domain.roles import Role
from wms.store.database import session_conninfo

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("WMS_TEST_DATABASE_URL")),
    reason="the standby is cloned from the embedded test server",
)
WAREHOUSE = {"code": "SP1", "name": "S", "timezone": "UTC"}


@pytest.fixture
def standby_url(
    postgres_server: PostgresServer, database_url: str, tmp_path: Path
) -> Iterator[str]:
    """The test database on a hot standby streaming from the test server (promotable)."""
    with streaming_standby(postgres_server, database_url, tmp_path / "standby") as url:
        yield url


def both_hosts(first: str, second: str) -> str:
    """One libpq multi-host URL listing ``first`` then ``second`` (same database and user)."""
    a, b = conninfo_to_dict(first), conninfo_to_dict(second)
    return (
        f"postgresql://{a.get('user', 'postgres')}@{a['host']}:{a['port']},"
        f"{b['host']}:{b['port']}/{a['dbname']}"
    )


def wait_for_replay(standby_url: str, query: str, expected: object) -> None:
    """Wait until the standby has replayed what ``query`` should see."""
    deadline = time.monotonic() + 20
    while True:
        with psycopg.connect(standby_url, autocommit=True) as conn:
            row = conn.execute(query).fetchone()
        if row is not None and row[0] == expected:
            return
        assert time.monotonic() < deadline, f"the standby never replayed {query!r}"
        time.sleep(0.1)


def ready(client: TestClient) -> tuple[int, object]:
    response = client.get("/health/ready")
    return response.status_code, response.json()["checks"]["database"]["role"]


def test_the_write_pool_asks_for_a_writable_host_and_keeps_every_host() -> None:
    info = conninfo_to_dict(
        session_conninfo("postgresql://app:pw@db-a:5432,db-b:5433/wms", "read-write")
    )
    assert info["host"] == "db-a,db-b"
    assert info["port"] == "5432,5433"
    assert info["target_session_attrs"] == "read-write"
    assert info["connect_timeout"] == "5"
    assert (info["keepalives_idle"], info["keepalives_count"]) == ("30", "3")
    explicit = session_conninfo("postgresql://db-a/wms?connect_timeout=2&keepalives_idle=60", "any")
    assert conninfo_to_dict(explicit)["connect_timeout"] == "2"
    assert conninfo_to_dict(explicit)["keepalives_idle"] == "60"


def test_a_session_with_keepalives_still_connects(database_url: str) -> None:
    with psycopg.connect(session_conninfo(database_url, "read-write")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_on_a_standby_ready_says_standby_and_writes_answer_503_with_retry_after(
    settings: Settings, tenant: TenantKeys, standby_url: str
) -> None:
    wait_for_replay(standby_url, "SELECT count(*) FROM wms.api_keys", len(Role))
    on_standby = settings.model_copy(update={"database_url": standby_url})
    with TestClient(create_app(on_standby), raise_server_exceptions=False) as client:
        assert ready(client) == (200, "standby")
        refused = ApiClient(client, tenant.keys[Role.ADMIN]).post("/warehouses", json=WAREHOUSE)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "5"
        assert refused.json()["type"] == "https://wms.example/problems/database-read-only"


def test_on_a_standby_reads_keep_working(
    settings: Settings, tenant: TenantKeys, standby_url: str
) -> None:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert ApiClient(client, tenant.keys[Role.ADMIN]).post(
            "/warehouses", json=WAREHOUSE
        ).status_code == 201  # fmt: skip
    wait_for_replay(standby_url, "SELECT count(*) FROM wms.warehouses", 1)
    on_standby = settings.model_copy(update={"database_url": standby_url})
    with TestClient(create_app(on_standby), raise_server_exceptions=False) as client:
        listed = ApiClient(client, tenant.keys[Role.ADMIN]).get("/warehouses")
        assert listed.status_code == 200, listed.text
        assert [w["code"] for w in listed.json()["items"]] == ["SP1"]


def test_writes_find_the_writable_host_when_a_standby_is_listed_first(
    settings: Settings, tenant: TenantKeys, standby_url: str, database_url: str
) -> None:
    both = settings.model_copy(update={"database_url": both_hosts(standby_url, database_url)})
    with TestClient(create_app(both), raise_server_exceptions=False) as client:
        api = ApiClient(client, tenant.keys[Role.ADMIN])
        assert api.post("/warehouses", json=WAREHOUSE).status_code == 201
        assert ready(client) == (200, "primary")
        assert api.get("/warehouses/SP1").status_code == 200  # read-your-writes


def test_writes_resume_without_a_restart_once_the_standby_is_promoted(
    settings: Settings, tenant: TenantKeys, standby_url: str
) -> None:
    wait_for_replay(standby_url, "SELECT count(*) FROM wms.api_keys", len(Role))
    on_standby = settings.model_copy(update={"database_url": standby_url})
    with TestClient(create_app(on_standby), raise_server_exceptions=False) as client:
        api = ApiClient(client, tenant.keys[Role.ADMIN])
        assert api.post("/warehouses", json=WAREHOUSE).status_code == 503
        with psycopg.connect(standby_url, autocommit=True) as conn:
            conn.execute("SELECT pg_promote(true, 30)")
        promoted = time.monotonic()
        while (status := api.post("/warehouses", json=WAREHOUSE).status_code) == 503:
            assert time.monotonic() - promoted < 10, "writes did not resume"
            time.sleep(0.1)
        assert status == 201
        assert ready(client) == (200, "primary")


def test_a_pooled_connection_killed_under_the_app_is_replaced_before_use(
    settings: Settings, tenant: TenantKeys, database_url: str
) -> None:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = ApiClient(client, tenant.keys[Role.ADMIN])
        assert api.post("/warehouses", json=WAREHOUSE).status_code == 201
        with psycopg.connect(database_url, autocommit=True) as conn:
            # Wait (up to 5 s) until each backend has exited, as a crashed server's have:
            # the pool tells a dead session by its closed socket. A session killed while
            # the request is already being sent fails that request (503), either way.
            killed = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)), count(*) "
                "FROM pg_stat_activity "
                "WHERE application_name = 'wms-server' AND datname = current_database()"
            ).fetchone()
        assert killed is not None
        assert killed[0] == killed[1] >= 1
        assert api.get("/warehouses/SP1").status_code == 200
        assert ready(client) == (200, "primary")
