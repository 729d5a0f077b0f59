"""``wms-server tenant`` and ``apikey`` against a real database, in-process."""

from __future__ import annotations

import http.server
import threading

import pytest
from fastapi.testclient import TestClient

from wms.cli import cli, run_cli
from wms.config import Settings
from wms.services import tenants


def run(argv: list[str]) -> int:
    return run_cli(cli.main, argv)


def test_tenant_and_key_lifecycle(
    cli_env: Settings, capsys: pytest.CaptureFixture[str], test_client: TestClient
) -> None:
    assert run(["tenant", "create", "acme", "--name", "ACME Retail"]) == 0
    assert capsys.readouterr().out == "acme\n"

    assert run(["tenant", "create", "acme", "--name", "Again"]) == 1
    assert capsys.readouterr().err == "wms-server: tenant acme already exists\n"

    assert (
        run(["apikey", "create", "--tenant", "acme", "--role", "supervisor", "--name", "ci"]) == 0
    )
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("wms_")
    key_id, secret = token.split("_")[1], token.split("_", 2)[2]

    headers = {"Authorization": f"Bearer {token}"}
    assert test_client.get("/api/v1/warehouses", headers=headers).status_code == 200

    assert run(["apikey", "list", "--tenant", "acme"]) == 0
    listing = capsys.readouterr().out
    assert key_id in listing
    assert "supervisor" in listing
    assert secret not in listing

    assert run(["apikey", "revoke", key_id]) == 0
    assert capsys.readouterr().out == f"revoked {key_id}\n"
    assert test_client.get("/api/v1/warehouses", headers=headers).status_code == 401

    assert run(["apikey", "revoke", key_id]) == 1
    assert "no active API key" in capsys.readouterr().err


def test_key_commands_name_an_unknown_tenant_or_role_in_one_line(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["apikey", "create", "--tenant", "ghost", "--role", "admin"]) == 1
    assert capsys.readouterr().err == "wms-server: no tenant ghost\n"
    assert run(["apikey", "create", "--tenant", "ghost", "--role", "emperor"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "emperor" in err


def test_an_expiry_date_is_accepted_and_shown(
    cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    run(["tenant", "create", "exp", "--name", "Expiring"])
    assert run(["apikey", "create", "--tenant", "exp", "--role", "readonly",
                "--expires", "2030-01-31"]) == 0  # fmt: skip
    capsys.readouterr()
    run(["apikey", "list", "--tenant", "exp"])
    assert "2030-01-31 00:00:00+00:00" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("code", "name", "named"),
    [
        ("has space", "Fine", "tenant code"),
        ("x" * 64, "Fine", "tenant code"),
        ("ok-code", "", "tenant name"),
        ("ok-code", "n" * 201, "tenant name"),
        ("ok-code", "a\x00b", "NUL"),
    ],
)
def test_tenant_create_with_a_bad_code_or_name_is_one_line(
    cli_env: Settings,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    *,
    code: str,
    name: str,
    named: str,
) -> None:
    # The tenants table's CHECK refused them: a psycopg CheckViolation traceback.
    assert run(["tenant", "create", code, "--name", name]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("wms-server: ")
    assert named in line
    # A value past the service's check: the database's refusal is one line as well.
    monkeypatch.setattr(tenants, "check_tenant", lambda code, name: None)
    assert run(["tenant", "create", code, "--name", name]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("wms-server: the database refused the value: ")


@pytest.mark.parametrize(
    "expires", ["9999-12-31T23:59:59-05:00", "9999-12-31T12:00:00+00:00", "2001-01-01"]
)
def test_an_expiry_past_9999_in_utc_or_in_the_past_is_refused_and_nothing_stored(
    cli_env: Settings, capsys: pytest.CaptureFixture[str], expires: str
) -> None:
    # Year 10000 in UTC was stored, and psycopg could not read it back: `apikey list` failed.
    assert run(["tenant", "create", "far", "--name", "Far future"]) == 0
    capsys.readouterr()
    code = run(["apikey", "create", "--tenant", "far", "--role", "readonly",
                "--expires", expires])  # fmt: skip
    [line] = capsys.readouterr().err.splitlines()
    assert code == 2, line
    assert "--expires" in line
    assert run(["apikey", "list", "--tenant", "far"]) == 0
    assert capsys.readouterr().out.count("\n") == 1  # the header: no key was stored


@pytest.mark.parametrize("url", ["health/live", "http://[::1/health/live", "http://h:port/"])
def test_health_with_a_malformed_url_is_one_line(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # urlopen's ValueError escaped as a traceback.
    assert run(["health", "--url", url]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("wms-server: ")
    assert "--url" in line


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf"])
def test_health_with_a_bad_timeout_is_one_line(
    timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A negative or NaN timeout reached the socket and ended in a traceback.
    code = run(["health", "--url", "http://127.0.0.1:9/health/live", "--timeout", timeout])
    [line] = capsys.readouterr().err.splitlines()
    assert code == 2, line
    assert line.startswith("wms-server: ")
    assert "--timeout" in line


class _Live(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health/live" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_health_asks_the_address_the_server_listens_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # With HOST=127.0.0.2 (a pod IP) health still asked 127.0.0.1: a live server "unhealthy".
    server = http.server.HTTPServer(("127.0.0.2", 0), _Live)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("HOST", "127.0.0.2")
        monkeypatch.setenv("PORT", str(server.server_address[1]))
        assert run(["health"]) == 0, capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()
    assert capsys.readouterr().out == "healthy\n"
