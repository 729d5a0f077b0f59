"""Two real ``wms-server`` processes draw one credential's tokens from one Redis bucket."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Launch, server_env
from tests.integration.kafka_fixtures import RedisServer
from wms.config import Settings
from wms.domain.roles import Role
from wms.ops.secrets import api_key_pepper
from wms.services import tenants
from wms.store.tenants import admin_connection

pytestmark = pytest.mark.slow
PEPPER = "shared-rate-limit-test-pepper-" + "y" * 24
BURST = 5
REQUESTS = 20


def admin_key(database_url: str, tmp_path: Path) -> str:
    """A new tenant's admin key, hashed with the pepper both servers share."""
    settings = Settings(
        database_url=database_url, data_dir=tmp_path, environment="test", api_key_pepper=PEPPER
    )
    code = f"rl{uuid.uuid4().hex[:8]}"
    with admin_connection(database_url) as conn:
        tenants.create_tenant(conn, code, "Rate limits")
        return tenants.create_api_key(
            conn, api_key_pepper(settings), tenant_code=code, role=Role.ADMIN
        )


def test_two_server_processes_share_one_credential_bucket_through_redis(
    launch: Launch, database_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    key = admin_key(database_url, tmp_path)
    # A refill of one token per 100 s: within the test the bucket holds BURST tokens, once.
    common = {"DATABASE_URL": database_url, "REDIS_URL": redis_server.url,
              "WMS_API_KEY_PEPPER": PEPPER, "WMS_MIGRATE_ON_START": "false",
              "WMS_RATE_LIMIT_RPS": "0.01", "WMS_RATE_LIMIT_BURST": str(BURST)}  # fmt: skip
    servers = [launch(server_env(tmp_path / name, **common)) for name in ("one", "two")]
    for server in servers:
        server.wait_ready(timeout=60)

    answers: list[tuple[int, httpx.Response]] = []
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(headers=headers, timeout=10) as client:
        for n in range(REQUESTS):
            which = n % 2  # alternate: one, two, one, two, ...
            answer = client.get(f"{servers[which].base_url}/api/v1/warehouses")
            answers.append((which, answer))

    admitted = [which for which, answer in answers if answer.status_code == 200]
    refused = [answer for _, answer in answers if answer.status_code == 429]
    # One bucket: BURST admitted in all (two per-process buckets would admit 2 × BURST).
    assert len(admitted) == BURST, [(w, a.status_code) for w, a in answers]
    assert set(admitted) == {0, 1}  # both servers admitted some ...
    assert admitted == [0, 1, 0, 1, 0]  # ... the first BURST, alternately
    assert len(refused) == REQUESTS - BURST
    assert {which for which, answer in answers if answer.status_code == 429} == {0, 1}
    for answer in refused:
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("/rate-limited")
        assert int(answer.headers["retry-after"]) >= 1
        assert answer.headers["ratelimit-limit"] == str(BURST)
        assert answer.headers["ratelimit-remaining"] == "0"
        assert int(answer.headers["ratelimit-reset"]) >= 1
    for server in servers:
        assert server.stop() == 0
