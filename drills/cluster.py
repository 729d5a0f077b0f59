"""Throwaway PostgreSQL clusters for drills: Debian's PostgreSQL 15 binaries, free ports.

Never the machine's own server on 5432: each cluster lives in a folder of the drill's,
listens on 127.0.0.1 on a free port with no Unix socket, and runs as the unprivileged
``embedded_postgres`` user when the drill runs as root (PostgreSQL refuses root).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from wms.store.embedded import free_port, system_user

PG_BIN = Path(os.environ.get("WMS_DRILL_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"
DATABASE = "wms"
# Written to postgresql.conf of the primary (a base backup copies it to the standby).
BASE_SETTINGS = """
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 100
shared_buffers = 64MB
wal_level = replica
max_wal_senders = 10
wal_keep_size = 256MB
hot_standby = on
fsync = on
synchronous_commit = on
log_min_messages = warning
"""


def run_pg(*command: str | Path, timeout: float = 120.0) -> str:
    """Run a PostgreSQL program as the cluster user; its stdout. Fails with its stderr."""
    user = system_user()
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        # Its own session: a terminal's Ctrl-C stops the drill, which stops the clusters.
        start_new_session=True,
        user=user.pw_uid if user else None,
        group=user.pw_gid if user else None,
        cwd="/",
    )
    if result.returncode != 0:
        raise RuntimeError(f"{Path(str(command[0])).name}: {result.stderr.strip()}")
    return result.stdout


def prepare_folder(path: Path) -> Path:
    """An empty 0700 folder the cluster user owns, reachable through its parents."""
    user = system_user()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if user is not None:
        for folder in path.parents:
            mode = folder.stat().st_mode
            if not mode & 0o001:
                folder.chmod(mode | 0o001)  # search only, for the cluster user
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


@dataclass
class Cluster:
    """One PostgreSQL server in ``pgdata``, on ``port``, with extra ``-c`` settings."""

    pgdata: Path
    port: int
    settings: dict[str, str]

    def url(self, database: str = DATABASE) -> str:
        """Superuser URL of ``database`` on this server."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @property
    def log_path(self) -> Path:
        return self.pgdata.parent / f"{self.pgdata.name}.log"

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = f"-p {self.port} " + " ".join(
            f"-c {name}={value}" for name, value in self.settings.items()
        )
        if not self.log_path.exists():
            self.log_path.touch()
            user = system_user()
            if user is not None:
                os.chown(self.log_path, user.pw_uid, user.pw_gid)
        run_pg(PG_BIN / "pg_ctl", "-D", self.pgdata, "-l", self.log_path, "-o", options,
               "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        """Fast shutdown; nothing if it is not running."""
        if self.postmaster_pid() is not None:
            with contextlib.suppress(RuntimeError):
                run_pg(PG_BIN / "pg_ctl", "-D", self.pgdata, "-m", "immediate", "-w", "stop")

    def promote(self) -> None:
        """Promote a standby and wait until it accepts writes."""
        run_pg(PG_BIN / "pg_ctl", "-D", self.pgdata, "-w", "-t", "60", "promote")

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, or None."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, IndexError, ProcessLookupError):
            return None
        return pid

    def kill(self) -> None:
        """SIGKILL the postmaster and every child, as if its host had died."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        children_file = Path(f"/proc/{pid}/task/{pid}/children")
        children = [int(c) for c in children_file.read_text().split()]
        for victim in [pid, *children]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in [pid, *children]) and time.monotonic() < deadline:
            time.sleep(0.01)

    def scalar(self, query: str, database: str = DATABASE) -> object:
        """First column of the first row of ``query``."""
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(query).fetchone()
        return row[0] if row else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(FileNotFoundError):
        # A killed child of ours stays a zombie until reaped; it is dead all the same.
        return " Z " not in Path(f"/proc/{pid}/stat").read_text()
    return False


def init_primary(root: Path, settings: dict[str, str] | None = None) -> Cluster:
    """initdb and start a primary in ``root/primary``, with a ``wms`` database."""
    pgdata = prepare_folder(root / "primary")
    run_pg(PG_BIN / "initdb", "-D", pgdata, "-U", SUPERUSER, "--auth=trust",
           "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions")  # fmt: skip
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(BASE_SETTINGS)
    cluster = Cluster(pgdata, free_port(), dict(settings or {}))
    cluster.start()
    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return cluster


def clone_standby(primary: Cluster, root: Path, name: str) -> Cluster:
    """A streaming standby of ``primary`` (``pg_basebackup -R``), started, named ``name``.

    ``cluster_name`` is the application name its WAL receiver reports, which
    ``synchronous_standby_names`` of the primary refers to. The standby itself waits for
    no synchronous standby, so once promoted its commits do not hang.
    """
    pgdata = prepare_folder(root / name)
    run_pg(PG_BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port),
           "-U", SUPERUSER, "-D", pgdata, "-R", "-X", "stream", "-c", "fast")  # fmt: skip
    # postgresql.auto.conf came with the backup: the standby waits for no standby itself.
    with (pgdata / "postgresql.auto.conf").open("a") as conf:
        conf.write("synchronous_standby_names = ''\n")
    standby = Cluster(pgdata, free_port(), {"cluster_name": name})
    standby.start()
    return standby


def make_synchronous(primary: Cluster, name: str, timeout: float = 30.0) -> None:
    """Make ``name`` the synchronous standby of ``primary`` and wait until it is.

    Set only once the standby streams: before, every commit would wait for it.
    """
    with psycopg.connect(primary.url("postgres"), autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{name}'")
        conn.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + timeout
    query = (
        "SELECT sync_state FROM pg_stat_replication "
        f"WHERE application_name = '{name}' AND state = 'streaming'"
    )
    while primary.scalar(query, "postgres") != "sync":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not become a synchronous standby in {timeout} s")
        time.sleep(0.1)


def spawn_pg(*command: str | Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Start a long-running PostgreSQL program (``pg_receivewal``) as the cluster user."""
    user = system_user()
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [str(part) for part in command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            user=user.pw_uid if user else None,
            group=user.pw_gid if user else None,
            cwd="/",
        )


def give_to_cluster_user(path: Path) -> None:
    """chown ``path`` and everything under it to the cluster user (when we are root)."""
    user = system_user()
    if user is None:
        return
    os.chown(path, user.pw_uid, user.pw_gid)
    for folder, names, files in os.walk(path):
        for name in [*names, *files]:
            os.chown(Path(folder) / name, user.pw_uid, user.pw_gid)
