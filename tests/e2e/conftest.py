"""Run ``wms-server`` as a real process, the way a container or a developer runs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from wms.store.embedded import free_port

WMS_SERVER = str(Path(sys.executable).with_name("wms-server"))


@dataclass
class ServerProcess:
    """A running ``wms-server serve`` with its ports and log."""

    process: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, dict[str, object] | str]:
        """GET ``path``; return status and JSON body (or text)."""
        return http_get(f"{self.base_url}{path}", timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> float:
        """Wait for /health/ready = 200; return the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}:\n{self.log()}")
            try:
                status, _ = self.get("/health/ready", timeout=1.0)
            except OSError:
                status = 0
            if status == 200:
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"not ready within {timeout} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def child_pid(self) -> int:
        """Pid of the process a wrapper (bwrap) started, to signal it as a container would."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return int(children[0])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, dict[str, object] | str]:
    """GET a URL with the standard library; HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment for a server process: free ports, data in ``tmp_path``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WMS_", "DATABASE_")) and key not in {"PORT", "METRICS_PORT"}
    }
    env.update(
        {
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
            "METRICS_PORT": str(free_port()),
            "WMS_DATA_DIR": str(tmp_path / "data"),
            "WMS_DRAIN_SECONDS": "1",
            "ENVIRONMENT": "test",
        }
    )
    env.update(extra)
    return env


def start_server(
    env: dict[str, str], log_path: Path, command: list[str] | None = None
) -> ServerProcess:
    """Start ``wms-server serve`` (or ``command``) with ``env``, logging to ``log_path``."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command or [WMS_SERVER, "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return ServerProcess(
        process=process,
        port=int(env["PORT"]) if env["PORT"].isdigit() else 0,
        metrics_port=int(env["METRICS_PORT"]) if env["METRICS_PORT"].isdigit() else 0,
        log_path=log_path,
        env=env,
    )


Launch = Callable[..., ServerProcess]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """``launch(env, command=None)`` starts a server; leftovers are killed afterwards."""
    started: list[ServerProcess] = []

    def _launch(env: dict[str, str], command: list[str] | None = None) -> ServerProcess:
        server = start_server(env, tmp_path / f"server-{len(started)}.log", command)
        started.append(server)
        return server

    yield _launch
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()


def postgres_pids(pgdata: Path) -> list[int]:
    """Pids of the postmasters whose command line names ``pgdata``.

    A child the postmaster has just forked carries the postmaster's command line until it
    sets its own title ("postgres: checkpointer", a backend's): such children (their
    parent is in the list) are left out, or a connection opened at the wrong instant
    shows up as a second PostgreSQL (it failed CI once).
    """
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if cmdline and cmdline[0].endswith(b"postgres") and str(pgdata).encode() in cmdline:
            parents[int(proc.name)] = ppid
    return sorted(pid for pid, ppid in parents.items() if ppid not in parents)


def has_bubblewrap() -> bool:
    return shutil.which("bwrap") is not None
