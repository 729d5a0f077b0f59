"""post-deploy-checks.sh against a fake kubectl, a fake helm and a fake Prometheus.

The fakes are real processes: shell scripts on PATH that log their arguments, and an
HTTP server on loopback that answers /health/ready and Prometheus' /api/v1/query.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.deploy.conftest_infra import SCRIPTS

SCRIPT = SCRIPTS / "post-deploy-checks.sh"

FAKE_KUBECTL = """#!/usr/bin/env bash
echo "kubectl $*" >> "$FAKE_LOG"
case "$1 $2" in
  "get deployments") printf 'deployment.apps/wms-api\\ndeployment.apps/wms-worker\\n' ;;
  "rollout status") exit "${FAKE_ROLLOUT_RC:-0}" ;;
  *) echo "unexpected kubectl $*" >&2; exit 3 ;;
esac
"""

FAKE_HELM = """#!/usr/bin/env bash
echo "helm $*" >> "$FAKE_LOG"
"""

FAKE_SMOKE = """#!/usr/bin/env bash
echo "smoke $*" >> "$FAKE_LOG"
exit "${FAKE_SMOKE_RC:-0}"
"""


@dataclass
class FakePrometheus:
    """Answers the error-ratio query with ``ratio`` (None: an empty result)."""

    ratio: str | None = "0"
    ready_status: int = 200
    queries: list[str] = field(default_factory=list)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/health/ready":
                    self.reply(fake.ready_status, {"status": "ok"})
                elif url.path == "/api/v1/query":
                    query = parse_qs(url.query)["query"][0]
                    fake.queries.append(query)
                    result: list[Any] = []
                    if fake.ratio is not None:
                        result = [{"metric": {}, "value": [1_700_000_000.0, fake.ratio]}]
                    self.reply(
                        200,
                        {"status": "success", "data": {"resultType": "vector", "result": result}},
                    )
                else:
                    self.reply(404, {"status": "error"})

            def reply(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


@dataclass
class Harness:
    tmp_path: Path
    prometheus: FakePrometheus
    url: str

    @property
    def log(self) -> list[str]:
        path = self.tmp_path / "calls.log"
        return path.read_text().splitlines() if path.exists() else []

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        bin_dir = self.tmp_path / "bin"
        environment = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "FAKE_LOG": str(self.tmp_path / "calls.log"),
            "NAMESPACE": "wms-prod",
            "RELEASE": "wms",
            "BASE_URL": self.url,
            "PROMETHEUS_URL": self.url,
            "SMOKE_API_KEY": "wms_smoke_key",
            "SMOKE_SCRIPT": str(bin_dir / "smoke"),
            "SETTLE_SECONDS": "0",
            "READY_ATTEMPTS": "2",
            "READY_INTERVAL": "0",
            **env,
        }
        return subprocess.run(
            ["bash", str(SCRIPT)],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("kubectl", FAKE_KUBECTL), ("helm", FAKE_HELM), ("smoke", FAKE_SMOKE)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    prometheus = FakePrometheus()
    server = ThreadingHTTPServer(("127.0.0.1", 0), prometheus.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Harness(tmp_path, prometheus, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


def rollbacks(harness: Harness) -> list[str]:
    return [line for line in harness.log if line.startswith("helm rollback")]


def test_script_is_strict_and_valid_bash() -> None:
    text = SCRIPT.read_text()
    assert "set -euo pipefail" in text
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_healthy_deploy_passes_without_rollback(harness: Harness) -> None:
    harness.prometheus.ratio = "0.0004"
    result = harness.run()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout
    log = harness.log
    assert (
        "kubectl rollout status deployment.apps/wms-api --namespace wms-prod --timeout 300s" in log
    )
    assert any(line.startswith("kubectl rollout status deployment.apps/wms-worker") for line in log)
    assert f"smoke {harness.url} wms_smoke_key" in log
    assert not rollbacks(harness)
    (query,) = harness.prometheus.queries
    assert 'status=~"5.."' in query
    assert "[5m]" in query
    assert "http_requests_total" in query
    assert "up{" not in query


def test_bad_error_ratio_rolls_back_and_fails(harness: Harness) -> None:
    harness.prometheus.ratio = "0.2"
    result = harness.run()
    assert result.returncode == 1
    assert "error ratio 0.2 is above 0.01" in result.stdout
    assert rollbacks(harness) == ["helm rollback wms 0 --namespace wms-prod --wait --timeout 10m"]


def test_no_traffic_is_a_failure_not_a_pass(harness: Harness) -> None:
    harness.prometheus.ratio = None
    result = harness.run()
    assert result.returncode == 1
    assert "metrics not scraped" in result.stdout
    assert len(rollbacks(harness)) == 1


def test_failed_rollout_rolls_back_before_anything_else(harness: Harness) -> None:
    result = harness.run(FAKE_ROLLOUT_RC="1")
    assert result.returncode == 1
    assert "rollout did not complete" in result.stdout
    assert len(rollbacks(harness)) == 1
    assert not harness.prometheus.queries
    assert not any(line.startswith("smoke") for line in harness.log)


def test_failed_smoke_test_rolls_back(harness: Harness) -> None:
    result = harness.run(FAKE_SMOKE_RC="1")
    assert result.returncode == 1
    assert "smoke test failed" in result.stdout
    assert len(rollbacks(harness)) == 1


def test_unready_service_rolls_back(harness: Harness) -> None:
    harness.prometheus.ready_status = 503
    result = harness.run()
    assert result.returncode == 1
    assert "health/ready did not answer 200" in result.stdout
    assert len(rollbacks(harness)) == 1


def test_rollback_can_be_turned_off(harness: Harness) -> None:
    harness.prometheus.ratio = "0.5"
    result = harness.run(ROLLBACK_ON_FAILURE="false")
    assert result.returncode == 1
    assert not rollbacks(harness)


def test_shellcheck_clean_when_installed() -> None:
    import shutil

    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (Debian package shellcheck)")
    result = subprocess.run(
        [shellcheck, *sorted(str(p) for p in SCRIPTS.glob("*.sh"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
