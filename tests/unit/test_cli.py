"""The command line's failure modes, run in-process through the console script's wrapper."""

from __future__ import annotations

import pytest

from wms.cli import cli, run_cli


def run(argv: list[str]) -> int:
    return run_cli(cli.main, argv)


def test_help_exits_zero_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["serve", "--help"], ["health", "--help"], ["migrate", "--help"]):
        assert run(argv) == 0
    assert "migrate" in capsys.readouterr().out


def test_an_unknown_command_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("wms-server: No such command 'frobnicate'")


def test_an_unknown_option_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["serve", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--bogus" in err


def test_bad_configuration_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORT", "abc")
    assert run(["serve"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "wms-server: configuration error: PORT: Input should be a valid integer, "
        "unable to parse string as an integer (got 'abc')\n"
    )


def test_health_fails_when_nothing_answers(capsys: pytest.CaptureFixture[str]) -> None:
    from wms.store.embedded import free_port

    url = f"http://127.0.0.1:{free_port()}/health/live"
    assert run(["health", "--url", url, "--timeout", "0.5"]) == 1
    assert capsys.readouterr().err.startswith("wms-server: unhealthy:")


def test_the_embedded_database_never_takes_a_port_the_server_is_about_to_bind() -> None:
    from wms.store.embedded import free_port

    # Every port of the range but one is the server's: the pick is that one, or outside
    # the range, never a server port (the server binds only after PostgreSQL started).
    server_ports = frozenset(range(20000, 32768)) - {25001}
    for _ in range(20):
        assert free_port(avoid=server_ports) not in server_ports
