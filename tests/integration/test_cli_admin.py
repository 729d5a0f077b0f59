"""``wms-server tenant`` and ``apikey`` against a real database, in-process."""

from __future__ import annotations

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
