"""A/B of CPU per request in one run: a base commit's server against the working tree's.

Run: ``make bench-ab`` (``BENCH_AB_BASE``, default ``HEAD``: the working tree against
its last commit; ``BENCH_AB_FLOWS``, default lookup,intake,allocation,pick,dispatch;
``BENCH_AB_ROUNDS``, 4).

``make bench-cpu`` run on two commits one after the other compares two moments of a
shared host, whose speed moved 20% within ten minutes (bench/FINDINGS.md): a change
worth 3–10% of a request's CPU drowned in it. Here both servers run at once on one
database, the base commit's code from a git worktree (``PYTHONPATH``) and the working
tree's, and serve alternating bursts of the same flow (A B, then B A, round after
round), so a slow spell falls on both sides. Each burst reads from /proc the CPU its
server and PostgreSQL spent per request; the table gives each side's median over the
rounds, their spread, and B/A. Both commits must share the database schema: the
working tree migrates it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench import flows
from bench.cpu_per_request import REQUESTS, SECONDS, WARM_UP_SHARE, measure
from bench.harness import (
    BENCH_SERVER_ENV,
    Server,
    admin_token,
    bench_server,
    fresh_database,
    log_warnings_only,
    print_table,
    running_server,
)
from bench.world import load_world

REPO = Path(__file__).resolve().parent.parent
BURST_SHARE = 0.5  # a burst is half of make bench-cpu's 10 s run


@contextlib.contextmanager
def base_tree(ref: str) -> Iterator[Path]:
    """A detached git worktree of ``ref``, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="wms-ab-")) / "tree"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(folder), ref],
        check=True,
    )
    try:
        yield folder
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(folder)], check=False
        )
        shutil.rmtree(folder.parent, ignore_errors=True)


def _spread(values: list[int]) -> str:
    return f"{min(values):,.0f}–{max(values):,.0f}"


def main() -> None:
    """Start both servers, alternate bursts per flow, print the table."""
    log_warnings_only()
    ref = os.environ.get("BENCH_AB_BASE", "HEAD")
    wanted = os.environ.get("BENCH_AB_FLOWS", "lookup,intake,allocation,pick,dispatch").split(",")
    rounds = int(os.environ.get("BENCH_AB_ROUNDS", "4"))
    unknown = set(wanted) - set(REQUESTS)
    if unknown:
        raise SystemExit(f"unknown flows {sorted(unknown)}; known: {sorted(REQUESTS)}")
    rows: list[list[object]] = []
    with base_tree(ref) as tree, fresh_database() as database:
        token = admin_token(database)
        env = {**BENCH_SERVER_ENV, "PYTHONPATH": str(tree / "src")}
        with (
            bench_server(database, token) as (new, client),
            running_server(database, **env) as old,
        ):
            load_world(client, database.url)
            url, pgdata = database.url, database.data_dir / "pgdata"
            sides: dict[str, Server] = {"A": old, "B": new}
            supply = flows.supplies(client, url, new.base_url, token, "AB")
            if "intake" in wanted:
                flows.order_history(url, new.base_url, token)
            for name in wanted:
                burst = int(REQUESTS[name] * BURST_SHARE)
                for server in sides.values():  # warm each server's pool and plans
                    warm = supply[name](int(burst * WARM_UP_SHARE) + 1)
                    flows.prepare(url, server.base_url, token, warm)
                server_us: dict[str, list[int]] = {"A": [], "B": []}
                postgres_us: dict[str, list[int]] = {"A": [], "B": []}
                for index in range(rounds):
                    for side in "AB" if index % 2 == 0 else "BA":
                        server = sides[side]
                        reading = measure(
                            server.base_url, token, supply[name](burst),
                            server.process.pid, pgdata, seconds=SECONDS * BURST_SHARE,
                        )  # fmt: skip
                        if reading.errors:
                            raise RuntimeError(f"{name}, side {side}: {reading.errors} errors")
                        server_us[side].append(reading.server_us)
                        postgres_us[side].append(reading.postgres_us)
                a, b = (statistics.median(server_us[s]) for s in "AB")
                pa, pb = (statistics.median(postgres_us[s]) for s in "AB")
                rows.append([name, f"{a:,.0f}", _spread(server_us["A"]), f"{b:,.0f}",
                             _spread(server_us["B"]), f"{b / a:.2f}", f"{pa:,.0f}",
                             f"{pb:,.0f}", f"{pb / pa:.2f}"])  # fmt: skip
    print(f"A = {ref}, B = the working tree; {rounds} alternated bursts a side; µs per request")
    print_table(
        ["flow", "server A", "A range", "server B", "B range", "B/A", "PostgreSQL A",
         "PostgreSQL B", "B/A"],
        rows,
    )  # fmt: skip


if __name__ == "__main__":
    main()
