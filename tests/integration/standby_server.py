"""A hot standby of the test server made with ``pg_basebackup``, for replica and failover tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from tests.conftest import PostgresServer
from wms.store.embedded import EmbeddedPostgres, binaries_dir


@contextlib.contextmanager
def streaming_standby(
    postgres_server: PostgresServer, database_url: str, root: Path
) -> Iterator[str]:
    """``database_url``'s database on a standby streaming from the test server (promotable).

    Only for the embedded test server: the standby is its byte copy, in ``root``.
    """
    root.mkdir()
    standby = EmbeddedPostgres(root)
    user = standby._system_user()
    pgdata = root / "pgdata"
    pgdata.mkdir(mode=0o700)
    if user is not None:
        standby._make_traversable(root)
        os.chown(pgdata, user.pw_uid, user.pw_gid)
    primary = conninfo_to_dict(postgres_server.maintenance_url)
    subprocess.run(
        [str(binaries_dir() / "pg_basebackup"), "-h", str(primary.get("host", "127.0.0.1")),
         "-p", str(primary["port"]), "-U", str(primary.get("user", "postgres")),
         "-D", str(pgdata), "-R", "-X", "stream", "-c", "fast"],
        check=True, capture_output=True, timeout=120,
        user=user.pw_uid if user else None, group=user.pw_gid if user else None,
    )  # fmt: skip
    standby.start()
    try:
        yield standby.url_for(str(conninfo_to_dict(database_url)["dbname"]))
    finally:
        standby.stop()
