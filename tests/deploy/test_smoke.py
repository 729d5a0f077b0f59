"""deploy/scripts/smoke-tests.sh against a live ``wms-server`` started as in tests/e2e.

The fulfilment part (waves, pick tasks, packages, shipments) runs when the server's
/openapi.json has those endpoints; until then it is skipped, naming what is missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy.conftest_infra import SCRIPTS
from tests.e2e.conftest import Launch, ServerProcess, launch, server_env  # noqa: F401

pytestmark = pytest.mark.slow

SCRIPT = SCRIPTS / "smoke-tests.sh"
WMS_SERVER = str(Path(sys.executable).with_name("wms-server"))
FULFILMENT = [
    ("post", "/api/v1/waves"),
    ("post", "/api/v1/waves/{id}/release"),
    ("get", "/api/v1/pick-tasks"),
    ("post", "/api/v1/pick-tasks/{id}/confirm"),
    ("post", "/api/v1/orders/{number}/packages"),
    ("post", "/api/v1/shipments"),
    ("post", "/api/v1/shipments/{id}/dispatch"),
]


@dataclass
class LiveServer:
    server: ServerProcess
    key: str


@pytest.fixture
def live(launch: Launch, tmp_path: Path) -> Iterator[LiveServer]:  # noqa: F811
    for needed in ("curl", "jq"):
        if shutil.which(needed) is None:
            pytest.skip(f"{needed} is not installed (the smoke script needs it)")
    env = server_env(tmp_path)
    server = launch(env)
    server.wait_ready(timeout=90)

    def cli(*args: str) -> str:
        result = subprocess.run(
            [WMS_SERVER, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    cli("tenant", "create", "smoke", "--name", "Smoke tests")
    key = cli("apikey", "create", "--tenant", "smoke", "--role", "admin").strip().splitlines()[-1]
    yield LiveServer(server, key)
    server.stop()


def run_smoke(live: LiveServer, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), live.server.base_url, live.key],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


def missing_fulfilment(live: LiveServer) -> list[str]:
    status, document = live.server.get("/openapi.json")
    assert status == 200, document
    assert isinstance(document, dict), document
    paths = document["paths"]
    return [
        f"{method.upper()} {path}"
        for method, path in FULFILMENT
        if method not in paths.get(path, {})
    ]


def test_smoke_walks_an_order_through_the_live_server(live: LiveServer) -> None:
    # Receiving, putaway and allocation always; the script must pass on them alone.
    inbound = run_smoke(live, SMOKE_STAGES="inbound", SMOKE_RUN_ID="inbound-1")
    assert inbound.returncode == 0, inbound.stdout + inbound.stderr
    assert "PASSED" in inbound.stdout
    missing = missing_fulfilment(live)
    if missing:
        pytest.skip(
            "fulfilment endpoints not in /openapi.json yet: "
            + ", ".join(missing)
            + " (the inbound and allocation part passed)"
        )
    full = run_smoke(live, SMOKE_RUN_ID="full-1")
    assert full.returncode == 0, full.stdout + full.stderr
    assert "order SMOKE-SO-full1 allocated" in full.stdout
    assert "shipped" in full.stdout
    assert full.stdout.rstrip().endswith("PASSED")


def test_smoke_fails_clearly_on_an_unexpected_status(live: LiveServer) -> None:
    result = subprocess.run(
        [str(SCRIPT), live.server.base_url, "wms_bad_key"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "POST /warehouses answered 401, expected 201" in result.stderr


def test_smoke_usage_error() -> None:
    result = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "usage" in result.stderr
