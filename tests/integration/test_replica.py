"""Reports read from a real streaming replica (pg_basebackup); writes stay on the primary."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.conftest import ApiClient, PostgresServer, TenantKeys
from tests.integration.standby_server import streaming_standby
from wms.app import create_app
from wms.config import Settings
from wms.domain.roles import Role

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("WMS_TEST_DATABASE_URL")),
    reason="the replica is cloned from the embedded test server",
)


@pytest.fixture
def replica_url(
    postgres_server: PostgresServer, database_url: str, tmp_path: Path
) -> Iterator[str]:
    """The test database on a hot standby streaming from the test server."""
    with streaming_standby(postgres_server, database_url, tmp_path / "replica") as url:
        yield url


def replica_sql(url: str, query: str) -> object:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
    return row[0] if row else None


def on_hand(api: ApiClient) -> int | None:
    """Units in SP1 as the replica sees them; None while it has not replayed the warehouse."""
    response = api.get("/reports/stock-summary", params={"warehouse": "SP1"})
    if response.status_code == 404:  # the replica lags: the warehouse is not there yet
        return None
    assert response.status_code == 200, response.text
    return sum(item["on_hand"] for item in response.json()["items"])


def test_a_report_is_served_by_the_replica_and_a_write_by_the_primary(
    settings: Settings, tenant: TenantKeys, replica_url: str
) -> None:
    assert replica_sql(replica_url, "SELECT pg_is_in_recovery()") is True
    app = create_app(settings.model_copy(update={"database_replica_url": replica_url}))
    with TestClient(app, raise_server_exceptions=False) as client:
        api = ApiClient(client, tenant.keys[Role.ADMIN])
        for path, body in [
            ("/warehouses", {"code": "SP1", "name": "S", "timezone": "UTC"}),
            ("/warehouses/SP1/locations", {"code": "A-01", "type": "storage"}),
            ("/products", {"sku": "SKU-1", "description": "W"}),
            ("/inventory/adjustments", {"warehouse": "SP1", "location": "A-01",
                                        "sku": "SKU-1", "quantity": 10, "reason": "found"}),
        ]:  # fmt: skip
            assert api.post(path, json=body).status_code == 201
        deadline = time.monotonic() + 20
        while on_hand(api) != 10:  # the replica replays the writes
            assert time.monotonic() < deadline
            time.sleep(0.1)

        replica_sql(replica_url, "SELECT pg_wal_replay_pause()")
        adjust = {"warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "quantity": 5,
                  "reason": "found"}  # fmt: skip
        assert api.post("/inventory/adjustments", json=adjust).status_code == 201  # primary
        live = api.get("/inventory", params={"warehouse": "SP1", "sku": "SKU-1"}).json()
        assert sum(item["on_hand"] for item in live["items"]) == 15  # read-your-writes: primary
        assert on_hand(api) == 10  # the report comes from the paused replica
        replica_sql(replica_url, "SELECT pg_wal_replay_resume()")
        deadline = time.monotonic() + 20
        while on_hand(api) != 15:
            assert time.monotonic() < deadline
            time.sleep(0.1)


def test_an_unreachable_replica_falls_back_to_the_primary(
    settings: Settings, tenant: TenantKeys
) -> None:
    unreachable = "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=1"
    app = create_app(settings.model_copy(update={"database_replica_url": unreachable}))
    with TestClient(app, raise_server_exceptions=False) as client:
        fallback = ApiClient(client, tenant.keys[Role.ADMIN])
        warehouse = {"code": "SP1", "name": "S", "timezone": "UTC"}
        assert fallback.post("/warehouses", json=warehouse).status_code == 201
        assert on_hand(fallback) == 0
