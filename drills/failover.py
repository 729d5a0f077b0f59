"""Failover drill: kill the primary under write load, promote the synchronous standby.

A primary and a synchronous streaming standby (Debian's PostgreSQL 15, throwaway
clusters on free ports), one real ``wms-server serve`` whose ``DATABASE_URL`` lists both
hosts, and writers posting orders with ``Idempotency-Key`` and logging each
acknowledgement. After a warm-up the primary's postmaster and all its processes are
SIGKILLed (the host is gone); after a detection delay the standby is promoted with
``pg_ctl promote``. The drill reports the write outage (first failed answer to first
acknowledged order after it), the acknowledged orders missing from the promoted database
(the target is 0: commits wait for the synchronous standby), and whether the same
server process resumed writing.

    python -m drills.failover [--detection-seconds 5] [--warmup-seconds 5] [--after-seconds 5]
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from drills.cluster import Cluster, clone_standby, init_primary, make_synchronous
from drills.service import (
    OrderWriter,
    Server,
    drill_folder,
    provision,
    seed,
    service_env,
    table,
)

STANDBY_NAME = "standby1"


@dataclass(frozen=True)
class FailoverReport:
    """The figures one failover drill measured."""

    detection_seconds: float
    promote_seconds: float
    write_outage_seconds: float | None
    acknowledged: int
    lost: int
    acknowledged_after_promotion: int
    same_server_process: bool
    ready_after: tuple[int, str | None]
    roles_seen: tuple[str, ...]
    statuses: dict[int, int]

    def text(self) -> str:
        """The figures as a table."""
        outage = self.write_outage_seconds
        return table(
            "Failover drill (primary SIGKILLed, synchronous standby promoted)",
            [
                ("detection delay before promote (s)", f"{self.detection_seconds:.1f}"),
                ("pg_ctl promote took (s)", f"{self.promote_seconds:.2f}"),
                ("write outage (s)", "not recovered" if outage is None else f"{outage:.2f}"),
                ("orders acknowledged", self.acknowledged),
                ("acknowledged orders lost", self.lost),
                ("acknowledged after promotion", self.acknowledged_after_promotion),
                ("server restarted", "no" if self.same_server_process else "yes"),
                ("/health/ready at the end", f"{self.ready_after[0]} {self.ready_after[1]}"),
                ("roles /health/ready reported", ", ".join(self.roles_seen)),
                ("answers during the drill", _statuses(self.statuses)),
            ],
        )


def _statuses(counts: dict[int, int]) -> str:
    return ", ".join(
        f"{'no answer' if status == 0 else status}: {n}" for status, n in sorted(counts.items())
    )


class RoleWatcher:
    """Polls ``/health/ready`` and records each role it reports, in order."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.roles: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        """Start polling every 0.1 s."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.is_set():
            status, role = self.server.ready()
            label = f"{role or 'none'} ({status or 'no answer'})"
            if not self.roles or self.roles[-1] != label:
                self.roles.append(label)
            time.sleep(0.1)


def run(
    root: Path,
    *,
    warmup_seconds: float = 5.0,
    detection_seconds: float = 5.0,
    after_seconds: float = 5.0,
) -> FailoverReport:
    """Run the drill in ``root`` (clusters, server data, logs) and return its figures."""
    primary = init_primary(root)
    clusters: list[Cluster] = [primary]
    server: Server | None = None
    try:
        standby = clone_standby(primary, root, STANDBY_NAME)
        clusters.append(standby)
        make_synchronous(primary, STANDBY_NAME)
        both = f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/wms"
        env = service_env(both, root / "wms-data")
        key = provision(env)
        server = Server.start(env, root / "wms-server.log")
        server.wait_ready()
        seed(server.base_url, key)
        pid = server.process.pid

        writer = OrderWriter(server.base_url, key)
        watcher = RoleWatcher(server)
        writer.start()
        watcher.start()
        try:
            time.sleep(warmup_seconds)
            killed_at = time.monotonic()
            primary.kill()
            time.sleep(detection_seconds)
            promote_started = time.monotonic()
            standby.promote()
            promoted_at = time.monotonic()
            deadline = promoted_at + after_seconds + 30
            # Keep writing until writes are back and then for after_seconds more.
            while time.monotonic() < deadline:
                recovered = writer.outage(killed_at - 1)[1]
                if recovered is not None and time.monotonic() - recovered >= after_seconds:
                    break
                time.sleep(0.1)
        finally:
            writer.stop()
            watcher.stop()

        present = {str(number) for number in _column(standby, "SELECT number FROM wms.orders")}
        acked = set(writer.acked)
        after_promotion = sum(
            1 for a in writer.attempts if a.at >= promoted_at and a.status in (200, 201)
        )
        return FailoverReport(
            detection_seconds=detection_seconds,
            promote_seconds=promoted_at - promote_started,
            write_outage_seconds=writer.outage(killed_at - 1)[2],
            acknowledged=len(acked),
            lost=len(acked - present),
            acknowledged_after_promotion=after_promotion,
            same_server_process=server.process.poll() is None and server.process.pid == pid,
            ready_after=server.ready(),
            roles_seen=tuple(watcher.roles),
            statuses=writer.statuses(killed_at),
        )
    finally:
        if server is not None:
            server.stop()
        for cluster in clusters:
            cluster.stop()


def _column(cluster: Cluster, query: str) -> list[object]:
    with psycopg.connect(cluster.url(), autocommit=True, connect_timeout=5) as conn:
        return [row[0] for row in conn.execute(query)]


def main() -> None:
    """Run the drill in a temporary folder and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--detection-seconds", type=float, default=5.0)
    parser.add_argument("--after-seconds", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs, data)")
    args = parser.parse_args()
    with drill_folder("failover", keep=args.keep) as root:
        report = run(
            root,
            warmup_seconds=args.warmup_seconds,
            detection_seconds=args.detection_seconds,
            after_seconds=args.after_seconds,
        )
        print(report.text())


if __name__ == "__main__":
    main()
