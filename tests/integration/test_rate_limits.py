"""Limits: token buckets per credential and per tenant (local and shared through Redis),
the body size, the requests one process serves at once."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.conftest import ApiClient, TenantKeys, until_sessions_wait_for_locks
from wms.app import create_app
from wms.config import Settings
from wms.domain.roles import Role
from wms.store.embedded import free_port


def limited(settings: Settings, **limits: float) -> Settings:
    return settings.model_copy(update=limits)


def test_a_credential_over_its_burst_gets_429_with_retry_after_and_ratelimit_headers(
    settings: Settings, tenant: TenantKeys
) -> None:
    tight = limited(settings, rate_limit_rps=0.01, rate_limit_burst=3)
    with TestClient(create_app(tight)) as client:
        admin = ApiClient(client, tenant.keys[Role.ADMIN])
        assert [admin.get("/warehouses").status_code for _ in range(3)] == [200, 200, 200]
        refused = admin.get("/warehouses")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/rate-limited")
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-limit"] == "3"
        assert refused.headers["ratelimit-remaining"] == "0"
        # Another credential of the tenant has its own bucket.
        assert admin.as_key(tenant.keys[Role.READONLY]).get("/warehouses").status_code == 200
        # Health is never rate limited.
        assert client.get("/health/live").status_code == 200


def test_the_tenant_bucket_caps_all_its_credentials_together(
    settings: Settings, tenant: TenantKeys
) -> None:
    tight = limited(settings, tenant_rate_limit_rps=0.01, tenant_rate_limit_burst=4)
    with TestClient(create_app(tight)) as client:
        codes = [
            ApiClient(client, tenant.keys[role]).get("/warehouses").status_code
            for role in (Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.READONLY,
                         Role.INTEGRATION)
        ]  # fmt: skip
    assert codes == [200, 200, 200, 200, 429]


@pytest.fixture
def redis_url(tmp_path: object) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while (
        subprocess.run(
            ["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False
        ).stdout.strip()
        != b"PONG"
    ):
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


def test_replicas_share_buckets_through_redis_and_survive_its_loss(
    settings: Settings, tenant: TenantKeys, redis_url: str
) -> None:
    tight = limited(settings, rate_limit_rps=0.01, rate_limit_burst=4, redis_url=redis_url)
    first, second = create_app(tight), create_app(tight)
    with TestClient(first) as one, TestClient(second) as two:
        a = ApiClient(one, tenant.keys[Role.ADMIN])
        b = ApiClient(two, tenant.keys[Role.ADMIN])
        codes = [a.get("/warehouses").status_code, b.get("/warehouses").status_code,
                 a.get("/warehouses").status_code, b.get("/warehouses").status_code]  # fmt: skip
        assert codes == [200, 200, 200, 200]
        assert a.get("/warehouses").status_code == 429  # the fifth, whichever replica
        assert b.get("/warehouses").status_code == 429
        subprocess.run(["redis-cli", "-u", redis_url, "shutdown", "nosave"], check=False)
        time.sleep(0.2)
        # Redis gone: answers stay correct, limited per process (a fresh local bucket).
        assert b.get("/warehouses").status_code == 200
        assert second.state.rate_limiter.buckets.available is False


def test_a_body_over_the_size_cap_is_413_problem_json(
    settings: Settings, tenant: TenantKeys
) -> None:
    with TestClient(create_app(settings)) as client:
        admin = ApiClient(client, tenant.keys[Role.ADMIN])
        big = b'{"code": "' + b"x" * (settings.max_body_bytes + 10) + b'"}'
        response = admin.post(
            "/warehouses", content=big, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")


def test_a_streamed_body_over_the_cap_is_refused_too(
    settings: Settings, tenant: TenantKeys
) -> None:
    chunk = b"x" * (1024 * 1024)
    chunks = [b'{"code": "', *([chunk] * ((settings.max_body_bytes // len(chunk)) + 2)), b'"}']
    with TestClient(create_app(settings)) as client:
        admin = ApiClient(client, tenant.keys[Role.ADMIN])
        response = admin.post(
            "/warehouses", content=iter(chunks), headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_past_max_in_flight_requests_are_refused_at_once_and_health_still_answers(
    settings: Settings, tenant: TenantKeys, database_url: str
) -> None:
    small = settings.model_copy(update={"max_in_flight": 2, "lock_timeout_ms": 20_000})
    shed_before = REGISTRY.get_sample_value("wms_http_requests_shed_total") or 0.0
    with TestClient(create_app(small)) as client, ThreadPoolExecutor(2) as pool:
        admin = ApiClient(client, tenant.keys[Role.ADMIN])
        assert admin.get("/warehouses").status_code == 200  # the key is cached from here
        with psycopg.connect(database_url) as locker:
            # Two reads held in flight: they wait for a table another session locked.
            locker.execute("LOCK TABLE wms.warehouses IN ACCESS EXCLUSIVE MODE")
            held = [pool.submit(admin.get, "/warehouses") for _ in range(2)]
            until_sessions_wait_for_locks(database_url, 2, "the two reads")
            refused = admin.get("/warehouses")
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"].endswith("/service-unavailable")
            assert "at capacity" in refused.json()["detail"]  # not a lock wait's 503
            assert refused.headers["retry-after"] == "1"
            assert client.get("/health/live").status_code == 200
            locker.rollback()
        assert [future.result().status_code for future in held] == [200, 200]
        # The slots were given back.
        assert admin.get("/warehouses").status_code == 200
    shed_after = REGISTRY.get_sample_value("wms_http_requests_shed_total")
    assert shed_after == shed_before + 1
