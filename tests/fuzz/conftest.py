"""A real ``wms-server serve`` on a fresh database, with an admin key of a new tenant."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import ServerProcess, server_env, start_server
from wms.config import Settings
from wms.domain.roles import Role
from wms.ops.secrets import api_key_pepper
from wms.services import tenants
from wms.store.tenants import admin_connection

PEPPER = "contract-fuzzing-pepper-" + "x" * 32
# Far above what one fuzzing client sends: rate limiting has its own tests, and a 429
# here would only hide the operation behind it.
UNLIMITED = "1000000"


@dataclass(frozen=True)
class FuzzTarget:
    """The server under test and the admin key the fuzzer sends."""

    server: ServerProcess
    key: str

    @property
    def base_url(self) -> str:
        return self.server.base_url


@pytest.fixture
def fuzz_target(database_url: str, tmp_path: Path) -> Iterator[FuzzTarget]:
    """Start the server on this test's database; stop it (and report its log) afterwards."""
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        environment="test",
        metrics_port=0,
        api_key_pepper=PEPPER,
    )
    code = f"fuzz{uuid.uuid4().hex[:8]}"
    with admin_connection(database_url) as conn:
        tenants.create_tenant(conn, code, "Contract fuzzing")
        key = tenants.create_api_key(
            conn, api_key_pepper(settings), tenant_code=code, role=Role.ADMIN
        )
    env = server_env(
        tmp_path,
        DATABASE_URL=database_url,
        WMS_API_KEY_PEPPER=PEPPER,
        WMS_MIGRATE_ON_START="false",
        WMS_RATE_LIMIT_RPS=UNLIMITED,
        WMS_RATE_LIMIT_BURST=UNLIMITED,
        WMS_TENANT_RATE_LIMIT_RPS=UNLIMITED,
        WMS_TENANT_RATE_LIMIT_BURST=UNLIMITED,
        LOG_LEVEL="WARNING",
    )
    server = start_server(env, tmp_path / "server.log")
    try:
        server.wait_ready(timeout=60)
        yield FuzzTarget(server, key)
    finally:
        if server.process.poll() is None:
            server.stop(timeout=30)
