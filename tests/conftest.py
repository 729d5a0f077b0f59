"""Shared fixtures: a real PostgreSQL per xdist worker and a migrated database per test.

Without ``WMS_TEST_DATABASE_URL`` each worker starts its own embedded PostgreSQL on a
free port with ``max_connections`` = 300. With it (a URL of any database on another
server, e.g. the machine's PostgreSQL 15), throwaway databases are created there.
Every test that needs a schema gets a fresh clone of a template database migrated
once per worker, so tests never see each other's rows.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from tests.event_check import check_outbox
from wms.app import create_app
from wms.config import Settings
from wms.domain.roles import Role
from wms.ops.secrets import api_key_pepper
from wms.services import tenants
from wms.store.embedded import EmbeddedPostgres
from wms.store.migrations import Migrator
from wms.store.tenants import admin_connection


@dataclass
class PostgresServer:
    """A PostgreSQL server the tests may create and drop databases on."""

    maintenance_url: str

    def url_for(self, database: str) -> str:
        """URL of ``database`` on this server, with the maintenance URL's credentials."""
        params = conninfo_to_dict(self.maintenance_url)
        user = quote(str(params.get("user", "postgres")), safe="")
        password = params.get("password")
        auth = f"{user}:{quote(str(password), safe='')}" if password else user
        host = params.get("host", "127.0.0.1")
        port = params.get("port", "5432")
        return f"postgresql://{auth}@{host}:{port}/{quote(database, safe='')}"

    def create_database(self, *, template: str | None = None, prefix: str = "wms_t") -> str:
        """Create a new database (optionally a clone of ``template``) and return its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        with psycopg.connect(self.maintenance_url, autocommit=True) as conn:
            conn.execute(query)
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, ending its sessions."""
        with psycopg.connect(self.maintenance_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """The PostgreSQL of this test worker."""
    external = os.environ.get("WMS_TEST_DATABASE_URL")
    if external:
        yield PostgresServer(maintenance_url=external)
        return
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), max_connections=300)
    embedded.start()
    try:
        yield PostgresServer(maintenance_url=embedded.url_for("postgres"))
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def template_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A database with every migration applied, cloned by ``database_url``."""
    name = postgres_server.create_database(prefix="wms_tpl")
    Migrator(postgres_server.url_for(name)).migrate()
    yield name
    postgres_server.drop_database(name)


@pytest.fixture
def database_url(postgres_server: PostgresServer, template_database: str) -> Iterator[str]:
    """URL of a fresh, fully migrated database of this test alone."""
    name = postgres_server.create_database(template=template_database)
    url = postgres_server.url_for(name)
    yield url
    try:
        check_outbox(url)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    """The environment an in-process ``wms-server`` command reads: this test's database."""
    assert settings.database_url is not None
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("WMS_DATA_DIR", str(settings.data_dir))
    return settings


@pytest.fixture
def empty_database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh database with nothing in it (for migration tests)."""
    name = postgres_server.create_database()
    yield postgres_server.url_for(name)
    postgres_server.drop_database(name)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings of a server on this test's database, without a metrics port."""
    return Settings(
        database_url=database_url,
        metrics_port=0,
        data_dir=tmp_path / "data",
        environment="test",
        auth_cache_seconds=0,  # revocations take effect at once in tests
    )


@dataclass
class TenantKeys:
    """A tenant made for one test, with an API key per role."""

    code: str
    tenant_id: int
    keys: dict[Role, str]


@pytest.fixture
def make_tenant(settings: Settings) -> Callable[[], TenantKeys]:
    """``make_tenant()`` creates a tenant with one key per role (through the admin role)."""
    assert settings.database_url is not None
    pepper = api_key_pepper(settings)

    def _make() -> TenantKeys:
        code = f"t{uuid.uuid4().hex[:10]}"
        with admin_connection(settings.database_url) as conn:  # type: ignore[arg-type]
            tenant_id = tenants.create_tenant(conn, code, f"Tenant {code}")
            keys = {
                role: tenants.create_api_key(conn, pepper, tenant_code=code, role=role)
                for role in Role
            }
        return TenantKeys(code, tenant_id, keys)

    return _make


class ApiClient:
    """A TestClient speaking as one credential: ``api.post("/warehouses", json=...)``."""

    def __init__(self, client: TestClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def as_key(self, token: str | None) -> ApiClient:
        """The same app, another credential (None: no Authorization header)."""
        return ApiClient(self.client, token)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send ``method path`` under ``/api/v1`` with this client's credential."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        url = (
            path
            if path.startswith("/") and path.startswith(("/api/", "/health"))
            else ("/api/v1" + path)
        )
        return self.client.request(method, url, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)


@pytest.fixture
def test_client(settings: Settings) -> Iterator[TestClient]:
    """The app in-process on this test's database, lifespan running."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def tenant(make_tenant: Callable[[], TenantKeys]) -> TenantKeys:
    """A fresh tenant with a key per role."""
    return make_tenant()


@pytest.fixture
def api(test_client: TestClient, tenant: TenantKeys) -> ApiClient:
    """An admin of a fresh tenant, talking to the in-process app."""
    return ApiClient(test_client, tenant.keys[Role.ADMIN])


# The broker and redis-server fixtures of the event and cache tests.
pytest_plugins = ["tests.integration.kafka_fixtures"]


def sessions_waiting_for_a_lock(url: str) -> int:
    """Sessions of this database waiting for a lock: a table's, or a row's (whose waiter
    waits for the holder's transaction id, which ``pg_locks`` lists without a database).
    Other databases of the test server (other xdist workers') do not count."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def until_sessions_wait_for_locks(url: str, count: int, what: str) -> None:
    """Return once ``count`` sessions of this database wait for a lock (10 s at most)."""
    deadline = time.monotonic() + 10
    while sessions_waiting_for_a_lock(url) < count:
        assert time.monotonic() < deadline, f"{what}: {count} lock wait(s) never came"
        time.sleep(0.02)
