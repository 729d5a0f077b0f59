"""CPU per request, of the server process and of PostgreSQL, for some flows.

Run: ``make bench-cpu`` (``BENCH_CPU_FLOWS=lookup,allocation``; default lookup, intake,
allocation). Throughput on a shared machine moves with the neighbours; the CPU time a
request costs moves much less, so an A/B of a change (run this on both commits) reads
best here. Same server, world and load generator as ``make bench``; CPU from /proc:
the server's process, and PostgreSQL's postmaster with all its children (those that
exited during the run included, through the postmaster's reaped-children times).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

from bench import flows
from bench.harness import (
    admin_token,
    bench_server,
    fresh_database,
    log_warnings_only,
    print_table,
)
from bench.load import Request, closed_loop
from bench.world import load_world
from wms.store.embedded import read_postmaster

SECONDS = 10.0
# The first tenth of the requests, not measured: pool, caches, plans; then ANALYZE.
WARM_UP_SHARE = 0.1
REQUESTS = {"lookup": 30_000, "intake": 6_000, "allocation": 5_000, "pick": 4_000,
            "dispatch": 4_000}  # fmt: skip
_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, *, reaped_children: bool = False) -> float:
    """CPU seconds (user + system) of ``pid``; with its waited-for children's when asked."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS


def postgres_cpu(pgdata: Path) -> float:
    """CPU seconds of the postmaster of ``pgdata``, its live children and its exited ones."""
    postmaster = read_postmaster(pgdata)
    if postmaster is None:
        raise RuntimeError(f"no postmaster runs on {pgdata}")
    total = process_cpu(postmaster.pid, reaped_children=True)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            parent = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == postmaster.pid:
                total += process_cpu(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile: counted among the reaped ones
    return total


def machine_ticks() -> tuple[int, int]:
    """All CPU ticks of the machine so far and the idle ones (/proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]  # idle + iowait


@dataclass(frozen=True)
class Reading:
    """One closed-loop run: its size, rate, errors, CPU per request of each party (µs),
    and the whole machine's busy share (%): under 100, something other than CPU limits."""

    requests: int
    per_second: int
    errors: int
    server_us: int
    postgres_us: int
    load_generator_us: int
    machine_busy: int

    COLUMNS: ClassVar[tuple[str, ...]] = (
        "requests", "req/s", "errors", "server µs/request", "PostgreSQL µs/request",
        "load generator µs/request", "machine busy %",
    )  # fmt: skip

    def row(self) -> list[object]:
        """The reading in ``COLUMNS`` order."""
        return [getattr(self, f.name) for f in fields(self)]


def measure(
    base_url: str,
    token: str,
    requests: list[Request],
    server_pid: int,
    pgdata: Path,
    *,
    seconds: float = SECONDS,
) -> Reading:
    """Run ``requests`` closed-loop for ``seconds`` and read what each party spent."""
    server_before, postgres_before = process_cpu(server_pid), postgres_cpu(pgdata)
    ticks_before, idle_before = machine_ticks()
    outcome = closed_loop(base_url, token, requests, processes=2, connections=8, seconds=seconds)
    ticks_after, idle_after = machine_ticks()
    server_after, postgres_after = process_cpu(server_pid), postgres_cpu(pgdata)
    done = max(len(outcome.samples), 1)
    return Reading(
        requests=len(outcome.samples),
        per_second=round(outcome.throughput),
        errors=outcome.errors,
        server_us=round((server_after - server_before) / done * 1e6),
        postgres_us=round((postgres_after - postgres_before) / done * 1e6),
        load_generator_us=round(outcome.cpu_seconds / done * 1e6),
        machine_busy=round(
            100 * (1 - (idle_after - idle_before) / max(ticks_after - ticks_before, 1))
        ),
    )


def main() -> None:
    """Load the bench world, run each chosen flow after a warm-up, print the table."""
    log_warnings_only()
    wanted = os.environ.get("BENCH_CPU_FLOWS", "lookup,intake,allocation").split(",")
    unknown = set(wanted) - set(REQUESTS)
    if unknown:
        raise SystemExit(f"unknown flows {sorted(unknown)}; known: {sorted(REQUESTS)}")
    rows = []
    with fresh_database() as database:
        token = admin_token(database)
        with bench_server(database, token) as (server, client):
            load_world(client, database.url)
            base, url = server.base_url, database.url
            supply = flows.supplies(client, url, base, token, "CPU")
            pgdata = database.data_dir / "pgdata"
            if "intake" in wanted:
                flows.order_history(url, base, token)
            for name in wanted:
                requests = supply[name](REQUESTS[name])
                warm = int(len(requests) * WARM_UP_SHARE)
                flows.prepare(url, base, token, requests[:warm])  # and analyse
                reading = measure(base, token, requests[warm:], server.process.pid, pgdata)
                rows.append([name, *reading.row()])
    print_table(["flow", *Reading.COLUMNS], rows)


if __name__ == "__main__":
    main()
