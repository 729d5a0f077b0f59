"""Ceilings measured in the same run on the same database.

- ``capture``: the exact SQL a flow's requests execute, read from PostgreSQL's own
  statement log (``log_statement = all`` for the capture only), the parameters inlined
  as literals, each transaction one branch of a pgbench script whose client ``c`` always
  replays transaction ``c`` mod their number (``script``);
- ``pgbench``: those scripts under ``pgbench -M prepared`` at the flows' concurrency.
  A replayed transaction must leave nothing behind, so the same document can be
  replayed again: its statements run inside a savepoint that is rolled back, and the
  transaction then COMMITs. The savepoint's writes gave the transaction an id, so the
  commit writes its record and waits for the WAL flush like the server's commits (a
  plain ROLLBACK, which earlier runs used, skips that wait: the reference transaction
  ran 2.6-4.0 × as fast that way in our runs). The replay pays two statements more
  than the flow (SAVEPOINT, ROLLBACK TO SAVEPOINT); ``commit=False`` gives the ROLLBACK
  replay for comparison;
- ``reference_allocation``: the textbook allocation transaction (SELECT … FOR UPDATE a
  balance, UPDATE it, INSERT an audit row and an outbox row, COMMIT), undone afterwards;
- ``noop_server``: the product's HTTP stack with no database (``/noop``) and one
  ``SELECT 1`` (``/select1``), run by bench/noop_app.py in as many processes as the
  server under test.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import psycopg

from bench.harness import BenchDatabase
from wms.store.embedded import binaries_dir, free_port

_LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \w+ \[(\d+)\] (\w+):  (.*)$")
_STATEMENT = re.compile(r"^(?:statement|execute [^:]+): (.*)$", re.S)
_UUID = re.compile(r"'[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'")
_PARAM = re.compile(r"\$(\d+) = ('(?:[^']|'')*'|NULL)")
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_VARIABLE = re.compile(r":(?=[A-Za-z_])")


def pgbench_path() -> str:
    """The embedded PostgreSQL's pgbench (same major version as the server)."""
    found = binaries_dir() / "pgbench"
    return str(found) if found.exists() else "/usr/bin/pgbench"


def _log_entries(text: str) -> list[tuple[int, str, str]]:
    """(pid, level, message) of each log entry; continuation lines joined."""
    entries: list[tuple[int, str, str]] = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            entries.append((int(match[1]), match[2], match[3]))
        elif entries and line.startswith("\t"):
            pid, level, message = entries[-1]
            entries[-1] = (pid, level, message + "\n" + line[1:])
    return entries


def _transactions(entries: list[tuple[int, str, str]]) -> list[list[str]]:
    """Statements with their parameters inlined, grouped into BEGIN … COMMIT per backend."""
    open_: dict[int, list[str]] = {}
    done: list[list[str]] = []
    last: dict[int, str] = {}
    for pid, level, message in entries:
        if level == "DETAIL" and message.startswith("Parameters:") and pid in last:
            values = {int(n): v for n, v in _PARAM.findall(message)}
            inlined = re.sub(r"\$(\d+)", lambda m, v=values: v.get(int(m[1]), m[0]), last[pid])
            if open_.get(pid):
                open_[pid][-1] = inlined
            continue
        if level != "LOG":
            continue
        statement = _STATEMENT.match(message)
        if not statement:
            continue
        sql = statement[1].strip()
        last[pid] = sql
        if sql.upper() == "BEGIN":
            open_[pid] = [sql]
        elif sql.upper() == "COMMIT" and pid in open_:
            done.append([*open_.pop(pid), sql])
        elif pid in open_:
            open_[pid].append(sql)
    return done


def capture(database: BenchDatabase, action: Callable[[], None]) -> list[list[str]]:
    """The writing transactions ``action`` made, as inlined SQL statements."""
    log = database.data_dir / "pgdata" / "postgres.log"
    start = log.stat().st_size
    with psycopg.connect(database.url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET log_statement = 'all'")
        conn.execute("SELECT pg_reload_conf()")
        time.sleep(0.5)  # every backend applies the reload at its next command
        try:
            action()
        finally:
            conn.execute("ALTER SYSTEM RESET log_statement")
            conn.execute("SELECT pg_reload_conf()")
    with log.open("r", errors="replace") as handle:
        handle.seek(start)
        text = handle.read()
    return [
        t
        for t in _transactions(_log_entries(text))
        if any(s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) for s in t)
    ]


def _hide_colons(statement: str) -> str:
    """Literals with ``:name`` inside (``'apikey:e3139…'``) as ``E'apikey\\x3ae3139…'``.

    pgbench takes ``:name`` anywhere, quotes or not, for one of its variables: a captured
    actor whose key id began with a letter broke every replay of the run (a key id that
    began with a digit passed, so it failed about one run in three).
    """

    def escape(match: re.Match[str]) -> str:
        literal = match[0]
        if not _VARIABLE.search(literal):
            return literal
        body = literal[1:-1].replace("\\", "\\\\")
        return "E'" + _VARIABLE.sub(r"\\x3a", body) + "'"

    return _LITERAL.sub(escape, statement)


REPLAY_SAVEPOINT = "ceiling_replay"


def script(transactions: list[list[str]], path: Path, *, commit: bool = True) -> Path:
    """One pgbench script in which client ``c`` always replays transaction ``c`` mod their
    number, leaving nothing behind so it can repeat.

    Two clients replaying one document would wait for each other on its rows (the same
    task, order or new order number), a wait the server's traffic, which takes each
    document once, never has. ``commit``: the statements run in a savepoint rolled back
    before COMMIT (the commit still flushes the WAL); otherwise the transaction ends in
    ROLLBACK.
    """
    lines = [f"\\set document :client_id % {len(transactions)}"]
    for index, captured in enumerate(transactions):
        begin, *statements = captured[:-1]  # BEGIN, the statements; COMMIT dropped
        # A fresh event id each time: the outbox's event ids are unique.
        inlined = [
            _hide_colons(_UUID.sub("gen_random_uuid()", s.replace("\n", " "))) + ";"
            for s in statements
        ]
        lines.append(f"\\{'if' if index == 0 else 'elif'} :document = {index}")
        if commit:
            lines += [f"{begin};", f"SAVEPOINT {REPLAY_SAVEPOINT};", *inlined,
                      f"ROLLBACK TO SAVEPOINT {REPLAY_SAVEPOINT};", "COMMIT;"]  # fmt: skip
        else:
            lines += [f"{begin};", *inlined, "ROLLBACK;"]
    lines.append("\\endif")
    path.write_text("\n".join(lines) + "\n")
    return path


_PROGRESS = re.compile(r"^progress: [\d.]+ s, ([\d.]+) tps", re.M)


def steady_tps(output: str) -> float | None:
    """Mean of pgbench's per-second TPS after its first quarter (at least one second);
    None for a run of fewer than two seconds reported.

    A client prepares each statement at its first run and PostgreSQL's caches warm up;
    the server under test did both in its warm-up, before its measurement.
    """
    seconds = [float(tps) for tps in _PROGRESS.findall(output)]
    steady = seconds[max(1, len(seconds) // 4) :]
    return sum(steady) / len(steady) if steady else None


def pgbench(url: str, script: Path, *, clients: int, seconds: float) -> dict[str, float]:
    """Run ``script``; steady tps (``steady_tps``), the whole run's (``tps_whole_run``) and
    latency, failures counted."""
    args = [
        pgbench_path(),
        "-n",
        "-P",
        "1",
        "-M",
        "prepared",
        "-c",
        str(clients),
        "-j",
        "2",
        "-T",
        str(max(1, round(seconds))),
        "-r",
        "-f",
        str(script),
    ]
    # The server's session settings (src/wms/store/database.py session_configurer).
    env = {
        **os.environ,
        "PGOPTIONS": "-c search_path=wms,public -c statement_timeout=5000 -c lock_timeout=2000",
    }
    result = subprocess.run([*args, url], capture_output=True, text=True, check=False, env=env)
    out = result.stdout + result.stderr
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    # A statement's error aborts its client; the run's TPS is then of the clients left.
    if tps is None or "Run was aborted" in out:
        # The statement that aborted a client is far above the progress lines: name it.
        errors = [line for line in out.splitlines() if "error" in line.lower()]
        raise RuntimeError("pgbench failed: " + " | ".join(errors[:3])[:1500])
    steady = steady_tps(out)
    return {
        "tps": float(tps[1]) if steady is None else steady,
        "tps_whole_run": float(tps[1]),
        "latency_ms": float(latency[1]) if latency else float("nan"),
        "failed": float(failed[1]) if failed else 0.0,
    }


def replay(
    database: BenchDatabase,
    transactions: list[list[str]],
    *,
    clients: int,
    seconds: float,
    commit: bool = True,
) -> dict[str, float]:
    """pgbench TPS of the captured transactions (committed as ``script`` says, or not)."""
    with tempfile.TemporaryDirectory(prefix="wms-pgbench-") as folder:
        replays = script(transactions, Path(folder) / "replay.sql", commit=commit)
        return pgbench(database.url, replays, clients=clients, seconds=seconds)


REFERENCE = """\\set b random(:lo, :hi)
BEGIN;
SELECT on_hand, allocated FROM wms.inventory_balances WHERE tenant_id = :t AND id = :b FOR UPDATE;
UPDATE wms.inventory_balances SET allocated = allocated + 1, updated_at = now() WHERE tenant_id = :t AND id = :b;
INSERT INTO wms.audit_log (tenant_id, actor, entity, entity_id, action, after) VALUES (:t, 'bench', 'bench-ref', :b, 'allocate', '{"quantity": 1}');
INSERT INTO wms.outbox (tenant_id, event_id, type, source, subject, aggregate, aggregate_id, data) VALUES (:t, gen_random_uuid(), 'bench.ref', '/bench', 'x', 'bench-ref', :b, '{"quantity": 1}');
COMMIT;
"""  # noqa: E501


def reference_allocation(
    database: BenchDatabase,
    tenant_id: int,
    *,
    clients: int,
    seconds: float,
    end: Literal["COMMIT", "ROLLBACK"] = "COMMIT",
) -> dict[str, float]:
    """pgbench TPS of the reference allocation transaction on random balances; undone after.

    ``end="ROLLBACK"`` measures what a replay that ends in ROLLBACK leaves out: the
    commit, whose WAL flush each transaction waits for.
    """
    with psycopg.connect(database.url) as conn:
        lo, hi = conn.execute(
            "SELECT min(id), max(id) FROM wms.inventory_balances WHERE tenant_id = %s",
            (tenant_id,),
        ).fetchone()  # type: ignore[misc]
    with tempfile.TemporaryDirectory(prefix="wms-pgbench-") as folder:
        reference = Path(folder) / "reference.sql"
        reference.write_text(
            REFERENCE.replace(":lo", str(lo))
            .replace(":hi", str(hi))
            .replace(":t", str(tenant_id))
            .replace("COMMIT;", f"{end};")
        )
        result = pgbench(database.url, reference, clients=clients, seconds=seconds)
    with psycopg.connect(database.url) as conn:
        conn.execute(
            "UPDATE wms.inventory_balances b SET allocated = b.allocated - r.n FROM "
            "(SELECT entity_id::bigint AS id, count(*) AS n FROM wms.audit_log "
            "WHERE entity = 'bench-ref' GROUP BY 1) r WHERE b.tenant_id = %s AND b.id = r.id",
            (tenant_id,),
        )
        conn.execute("DELETE FROM wms.audit_log WHERE entity = 'bench-ref'")
        conn.execute("DELETE FROM wms.outbox WHERE type = 'bench.ref'")
    return result


@contextlib.contextmanager
def noop_server(database: BenchDatabase, pool_max: int, processes: int = 1) -> Iterator[list[str]]:
    """bench/noop_app.py in ``processes`` processes of their own; yields their base URLs."""
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(_noop_process(database, pool_max)) for _ in range(processes)]


@contextlib.contextmanager
def _noop_process(database: BenchDatabase, pool_max: int) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database.url,
        "PORT": str(port),
        "WMS_DB_POOL_MAX": str(pool_max),
    }
    log = (database.data_dir / "noop.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.noop_app"], env=env, stdout=log, stderr=log
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base_url + "/select1", timeout=2):  # noqa: S310
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the noop server did not start") from None
                time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
