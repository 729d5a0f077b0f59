"""The application in-process: readiness against a real database, request ids, docs, metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from wms.app import create_app
from wms.config import Settings
from wms.ops.health import DrainState
from wms.store.embedded import free_port
from wms.store.migrations import MINIMUM_SCHEMA_VERSION, highest_version, load_migrations


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_live_answers_ok(client: TestClient) -> None:
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_reports_a_primary_database_and_the_applied_schema(client: TestClient) -> None:
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["draining"] is False
    assert body["checks"]["schema"] == {
        "minimum": MINIMUM_SCHEMA_VERSION,
        "applied": highest_version([m.version for m in load_migrations()]),
    }
    database = body["checks"]["database"]
    assert database["status"] == "ok"
    assert database["role"] == "primary"
    assert database["latency_ms"] >= 0


def test_ready_is_503_when_the_schema_was_never_migrated(
    empty_database_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=empty_database_url, metrics_port=0, data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["checks"]["schema"]["applied"] is None
    assert response.json()["checks"]["database"]["status"] == "ok"


def test_ready_is_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/wms"
    settings = Settings(database_url=url, metrics_port=0, data_dir=tmp_path)
    with TestClient(create_app(settings)) as client:
        response = client.get("/health/ready")
        live = client.get("/health/live")
    assert response.status_code == 503
    assert response.json()["checks"]["database"]["status"] == "error"
    assert live.status_code == 200


def test_ready_is_503_at_once_while_draining(settings: Settings) -> None:
    drain = DrainState()
    with TestClient(create_app(settings, drain=drain)) as client:
        assert client.get("/health/ready").status_code == 200
        drain.start()
        response = client.get("/health/ready")
        live = client.get("/health/live")
    assert response.status_code == 503
    assert response.json()["checks"]["draining"] is True
    assert live.status_code == 200


def test_request_id_is_echoed_when_given_and_generated_otherwise(client: TestClient) -> None:
    given = client.get("/health/live", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = client.get("/health/live")
    assert len(generated.headers["x-request-id"]) == 32
    hostile = client.get("/health/live", headers={"X-Request-ID": "bad id\twith spaces"})
    assert hostile.headers["x-request-id"] != "bad id\twith spaces"


def test_docs_are_served_from_local_assets_without_a_cdn(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assert "/docs/assets/swagger-ui-bundle.js" in page.text
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "/health/ready" in spec["paths"]


def test_docs_can_be_turned_off(database_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=database_url, metrics_port=0, data_dir=tmp_path, docs_enabled=False
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 404


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_label_by_route_template_and_never_by_raw_path(client: TestClient) -> None:
    live = {"method": "GET", "route": "/health/live", "status": "200"}
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    before_live, before_unmatched = (
        sample("http_requests_total", live),
        sample("http_requests_total", unmatched),
    )
    before_hist = sample(
        "http_request_duration_seconds_count", {"method": "GET", "route": "/health/live"}
    )
    for _ in range(3):
        client.get("/health/live")
    assert client.get("/no/such/path/12345").status_code == 404
    assert sample("http_requests_total", live) == before_live + 3
    assert sample("http_requests_total", unmatched) == before_unmatched + 1
    assert (
        sample("http_request_duration_seconds_count", {"method": "GET", "route": "/health/live"})
        == before_hist + 3
    )
    routes = {
        s.labels.get("route")
        for metric in REGISTRY.collect()
        if metric.name == "http_requests"
        for s in metric.samples
    }
    assert not any("12345" in (route or "") for route in routes)


def test_pool_gauges_are_reported_while_the_app_runs(client: TestClient) -> None:
    client.get("/health/ready")
    assert sample("wms_db_pool_connections", {"pool": "primary"}) >= 1
