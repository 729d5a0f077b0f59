"""``wms-server serve`` as a process on an existing database (the container's way)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.e2e.conftest import WMS_SERVER, Launch, has_bubblewrap, http_get, server_env
from wms.store.embedded import free_port

pytestmark = pytest.mark.slow
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_health_command_exits_zero_against_a_running_server_and_non_zero_after(
    launch: Launch, database_url: str, tmp_path: Path
) -> None:
    server = launch(server_env(tmp_path, DATABASE_URL=database_url))
    server.wait_ready()
    healthy = subprocess.run(
        [WMS_SERVER, "health"], env=server.env, capture_output=True, text=True, check=False
    )
    assert healthy.returncode == 0, healthy.stderr
    assert server.stop() == 0
    unhealthy = subprocess.run(
        [WMS_SERVER, "health"], env=server.env, capture_output=True, text=True, check=False
    )
    assert unhealthy.returncode != 0
    assert unhealthy.stderr.startswith("wms-server: unhealthy:")


def test_a_slow_request_in_flight_at_sigterm_completes_while_ready_is_already_503(
    launch: Launch, database_url: str, tmp_path: Path
) -> None:
    server = launch(server_env(tmp_path, DATABASE_URL=database_url, WMS_DRAIN_SECONDS="2"))
    server.wait_ready()
    slow_result: dict[str, object] = {}
    with psycopg.connect(database_url) as blocker:
        # Hold a lock the readiness query needs, so one request stays in flight.
        blocker.execute("LOCK TABLE wms.flyway_schema_history IN ACCESS EXCLUSIVE MODE")

        def slow_request() -> None:
            slow_result["answer"] = server.get("/health/ready", timeout=30)

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.5)
        assert thread.is_alive(), "the request was expected to wait on the lock"
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        status, body = server.get("/health/ready")
        assert status == 503
        assert isinstance(body, dict)
        assert body["checks"]["draining"] is True  # type: ignore[index]
        assert server.get("/health/live")[0] == 200  # still serving during the drain
        time.sleep(1.0)
        blocker.rollback()  # release the lock: the in-flight request may now finish
    thread.join(timeout=30)
    assert slow_result["answer"][0] == 200  # type: ignore[index]
    assert server.process.wait(timeout=30) == 0
    assert "drain_started" in server.log()


def test_metrics_port_shows_both_families_by_route_template_after_a_404(
    launch: Launch, database_url: str, tmp_path: Path
) -> None:
    server = launch(server_env(tmp_path, DATABASE_URL=database_url))
    server.wait_ready()
    for _ in range(4):
        assert server.get("/health/live")[0] == 200
    assert server.get("/orders/SO-1/whatever")[0] == 404
    # Routed on the raw path by uvicorn too: a SKU holding an encoded slash finds its
    # route (401 without a credential, labelled by its template), an unencoded one not.
    assert server.get("/api/v1/products/CABLE-1%2F2")[0] == 401
    assert server.get("/api/v1/products/CABLE-1/2")[0] == 404
    status, text = http_get(f"http://127.0.0.1:{server.metrics_port}/metrics")
    assert status == 200
    assert isinstance(text, str)
    # One process per container: the counts are exact, not per-worker fragments.
    assert 'http_requests_total{method="GET",route="/health/live",status="200"} 4.0' in text
    assert 'http_requests_total{method="GET",route="<unmatched>",status="404"} 2.0' in text
    assert 'http_requests_total{method="GET",route="/api/v1/products/{sku}",status="401"}' in text
    assert re.search(
        r'http_request_duration_seconds_bucket\{le="0.005",method="GET",route="/health/live"\}',
        text,
    )
    assert "SO-1" not in text
    assert "CABLE" not in text
    assert "process_resident_memory_bytes" in text
    assert 'wms_db_pool_connections{pool="primary"}' in text
    # The API port does not serve metrics (the ingress routes it).
    assert server.get("/metrics")[0] == 404


def test_logs_are_json_lines_with_the_request_id(
    launch: Launch, database_url: str, tmp_path: Path
) -> None:
    import json
    import urllib.request

    server = launch(server_env(tmp_path, DATABASE_URL=database_url))
    server.wait_ready()
    request = urllib.request.Request(
        f"{server.base_url}/health/live", headers={"X-Request-ID": "trace-me-42"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers["X-Request-ID"] == "trace-me-42"
    assert server.stop() == 0
    lines = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    assert any(
        line.get("request_id") == "trace-me-42" and line.get("route") == "/health/live"
        for line in lines
    )
    password = re.search(r":([^:@/]+)@", database_url)
    assert password is None or password.group(1) not in server.log()


def test_an_unreachable_database_url_is_one_clear_line_and_non_zero_exit(
    launch: Launch, tmp_path: Path
) -> None:
    url = f"postgresql://wms:topsecret@127.0.0.1:{free_port()}/wms"
    server = launch(server_env(tmp_path, DATABASE_URL=url, WMS_DB_CONNECT_TIMEOUT_SECONDS="1"))
    assert server.process.wait(timeout=30) == 1
    log = server.log()
    assert log.strip().splitlines()[-1].startswith("wms-server: cannot connect to the database")
    assert "topsecret" not in log
    assert "Traceback" not in log


def test_a_bad_port_is_one_line_and_exit_2(launch: Launch, tmp_path: Path) -> None:
    server = launch(server_env(tmp_path, PORT="abc"))
    assert server.process.wait(timeout=30) == 2
    assert server.log().strip().splitlines() == [
        "wms-server: configuration error: PORT: Input should be a valid integer, "
        "unable to parse string as an integer (got 'abc')"
    ]


@pytest.mark.skipif(not has_bubblewrap(), reason="bubblewrap (bwrap) is not installed")
def test_serves_ready_with_a_read_only_root_filesystem_as_uid_1000(
    launch: Launch, database_url: str, tmp_path: Path
) -> None:
    """The container's constraints without a container: read-only /, tmpfs /tmp, uid 1000.

    bwrap maps uid 1000 in a user namespace with every capability dropped; files stay
    readable as on the host, so this proves where the server writes, not file modes.
    """
    env = server_env(tmp_path, DATABASE_URL=database_url, WMS_DATA_DIR="/tmp/wms")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [
        "bwrap",
        "--ro-bind", "/", "/",
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        # The checkout (and its .venv) may itself live under /tmp: keep it visible.
        "--ro-bind", str(PROJECT_ROOT), str(PROJECT_ROOT),
        "--unshare-user", "--uid", "1000", "--gid", "1000",
        "--die-with-parent",
        "--cap-drop", "ALL",
        "--chdir", "/tmp",
        "--",
        WMS_SERVER, "serve",
    ]  # fmt: skip
    server = launch(env, command)
    server.wait_ready()
    status, body = server.get("/health/ready")
    assert status == 200
    assert body["checks"]["database"]["status"] == "ok"  # type: ignore[index]
    probe = subprocess.run(
        ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--tmpfs", "/tmp",
         "--unshare-user", "--uid", "1000", "--gid", "1000", "--",
         "sh", "-c", "id -u; touch /etc/wms-probe"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert probe.stdout.strip() == "1000"
    assert "Read-only file system" in probe.stderr
    # bwrap does not forward signals; a container runtime signals the server itself.
    os.kill(server.child_pid(), signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0


def test_secrets_never_reach_the_logs(launch: Launch, database_url: str, tmp_path: Path) -> None:
    """Passwords in URLs, the pepper, API keys and bearer tokens stay out of every log line."""
    import urllib.error
    import urllib.request

    password = "Pw-" + "q7Zr9xK2"
    pepper = "pepper-" + "x" * 40
    with_password = database_url.replace("postgres@", f"postgres:{password}@", 1)
    env = server_env(tmp_path, DATABASE_URL=with_password, WMS_API_KEY_PEPPER=pepper,
                     LOG_LEVEL="DEBUG")  # fmt: skip
    server = launch(env)
    server.wait_ready()
    from wms.domain.roles import Role
    from wms.services import tenants
    from wms.store.tenants import admin_connection

    with admin_connection(database_url) as conn:
        tenants.create_tenant(conn, "logs", "Logs")
        key = tenants.create_api_key(conn, pepper.encode(), tenant_code="logs", role=Role.ADMIN)
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    for token in (key, key[:-4] + "AAAA", jwt_like):
        request = urllib.request.Request(
            f"{server.base_url}/api/v1/warehouses", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()
        except urllib.error.HTTPError as exc:
            exc.close()
    assert server.stop() == 0
    log = server.log()
    assert '"route": "/api/v1/warehouses"' in log  # the requests were logged...
    secret = key.split("_", 2)[2]
    for leaked in (password, pepper, secret, jwt_like):
        assert leaked not in log  # ...without any secret
