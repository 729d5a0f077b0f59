"""What every drill does with the service: provision it, run it, write orders and log acks.

The order writer is the client whose log of acknowledged commits the drills count
losses from: an order counts as acknowledged only when the server answered 201 (or 200,
a replay of the same ``Idempotency-Key``). An order that got no acknowledgement is
retried with the same key until it does, as a careful integrator would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from wms.store.embedded import free_port

WMS_SERVER = str(Path(sys.executable).with_name("wms-server"))
TENANT = "drill"
ACKED = frozenset({200, 201})


def service_env(database_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Environment of ``wms-server`` on ``database_url`` (one or several hosts)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WMS_", "DATABASE_")) and key not in {"PORT", "METRICS_PORT"}
    }
    env.update(
        {
            "DATABASE_URL": database_url,
            "WMS_DATA_DIR": str(data_dir),
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
            "METRICS_PORT": "0",
            "ENVIRONMENT": "test",
            "LOG_LEVEL": "WARNING",
            "WMS_DRAIN_SECONDS": "0",
            # The drill's writers are one credential sending as fast as answers come.
            "WMS_RATE_LIMIT_RPS": "10000",
            "WMS_RATE_LIMIT_BURST": "10000",
            "WMS_TENANT_RATE_LIMIT_RPS": "10000",
            "WMS_TENANT_RATE_LIMIT_BURST": "10000",
        }
    )
    env.update(extra)
    return env


def wms_cli(env: dict[str, str], *args: str) -> str:
    """Run a ``wms-server`` command; its stdout. Fails with its output."""
    result = subprocess.run(
        [WMS_SERVER, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"wms-server {' '.join(args)}: {result.stdout}{result.stderr}")
    return result.stdout


def provision(env: dict[str, str]) -> str:
    """Migrate, create the drill's tenant and an admin key; return the key."""
    wms_cli(env, "migrate")
    wms_cli(env, "tenant", "create", TENANT, "--name", "Drill")
    return wms_cli(env, "apikey", "create", "--tenant", TENANT, "--role", "admin").splitlines()[-1]


@dataclass
class Server:
    """A ``wms-server serve`` process."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @classmethod
    def start(cls, env: dict[str, str], log_path: Path) -> Server:
        """Start ``wms-server serve`` with ``env``, logging to ``log_path``."""
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [WMS_SERVER, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        return cls(process, f"http://127.0.0.1:{env['PORT']}", log_path)

    def ready(self) -> tuple[int, str | None]:
        """``/health/ready``: status code and database role (0 and None: no answer)."""
        try:
            response = httpx.get(f"{self.base_url}/health/ready", timeout=3.0)
        except httpx.HTTPError:
            return 0, None
        return response.status_code, response.json()["checks"]["database"]["role"]

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait for ``/health/ready`` 200; the seconds it took."""
        started = time.monotonic()
        while self.ready()[0] != 200:
            if self.process.poll() is not None:
                raise RuntimeError(f"wms-server exited:\n{self.log_path.read_text()[-2000:]}")
            if time.monotonic() - started > timeout:
                raise RuntimeError(
                    f"not ready in {timeout} s:\n{self.log_path.read_text()[-2000:]}"
                )
            time.sleep(0.05)
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL, as when its host dies."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def seed(base_url: str, key: str) -> None:
    """The warehouse and product the drill's orders name."""
    headers = {"Authorization": f"Bearer {key}"}
    for path, body in [
        ("/api/v1/warehouses", {"code": "SP1", "name": "Drill", "timezone": "UTC"}),
        ("/api/v1/products", {"sku": "SKU-1", "description": "Drill widget"}),
    ]:
        response = httpx.post(base_url + path, json=body, headers=headers, timeout=10)
        if response.status_code != 201:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")


def order_body(number: str) -> dict[str, object]:
    """A one-line ``POST /orders`` body."""
    return {
        "number": number,
        "warehouse": "SP1",
        "carrier": "CORREIOS",
        "ship_to": {"name": "Ana", "line1": "Rua A 1", "city": "São Paulo",
                    "postal_code": "01000-000", "country": "BR"},
        "lines": [{"sku": "SKU-1", "quantity": 1}],
    }  # fmt: skip


@dataclass(frozen=True)
class Attempt:
    """One ``POST /orders``: when it was answered, for which order, with what status."""

    at: float
    number: str
    status: int  # 0: no HTTP answer (connection refused, reset, timeout)


@dataclass
class OrderWriter:
    """Threads posting orders continuously; each keeps a log of acknowledged orders."""

    base_url: str
    key: str
    writers: int = 2
    attempts: list[Attempt] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Start the writer threads."""
        for index in range(self.writers):
            thread = threading.Thread(target=self._write, args=(f"W{index}",), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop and join the writers (an order being retried stays unacknowledged)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _write(self, prefix: str) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=5.0) as client:
            sequence = 0
            while not self._stop.is_set():
                number = f"{prefix}-{sequence:06d}"
                try:
                    response = client.post(
                        "/api/v1/orders",
                        json=order_body(number),
                        headers={"Idempotency-Key": number},
                    )
                    status = response.status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self.attempts.append(Attempt(time.monotonic(), number, status))
                    if status in ACKED:
                        self.acked.append(number)
                if status in ACKED:
                    sequence += 1
                else:
                    time.sleep(0.05)  # then the same order again, with the same key

    def outage(self, since: float) -> tuple[float | None, float | None, float | None]:
        """First failed answer after ``since``, the first success after it, and the gap (s)."""
        with self._lock:
            ordered = sorted((a for a in self.attempts if a.at >= since), key=lambda a: a.at)
        first_failure = next((a.at for a in ordered if a.status not in ACKED), None)
        if first_failure is None:
            return None, None, 0.0
        recovered = next(
            (a.at for a in ordered if a.at > first_failure and a.status in ACKED), None
        )
        gap = None if recovered is None else recovered - first_failure
        return first_failure, recovered, gap

    def statuses(self, since: float) -> dict[int, int]:
        """How many answers of each status came after ``since``."""
        counts: dict[int, int] = {}
        with self._lock:
            for attempt in self.attempts:
                if attempt.at >= since:
                    counts[attempt.status] = counts.get(attempt.status, 0) + 1
        return counts


def table(title: str, rows: list[tuple[str, object]]) -> str:
    """A two-column text table of a drill's figures."""
    width = max(len(name) for name, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"{name.ljust(width)}  {value}" for name, value in rows]
    return "\n".join(lines)


@contextlib.contextmanager
def drill_folder(name: str, *, keep: bool) -> Iterator[Path]:
    """A temporary folder for one drill's clusters and logs; removed after unless ``keep``."""
    root = Path(tempfile.mkdtemp(prefix=f"wms-drill-{name}-"))
    try:
        yield root
    finally:
        if keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
