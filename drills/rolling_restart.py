"""Rolling-restart drill: three ``wms-server`` behind nginx, restarted one by one under load.

One PostgreSQL (the embedded one) shared by three real ``wms-server serve`` processes, a
local nginx (Debian's package, run by the drill with its own config on a free port, never
the system service) balancing them, and client threads that read (``GET /inventory``,
``GET /warehouses``) and write (``POST /orders``, ``POST /inventory/adjustments``, each
with its own ``Idempotency-Key``) for the whole roll. A write that gets no answer or a
502/503/504/409 ``request-in-progress`` is sent again with the same key (the API's
contract); a read is simply sent again. Each server is then restarted as Kubernetes does:
its endpoint is removed (upstream marked ``down``, nginx reloaded, old workers gone),
SIGTERM, the drain window, exit 0, a new process on the same port, ``/health/ready`` 200,
the endpoint added back. The drill reports requests that never succeeded (target 0),
effects applied twice (database rows against acknowledged keys; target 0), the attempts
that had to be retried, and latency before and during the roll.

    python -m drills.rolling_restart [--drain-seconds 5] [--warmup-seconds 5]
                                     [--no-deregister] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import itertools
import os
import signal
import statistics
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from drills.cluster import prepare_folder
from drills.service import TENANT, Server, drill_folder, order_body, seed, service_env, table
from wms.cli import migrate_database
from wms.config import load_settings
from wms.domain.roles import Role
from wms.ops.secrets import api_key_pepper
from wms.services import tenants
from wms.store.embedded import EmbeddedPostgres, free_port, system_user
from wms.store.tenants import admin_connection

NGINX = os.environ.get("WMS_DRILL_NGINX", "/usr/sbin/nginx")
SERVERS = 3
# All replicas and the CLI must share the pepper (README): keys made by the CLI are
# checked by every server.
PEPPER = "rolling-restart-drill-pepper-" + "r" * 24
# Answers after which a client sends the same request again (a write with the same key).
RETRIABLE = frozenset({0, 409, 502, 503, 504})
LOCATIONS = ("RR-01", "RR-02", "RR-03", "RR-04")


# -- nginx ---------------------------------------------------------------------------------

NGINX_CONF = """\
# Written by drills/rolling_restart.py; the drill runs this nginx itself (never the service).
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
{user}
events {{ worker_connections 1024; }}

http {{
    log_format drill '$msec $request_method $status "$upstream_addr" "$upstream_status" '
                     '$request_time';
    access_log {prefix}/access.log drill;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    upstream wms {{
        # Readiness the Kubernetes way: nginx OSS has no active health checks, so the
        # drill plays the endpoints controller and marks a server `down` (then reloads)
        # before it is sent SIGTERM. max_fails/fail_timeout is only the passive safety
        # net for a server that dies unannounced: one failure benches it for 2 s.
{servers}
        keepalive 16;
        # Below uvicorn's keep-alive of 5 s: otherwise uvicorn may close an idle
        # connection just as nginx sends a POST on it, a 502 nginx must not retry.
        keepalive_timeout 2s;
    }}

    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://wms;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 2s;
            proxy_read_timeout 30s;
            # Another server is tried on a connection error, a timeout, a 502 or a 503,
            # but, without `non_idempotent` (deliberately absent), a POST only when it
            # was never sent (connection refused): a POST that reached a server may have
            # taken effect there, so it is the client's to retry with its Idempotency-Key.
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 2;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    """An nginx master the drill started, balancing ``ports``; ``down`` ports get nothing."""

    prefix: Path
    port: int
    ports: list[int]
    down: set[int] = field(default_factory=set)
    process: subprocess.Popen[bytes] | None = None
    reload_seconds: list[float] = field(default_factory=list)

    @property
    def conf_path(self) -> Path:
        return self.prefix / "nginx.conf"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_conf(self) -> None:
        """Write the config for the current ``ports`` and ``down`` set."""
        user = system_user()
        servers = "\n".join(
            f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s"
            + (" down;" if port in self.down else ";")
            for port in self.ports
        )
        self.conf_path.write_text(
            NGINX_CONF.format(
                prefix=self.prefix,
                port=self.port,
                servers=servers,
                # As root, nginx's workers need a user; the clusters' unprivileged one
                # owns the prefix (its temp folders) and can reach it.
                user=f"user {user.pw_name} {grp.getgrgid(user.pw_gid).gr_name};" if user else "",
            )
        )

    def start(self, timeout: float = 15.0) -> None:
        """Start the master in the foreground of its own process; wait until it answers."""
        self.write_conf()
        with (self.prefix / "nginx.out").open("ab") as out:
            self.process = subprocess.Popen(
                [NGINX, "-p", str(self.prefix), "-c", str(self.conf_path),
                 "-e", str(self.prefix / "error.log")],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self.workers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start:\n{self.error_log()}")
            time.sleep(0.05)

    def workers(self) -> set[int]:
        """Pids of the master's worker processes (old ones included while they finish)."""
        if self.process is None or self.process.poll() is not None:
            return set()
        pid = self.process.pid
        with contextlib.suppress(FileNotFoundError):
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text()
            return {int(child) for child in children.split()}
        return set()

    def set_down(self, port: int, down: bool, timeout: float = 30.0) -> float:
        """Mark ``port`` down (or up), reload, wait until old workers are gone; seconds taken.

        The old workers finish the requests they hold and then exit: once they are gone no
        request can reach a server marked down, which is what the endpoints controller and
        ingress propagation achieve in Kubernetes while the preStop hook sleeps.
        """
        assert self.process is not None
        (self.down.add if down else self.down.discard)(port)
        self.write_conf()
        old = self.workers()
        started = time.monotonic()
        self.process.send_signal(signal.SIGHUP)
        while True:
            current = self.workers()
            if current and not current & old:
                break
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"nginx reload not done in {timeout} s:\n{self.error_log()}")
            time.sleep(0.01)
        took = time.monotonic() - started
        self.reload_seconds.append(took)
        return took

    def stop(self) -> None:
        """Graceful quit (SIGQUIT), then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def error_log(self) -> str:
        """The tail of nginx's error log."""
        path = self.prefix / "error.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def access_counts(self) -> tuple[int, int]:
        """From the access log: answers nginx passed to a second server, and its own 5xx."""
        passed_on = errors = 0
        path = self.prefix / "access.log"
        for line in path.read_text().splitlines() if path.exists() else []:
            parts = line.split('"')
            if len(parts) >= 2 and "," in parts[1]:
                passed_on += 1
            if int(line.split()[2]) >= 500:
                errors += 1
        return passed_on, errors


# -- load ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    """One HTTP attempt: when it started and ended, what it was, how it was answered."""

    started: float
    ended: float
    method: str
    status: int  # 0: no HTTP answer (refused, reset, timeout)


@dataclass
class Load:
    """Reader and writer threads, each paced at ``rate`` requests per second.

    A request is done once answered 2xx; a retriable answer sends it again (a write with
    the same ``Idempotency-Key``) and is logged as an attempt; any other answer is wrong.
    After ``stop`` a request under way keeps retrying for ``grace`` seconds, so the end of
    the drill does not count as a failure.
    """

    base_url: str
    key: str
    readers: int = 2
    writers: int = 2
    rate: float = 10.0
    grace: float = 15.0
    attempts: list[Attempt] = field(default_factory=list)
    done: int = 0
    failed: list[str] = field(default_factory=list)  # requests that never succeeded
    wrong: list[str] = field(default_factory=list)  # answered, but not 2xx nor retriable
    acked_orders: set[str] = field(default_factory=set)
    acked_adjustments: set[str] = field(default_factory=set)
    sent_keys: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Start the threads."""
        targets = [(self._read, f"R{n}") for n in range(self.readers)]
        targets += [(self._write, f"W{n}") for n in range(self.writers)]
        for target, name in targets:
            thread = threading.Thread(target=target, args=(name,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        """Stop sending new requests; join the threads (each finishes its request)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.grace + 30)

    def _client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10.0)

    def _send(
        self,
        client: httpx.Client,
        method: str,
        path: str,
        body: dict[str, object] | None = None,
        key: str | None = None,
    ) -> bool:
        """Send one request until it is answered 2xx (True) or given up on (False)."""
        headers = {"Idempotency-Key": key} if key else {}
        give_up_at: float | None = None
        while True:
            started = time.monotonic()
            retry_after, text = 0.1, ""
            try:
                response = client.request(method, path, json=body, headers=headers)
                status, text = response.status_code, response.text[:200]
                if status == 409 and response.headers.get("retry-after", "").isdigit():
                    retry_after = min(float(response.headers["retry-after"]), 1.0)
            except httpx.HTTPError:
                status = 0
            ended = time.monotonic()
            with self._lock:
                self.attempts.append(Attempt(started, ended, method, status))
            if 200 <= status < 300:
                with self._lock:
                    self.done += 1
                return True
            if status not in RETRIABLE:
                with self._lock:
                    self.wrong.append(f"{method} {path} {status} {text}")
                return False
            if self._stop.is_set():
                give_up_at = give_up_at or time.monotonic() + self.grace
                if time.monotonic() > give_up_at:
                    with self._lock:
                        self.failed.append(f"{method} {path} last status {status}")
                    return False
            time.sleep(retry_after)

    def _pace(self, last: float) -> float:
        time.sleep(max(0.0, last + 1.0 / self.rate - time.monotonic()))
        return time.monotonic()

    def _read(self, name: str) -> None:
        paths = itertools.cycle(["/api/v1/inventory?warehouse=SP1", "/api/v1/warehouses"])
        last = time.monotonic()
        with self._client() as client:
            while not self._stop.is_set():
                self._send(client, "GET", next(paths))
                last = self._pace(last)

    def _write(self, name: str) -> None:
        # Each writer adjusts its own location: no lock waits between writers.
        location = LOCATIONS[int(name[1:]) % len(LOCATIONS)]
        last = time.monotonic()
        with self._client() as client:
            for sequence in itertools.count():
                if self._stop.is_set():
                    return
                key = f"RR-{name}-{sequence:06d}"
                with self._lock:
                    self.sent_keys.add(key)
                if sequence % 2 == 0:
                    ok = self._send(client, "POST", "/api/v1/orders", order_body(key), key)
                    acked = self.acked_orders
                else:
                    body = {"warehouse": "SP1", "location": location, "sku": "SKU-1",
                            "quantity": 1, "reason": "found", "reference": key}  # fmt: skip
                    ok = self._send(client, "POST", "/api/v1/inventory/adjustments", body, key)
                    acked = self.acked_adjustments
                if ok:
                    with self._lock:
                        acked.add(key)
                last = self._pace(last)

    def window(self, start: float, end: float) -> list[Attempt]:
        """Attempts that started within [start, end)."""
        with self._lock:
            return [a for a in self.attempts if start <= a.started < end]


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (inclusive method); 0 for no values."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


# -- the drill -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Restart:
    """One server's restart: how long each step took, and its exit code."""

    port: int
    endpoint_removed_seconds: float
    exit_code: int | None
    stop_seconds: float  # SIGTERM to exit: the drain window plus in-flight requests
    ready_seconds: float  # new process started to /health/ready 200


@dataclass(frozen=True)
class RollingRestartReport:
    """The figures one rolling-restart drill measured."""

    drain_seconds: float
    deregistered: bool
    roll_seconds: float
    restarts: tuple[Restart, ...]
    requests_done: int
    failed: tuple[str, ...]
    wrong: tuple[str, ...]
    retried_attempts: dict[int, int]
    acknowledged_writes: int
    duplicated_effects: int
    unacknowledged_effects: int
    p50_ms_before: float
    p95_ms_before: float
    p50_ms_roll: float
    p95_ms_roll: float
    max_ms_roll: float
    requests_in_roll: int
    nginx_passed_on: int
    nginx_5xx: int

    def text(self) -> str:
        """The figures as a table."""
        rows: list[tuple[str, object]] = [
            ("servers / WMS_DRAIN_SECONDS", f"{SERVERS} / {self.drain_seconds:g}"),
            ("endpoint removed before SIGTERM", "yes" if self.deregistered else "no"),
            ("roll duration (s)", f"{self.roll_seconds:.1f}"),
            ("requests completed (reads + writes)", self.requests_done),
            ("failed requests (never succeeded)", len(self.failed)),
            ("wrong answers (not 2xx, not retriable)", len(self.wrong)),
            ("attempts retried by clients", _statuses(self.retried_attempts) or "none"),
            ("writes acknowledged (distinct keys)", self.acknowledged_writes),
            ("duplicated effects", self.duplicated_effects),
            ("effects without an acknowledgement", self.unacknowledged_effects),
            ("p50 / p95 before the roll (ms)",
             f"{self.p50_ms_before:.0f} / {self.p95_ms_before:.0f}"),
            ("p50 / p95 / max during the roll (ms)",
             f"{self.p50_ms_roll:.0f} / {self.p95_ms_roll:.0f} / {self.max_ms_roll:.0f}"),
            ("attempts during the roll", self.requests_in_roll),
            ("nginx: passed to another server", self.nginx_passed_on),
            ("nginx: 5xx answered", self.nginx_5xx),
        ]  # fmt: skip
        for n, r in enumerate(self.restarts, 1):
            rows.append(
                (
                    f"server {n}: endpoint off / stop / ready (s)",
                    f"{r.endpoint_removed_seconds:.2f} / {r.stop_seconds:.2f} / "
                    f"{r.ready_seconds:.2f}, exit {r.exit_code}",
                )
            )
        return table("Rolling restart drill (3 wms-server behind nginx, under load)", rows)


def _statuses(counts: dict[int, int]) -> str:
    return ", ".join(
        f"{'no answer' if status == 0 else status}: {n}" for status, n in sorted(counts.items())
    )


def _provision(database_url: str, data_dir: Path) -> str:
    """Migrate, create the drill's tenant and an admin key; the key.

    In this process, as ``wms-server migrate``/``tenant``/``apikey`` would: three
    interpreter start-ups fewer keeps the short test short on a busy 2-core machine.
    """
    settings = load_settings(
        database_url=database_url, data_dir=data_dir, environment="test", api_key_pepper=PEPPER
    )
    migrate_database(settings)
    with admin_connection(database_url) as conn:
        tenants.create_tenant(conn, TENANT, "Drill")
        return tenants.create_api_key(
            conn, api_key_pepper(settings), tenant_code=TENANT, role=Role.ADMIN
        )


def _seed_locations(base_url: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    for code in LOCATIONS:
        body = {"code": code, "type": "storage"}
        answer = httpx.post(f"{base_url}/api/v1/warehouses/SP1/locations", json=body,
                            headers=headers, timeout=10)  # fmt: skip
        if answer.status_code != 201:
            raise RuntimeError(f"location {code}: {answer.status_code} {answer.text}")


def _effects(database_url: str, acked: set[str], sent: set[str]) -> tuple[int, int]:
    """Rows beyond one per key (duplicates), and rows of keys never acknowledged."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            """
            SELECT o.number FROM wms.orders o JOIN wms.tenants t ON t.id = o.tenant_id
             WHERE t.code = %(tenant)s AND o.number LIKE 'RR-%%'
            UNION ALL
            SELECT m.reference_id FROM wms.inventory_movements m
              JOIN wms.tenants t ON t.id = m.tenant_id
             WHERE t.code = %(tenant)s AND m.kind = 'adjustment' AND m.reference_id LIKE 'RR-%%'
            """,
            {"tenant": TENANT},
        ).fetchall()
    per_key = Counter(str(row[0]) for row in rows)
    duplicated = sum(n - 1 for n in per_key.values())
    # Keys sent but never acknowledged may legitimately have taken effect once; keys
    # never sent must not exist at all.
    unacknowledged = sum(1 for key in per_key if key not in acked)
    assert set(per_key) <= sent, set(per_key) - sent
    return duplicated, unacknowledged


def _restart(
    nginx: Nginx, server: Server, env: dict[str, str], drain_seconds: float, deregister: bool
) -> tuple[Server, Restart]:
    """Restart one server as Kubernetes does: endpoint off, SIGTERM, new pod, endpoint on.

    Without ``deregister`` nginx keeps routing to it (an ingress whose endpoint update
    lags, or a pod without preStop): only passive health and the drain window help.
    """
    port = int(env["PORT"])
    removed = nginx.set_down(port, True) if deregister else 0.0
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        exit_code: int | None = server.process.wait(timeout=drain_seconds + 30)
    except subprocess.TimeoutExpired:
        exit_code = None  # terminationGracePeriodSeconds ran out: the kubelet SIGKILLs
        server.kill()
    stopped = time.monotonic()
    # The same port, as a new pod keeps the Service's targetPort.
    replacement = Server.start(env, server.log_path)
    ready = replacement.wait_ready()
    if deregister:
        nginx.set_down(port, False)
    return replacement, Restart(port, removed, exit_code, stopped - signalled, ready)


def run(
    root: Path,
    *,
    drain_seconds: float = 5.0,
    warmup_seconds: float = 5.0,
    settle_seconds: float = 2.0,
    rate: float = 10.0,
    deregister: bool = True,
) -> RollingRestartReport:
    """Run the drill in ``root`` (database, server data, nginx prefix, logs); its figures."""
    database = EmbeddedPostgres(root / "pg", max_connections=100)
    database_url = database.start()
    servers: list[Server] = []
    nginx: Nginx | None = None
    try:
        extra = {"WMS_API_KEY_PEPPER": PEPPER, "WMS_MIGRATE_ON_START": "false",
                 "WMS_DRAIN_SECONDS": f"{drain_seconds:g}", "WMS_DB_POOL_MAX": "5"}  # fmt: skip
        envs = [service_env(database_url, root / f"wms-{n}", **extra) for n in range(SERVERS)]
        key = _provision(database_url, root / "wms-0")
        servers = [Server.start(env, root / f"wms-{n}.log") for n, env in enumerate(envs)]
        for server in servers:
            server.wait_ready()
        seed(servers[0].base_url, key)
        _seed_locations(servers[0].base_url, key)

        ports = [int(env["PORT"]) for env in envs]
        nginx = Nginx(prepare_folder(root / "nginx"), free_port(), ports)
        nginx.start()

        load = Load(nginx.base_url, key, rate=rate)
        load.start()
        restarts: list[Restart] = []
        try:
            time.sleep(warmup_seconds)
            roll_started = time.monotonic()
            for n, env in enumerate(envs):
                servers[n], restart = _restart(nginx, servers[n], env, drain_seconds, deregister)
                restarts.append(restart)
                time.sleep(settle_seconds)  # let the new server take load before the next
            roll_ended = time.monotonic()
        finally:
            load.stop()

        before = [a.ended - a.started for a in load.window(roll_started - warmup_seconds,
                                                           roll_started)]  # fmt: skip
        during_attempts = load.window(roll_started, roll_ended)
        during = [a.ended - a.started for a in during_attempts]
        retried = Counter(a.status for a in load.attempts if a.status in RETRIABLE)
        acked = load.acked_orders | load.acked_adjustments
        duplicated, unacknowledged = _effects(database_url, acked, load.sent_keys)
        passed_on, nginx_errors = nginx.access_counts()
        return RollingRestartReport(
            drain_seconds=drain_seconds,
            deregistered=deregister,
            roll_seconds=roll_ended - roll_started,
            restarts=tuple(restarts),
            requests_done=load.done,
            failed=tuple(load.failed),
            wrong=tuple(load.wrong),
            retried_attempts=dict(retried),
            acknowledged_writes=len(acked),
            duplicated_effects=duplicated,
            unacknowledged_effects=unacknowledged,
            p50_ms_before=percentile(before, 0.50) * 1000,
            p95_ms_before=percentile(before, 0.95) * 1000,
            p50_ms_roll=percentile(during, 0.50) * 1000,
            p95_ms_roll=percentile(during, 0.95) * 1000,
            max_ms_roll=max(during, default=0.0) * 1000,
            requests_in_roll=len(during_attempts),
            nginx_passed_on=passed_on,
            nginx_5xx=nginx_errors,
        )
    finally:
        if nginx is not None:
            nginx.stop()
        for server in servers:
            server.stop()
        database.stop()


def main() -> None:
    """Run the drill in a temporary folder and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--drain-seconds", type=float, default=5.0, help="WMS_DRAIN_SECONDS")
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--settle-seconds", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=10.0, help="requests/s per client thread")
    parser.add_argument(
        "--no-deregister",
        action="store_true",
        help="SIGTERM without taking the server out of nginx first (the control case)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs, data)")
    args = parser.parse_args()
    with drill_folder("rolling", keep=args.keep) as root:
        report = run(
            root,
            drain_seconds=args.drain_seconds,
            warmup_seconds=args.warmup_seconds,
            settle_seconds=args.settle_seconds,
            rate=args.rate,
            deregister=not args.no_deregister,
        )
        print(report.text())


if __name__ == "__main__":
    main()
