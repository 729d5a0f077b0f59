"""Point-in-time recovery drill: destroy the primary under write load, restore to the latest.

A primary (Debian's PostgreSQL 15, a throwaway cluster on a free port) with a base
backup (``pg_basebackup``) and a WAL archive kept by ``pg_receivewal --synchronous``
through a replication slot. The receiver is the primary's synchronous standby, so a
commit is acknowledged only once its WAL is flushed in the archive: RPO 0 is possible.

Writers post orders with ``Idempotency-Key`` to a real ``wms-server`` and log each
acknowledgement. The primary is SIGKILLed and its data folder deleted; after a detection
delay the base backup is restored, the archive (its ``.partial`` segment included) is
replayed to its end, the cluster is started, and ``wms-server`` runs again. Reported:
RPO (acknowledged orders missing from the restored database) and RTO (destruction to
``/health/ready`` 200), with the time each step took.

    python -m drills.pitr [--warmup-seconds 5] [--detection-seconds 5]
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from drills.cluster import (
    PG_BIN,
    SUPERUSER,
    Cluster,
    give_to_cluster_user,
    init_primary,
    make_synchronous,
    prepare_folder,
    run_pg,
    spawn_pg,
)
from drills.service import (
    OrderWriter,
    Server,
    drill_folder,
    provision,
    seed,
    service_env,
    table,
)

RECEIVER = "pg_receivewal"
SLOT = "wal_archive"


@dataclass(frozen=True)
class PitrReport:
    """The figures one PITR drill measured."""

    detection_seconds: float
    restore_seconds: float
    replay_seconds: float
    server_ready_seconds: float
    rto_seconds: float
    first_write_after_seconds: float | None
    acknowledged: int
    lost: int
    wal_segments: int

    def text(self) -> str:
        """The figures as a table."""
        first = self.first_write_after_seconds
        return table(
            "PITR drill (primary destroyed, base backup + pg_receivewal archive restored)",
            [
                ("detection delay before restore (s)", f"{self.detection_seconds:.1f}"),
                ("copy base backup + WAL (s)", f"{self.restore_seconds:.2f}"),
                ("replay to the latest point, start (s)", f"{self.replay_seconds:.2f}"),
                ("wms-server start to ready (s)", f"{self.server_ready_seconds:.2f}"),
                ("RTO: destruction to /health/ready 200 (s)", f"{self.rto_seconds:.2f}"),
                ("first acknowledged write after (s)", "none" if first is None else f"{first:.2f}"),
                ("WAL segments replayed from the archive", self.wal_segments),
                ("orders acknowledged", self.acknowledged),
                ("RPO: acknowledged orders lost", self.lost),
            ],
        )


def run(root: Path, *, warmup_seconds: float = 5.0, detection_seconds: float = 5.0) -> PitrReport:
    """Run the drill in ``root`` and return its figures."""
    primary = init_primary(root)
    archive = prepare_folder(root / "wal-archive")
    base = root / "base-backup"
    receiver: subprocess.Popen[bytes] | None = None
    server: Server | None = None
    try:
        receiver = start_archiver(primary, archive, root / "pg_receivewal.log")
        url = primary.url()
        env = service_env(url, root / "wms-data")
        key = provision(env)
        prepare_folder(base)
        run_pg(PG_BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port),
               "-U", SUPERUSER, "-D", base, "-X", "stream", "-c", "fast")  # fmt: skip
        server = Server.start(env, root / "wms-server.log")
        server.wait_ready()
        seed(server.base_url, key)

        writer = OrderWriter(server.base_url, key)
        writer.start()
        try:
            time.sleep(warmup_seconds)
            destroyed_at = time.monotonic()
            destroy(primary)
            # The service dies with the host; a new process starts after the restore
            # (a running one would reconnect to a database restored at the same address).
            server.kill()
            time.sleep(detection_seconds)

            restore_started = time.monotonic()
            receiver.send_signal(signal.SIGINT)  # it flushes what it has and exits
            receiver.wait(timeout=30)
            segments = restore(base, archive, primary)
            restored_at = time.monotonic()
            primary.start()  # replays the archive to its end, then opens a new timeline
            _wait_primary(primary)
            replayed_at = time.monotonic()

            server = Server.start(env, root / "wms-server-restored.log")
            server.wait_ready(timeout=120)
            ready_at = time.monotonic()
            _wait_for_a_write(writer, destroyed_at, timeout=30)
        finally:
            writer.stop()

        present = _order_numbers(url)
        acked = set(writer.acked)
        recovered = writer.outage(destroyed_at)[1]
        return PitrReport(
            detection_seconds=detection_seconds,
            restore_seconds=restored_at - restore_started,
            replay_seconds=replayed_at - restored_at,
            server_ready_seconds=ready_at - replayed_at,
            rto_seconds=ready_at - destroyed_at,
            first_write_after_seconds=None if recovered is None else recovered - destroyed_at,
            acknowledged=len(acked),
            lost=len(acked - present),
            wal_segments=segments,
        )
    finally:
        if server is not None:
            server.stop()
        if receiver is not None and receiver.poll() is None:
            receiver.kill()
            receiver.wait()
        primary.stop()


def destroy(primary: Cluster) -> None:
    """SIGKILL the primary and delete its data folder: its host and disk are gone."""
    primary.kill()
    shutil.rmtree(primary.pgdata)


def start_archiver(primary: Cluster, archive: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """``pg_receivewal`` into ``archive`` through a slot, as ``primary``'s synchronous standby."""
    run_pg(PG_BIN / "pg_receivewal", "-h", "127.0.0.1", "-p", str(primary.port),
           "-U", SUPERUSER, f"--slot={SLOT}", "--create-slot")  # fmt: skip
    receiver = spawn_pg(
        PG_BIN / "pg_receivewal", "-D", archive, "--slot", SLOT, "--synchronous",
        "--no-loop", "-d",
        f"host=127.0.0.1 port={primary.port} user={SUPERUSER} application_name={RECEIVER}",
        log_path=log_path,
    )  # fmt: skip
    make_synchronous(primary, RECEIVER)
    return receiver


def _wait_for_a_write(writer: OrderWriter, since: float, timeout: float) -> None:
    """Wait until the writers had an order acknowledged after their first failure."""
    deadline = time.monotonic() + timeout
    while writer.outage(since)[1] is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # a few more acknowledged orders on the restored database


def _order_numbers(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        return {str(row[0]) for row in conn.execute("SELECT number FROM wms.orders")}


def restore(base: Path, archive: Path, target: Cluster) -> int:
    """Put the base backup in ``target``'s folder, set it to replay ``archive`` to its end.

    The segment ``pg_receivewal`` was writing is ``.partial``: it holds the last
    acknowledged commits, so it is restored under its full name. Returns the number of
    segments in the archive.
    """
    staged = target.pgdata.parent / "wal-restore"
    shutil.copytree(base, target.pgdata)
    staged.mkdir()
    segments = 0
    for segment in sorted(archive.iterdir()):
        name = segment.name.removesuffix(".partial")
        if len(name) == 24 or name.endswith(".history"):
            shutil.copy2(segment, staged / name)
            segments += 1
    for path in (target.pgdata, staged):
        give_to_cluster_user(path)
    target.pgdata.chmod(0o700)
    with (target.pgdata / "postgresql.auto.conf").open("a") as conf:
        conf.write(
            f"restore_command = 'cp {staged}/%f %p'\n"
            "recovery_target_timeline = 'latest'\n"
            # No receiver is attached yet: commits must not wait for one.
            "synchronous_standby_names = ''\n"
        )
    (target.pgdata / "recovery.signal").touch()
    give_to_cluster_user(target.pgdata / "recovery.signal")
    return segments


def _wait_primary(cluster: Cluster, timeout: float = 120.0) -> None:
    """Wait until recovery has ended and the cluster accepts writes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cluster.scalar("SELECT pg_is_in_recovery()", "postgres") is False:
                return
        except psycopg.OperationalError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the restored cluster did not finish recovery in {timeout} s")
        time.sleep(0.05)


def main() -> None:
    """Run the drill in a temporary folder and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--warmup-seconds", type=float, default=5.0)
    parser.add_argument("--detection-seconds", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs, data)")
    args = parser.parse_args()
    with drill_folder("pitr", keep=args.keep) as root:
        report = run(
            root, warmup_seconds=args.warmup_seconds, detection_seconds=args.detection_seconds
        )
        print(report.text())


if __name__ == "__main__":
    main()
