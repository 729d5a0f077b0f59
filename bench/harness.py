"""What every benchmark needs: a fresh database, a tenant key, a server or the app, a table.

Benchmarks report speed; they assert nothing about it. Each compares with a ceiling
measured in the same run on the same machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import structlog
from fastapi.testclient import TestClient

from wms.app import create_app
from wms.config import Settings
from wms.domain.roles import Role
from wms.ops.secrets import api_key_pepper
from wms.services import tenants
from wms.store.embedded import EmbeddedPostgres, free_port
from wms.store.migrations import Migrator
from wms.store.partitions import ensure_movement_partitions
from wms.store.tenants import admin_connection

WMS_SERVER = str(Path(sys.executable).with_name("wms-server"))


# PostgreSQL's own default (128MB) is the embedded server's: right for a laptop, not for a
# warehouse's database, whose hot set (balances, products, locations: ~100 MB here) a
# production server keeps in its buffers while the history (GBs at 50x) does not fit.
SHARED_BUFFERS = os.environ.get("BENCH_SHARED_BUFFERS", "1GB")


@dataclass(frozen=True)
class BenchDatabase:
    """A migrated database on a fresh embedded PostgreSQL, and the folder it lives in."""

    url: str
    data_dir: Path


def log_warnings_only() -> None:
    """Keep this process's structured log (start-up, migrations, the app in-process) quiet."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


@contextlib.contextmanager
def fresh_database() -> Iterator[BenchDatabase]:
    """Start an embedded PostgreSQL in a temporary folder and migrate its ``wms`` database."""
    folder = Path(tempfile.mkdtemp(prefix="wms-bench-"))
    embedded = EmbeddedPostgres(folder / "data", max_connections=300, shared_buffers=SHARED_BUFFERS)
    url = embedded.start()
    try:
        Migrator(url).migrate()
        ensure_movement_partitions(url)
        yield BenchDatabase(url=url, data_dir=folder / "data")
    finally:
        embedded.stop()
        shutil.rmtree(folder, ignore_errors=True)


def admin_token(database: BenchDatabase, tenant: str = "bench") -> str:
    """Create a tenant with an admin key; return the key."""
    settings = Settings(database_url=database.url, data_dir=database.data_dir)
    with admin_connection(database.url) as conn:
        tenants.create_tenant(conn, tenant, tenant)
        return tenants.create_api_key(
            conn, api_key_pepper(settings), tenant_code=tenant, role=Role.ADMIN
        )


@dataclass
class Server:
    """``wms-server serve`` as production runs it: one process, its own pool."""

    process: subprocess.Popen[bytes]
    base_url: str

    def stop(self) -> None:
        """SIGTERM and wait."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


@contextlib.contextmanager
def running_server(database: BenchDatabase, **env: str) -> Iterator[Server]:
    """Start one server process on ``database``; rate limits, if any, are raised for the run."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": database.url,
        "WMS_DATA_DIR": str(database.data_dir),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "METRICS_PORT": "0",
        "LOG_LEVEL": "WARNING",
        "WMS_DRAIN_SECONDS": "0",
        "WMS_DB_POOL_MAX": "20",
        "WMS_STATEMENT_TIMEOUT_MS": "120000",
        **env,
    }
    log = (database.data_dir / "server.log").open("ab")
    process = subprocess.Popen([WMS_SERVER, "serve"], env=environment, stdout=log, stderr=log)
    server = Server(process, f"http://127.0.0.1:{port}")
    try:
        wait_ready(server.base_url)
        yield server
    finally:
        if process.poll() is None:
            server.stop()
        log.close()


POOL_MAX = 20
# Rate limits raised for the run: the benchmark measures the stack, not the limiter.
RAISED_LIMITS = {
    "WMS_RATE_LIMIT_RPS": "1000000",
    "WMS_RATE_LIMIT_BURST": "1000000",
    "WMS_TENANT_RATE_LIMIT_RPS": "1000000",
    "WMS_TENANT_RATE_LIMIT_BURST": "1000000",
}


# The benchmarks' servers: rate limits raised, pool ``POOL_MAX``.
BENCH_SERVER_ENV = {**RAISED_LIMITS, "WMS_DB_POOL_MAX": str(POOL_MAX)}


@contextlib.contextmanager
def bench_server(database: BenchDatabase, token: str) -> Iterator[tuple[Server, httpx.Client]]:
    """The benchmarks' server (rate limits raised, pool ``POOL_MAX``) and an admin client
    of its ``/api/v1``."""
    with (
        running_server(database, **BENCH_SERVER_ENV) as server,
        httpx.Client(
            base_url=server.base_url + "/api/v1",
            timeout=600,
            headers={"Authorization": f"Bearer {token}"},
        ) as client,
    ):
        yield server, client


@contextlib.contextmanager
def more_bench_servers(database: BenchDatabase, count: int) -> Iterator[list[Server]]:
    """``count`` more servers like ``bench_server``'s on ``database``: pods of one Deployment."""
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(running_server(database, **BENCH_SERVER_ENV)) for _ in range(count)
        ]


@dataclass
class InProcessClient:
    """The app in-process through HTTP (FastAPI's TestClient), as an admin of one tenant."""

    client: TestClient
    headers: dict[str, str]

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request to ``/api/v1`` + ``path``, with the admin key; any answer."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, "/api/v1" + path, headers=headers, **kwargs)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; its JSON body. Fails loudly on an unexpected status."""
        response = self.request(method, path, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json()


@contextlib.contextmanager
def in_process_client(
    database: BenchDatabase, token: str, **settings_overrides: Any
) -> Iterator[InProcessClient]:
    """``create_app`` on ``database`` (test environment, no metrics port) behind a TestClient.

    ``settings_overrides`` are further ``Settings`` fields.
    """
    settings = Settings(
        database_url=database.url,
        data_dir=database.data_dir,
        metrics_port=0,
        environment="test",
        **settings_overrides,
    )
    with TestClient(create_app(settings)) as client:
        yield InProcessClient(client, {"Authorization": f"Bearer {token}"})


def wait_ready(base_url: str, timeout: float = 60.0) -> None:
    """Block until ``/health/ready`` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/health/ready", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base_url} did not become ready")


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    """Seconds ``action`` took, and what it returned."""
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A plain aligned table on stdout."""
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(value.rjust(width) for value, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def print_best_runs(rows: int, results: dict[str, list[float]], ceiling: str) -> None:
    """One line per case of ``rows`` rows: best and median seconds, rows/s, best / best ceiling."""
    floor = min(results[ceiling])
    print()
    print_table(
        ["case", "rows", "best s", "median s", "rows/s", "× ceiling"],
        [
            [label, rows, min(runs), statistics.median(runs), rows / min(runs),
             f"{min(runs) / floor:.1f}"]
            for label, runs in results.items()
        ],
    )  # fmt: skip


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 100 else f"{value:.0f}"
    return str(value)
