"""The own-SQL ceiling's replay scripts (bench/ceilings.py): they commit, and change nothing.

A ceiling that rolls back skips the commit's WAL flush, which every command of the server
waits for; one that changes the database cannot be replayed for fifteen seconds.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from bench import ceilings

CAPTURED = [
    "BEGIN",
    "UPDATE public.replay_probe SET n = n + 1 WHERE id = 1",
    "INSERT INTO public.replay_probe (id, n) VALUES (2, 0)",
    "COMMIT",
]


def _probe(url: str) -> list[tuple[int, int]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, n FROM public.replay_probe ORDER BY id").fetchall()


def _statements(script: Path) -> list[str]:
    """The SQL of a one-transaction script, without pgbench's meta-commands."""
    lines = script.read_text().splitlines()
    return [line.removesuffix(";") for line in lines if line and not line.startswith("\\")]


def _make_probe(url: str, ids: range = range(1, 2)) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE public.replay_probe (id int PRIMARY KEY, n int NOT NULL)")
        conn.execute(
            "INSERT INTO public.replay_probe SELECT g, 0 FROM generate_series(%s::int, %s::int) g",
            (ids.start, ids.stop - 1),
        )


def test_a_committed_replay_writes_in_a_transaction_with_an_id_and_leaves_nothing(
    database_url: str, tmp_path: Path
) -> None:
    _make_probe(database_url)
    script = ceilings.script([CAPTURED], tmp_path / "replay.sql")
    *work, commit = _statements(script)
    assert commit == "COMMIT"
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in work:
            conn.execute(statement)
        # An id means a commit record and a wait for its WAL flush, as the server's commits.
        xid = conn.execute("SELECT pg_current_xact_id_if_assigned() IS NOT NULL").fetchone()
        assert xid == (True,)
        conn.execute(commit)
    assert _probe(database_url) == [(1, 0)]


def test_pgbench_repeats_both_replays_without_failures_or_traces(
    database_url: str, tmp_path: Path
) -> None:
    _make_probe(database_url)
    for commit in (True, False):
        replays = ceilings.script([CAPTURED], tmp_path / f"{commit}.sql", commit=commit)
        # The INSERT would fail on its key at the second transaction if one stayed.
        result = ceilings.pgbench(database_url, replays, clients=2, seconds=3)
        assert result["tps"] > 0
        assert result["tps_whole_run"] > 0
        assert result["failed"] == 0
        assert _probe(database_url) == [(1, 0)]
    rolled_back = _statements(ceilings.script([CAPTURED], tmp_path / "r.sql", commit=False))
    assert rolled_back[-1] == "ROLLBACK"
    assert not any("SAVEPOINT" in s for s in rolled_back)


def test_each_client_replays_its_own_document(database_url: str, tmp_path: Path) -> None:
    # A document locks its row without waiting: two clients replaying the same one at
    # once would fail it, pgbench would abort a client and `ceilings.pgbench` raise.
    _make_probe(database_url, range(3))
    documents = [
        [
            "BEGIN",
            f"SELECT n FROM public.replay_probe WHERE id = {k} FOR UPDATE NOWAIT",
            f"UPDATE public.replay_probe SET n = n + 1 WHERE id = {k}",
            "SELECT pg_sleep(0.001)",
            "COMMIT",
        ]
        for k in range(3)
    ]
    replays = ceilings.script(documents, tmp_path / "own.sql")
    result = ceilings.pgbench(database_url, replays, clients=3, seconds=2)
    assert result["tps"] > 0
    assert result["failed"] == 0
    assert _probe(database_url) == [(0, 0), (1, 0), (2, 0)]


PROGRESS = """\
pgbench (18.1)
progress: 1.0 s, 100.0 tps, lat 1.000 ms stddev 0.100, 0 failed
progress: 2.0 s, 300.0 tps, lat 1.000 ms stddev 0.100, 0 failed
progress: 3.0 s, 400.0 tps, lat 1.000 ms stddev 0.100, 0 failed
progress: 4.0 s, 500.0 tps, lat 1.000 ms stddev 0.100, 0 failed
progress: 5.0 s, 600.0 tps, lat 1.000 ms stddev 0.100, 0 failed
tps = 380.0 (without initial connection time)
"""


def test_the_steady_rate_leaves_out_the_first_quarter_of_the_seconds() -> None:
    # Five seconds: the first (the clients preparing their statements) is left out.
    assert ceilings.steady_tps(PROGRESS) == 450.0
    one_second = "\n".join(PROGRESS.splitlines()[:2])
    assert ceilings.steady_tps(one_second) is None
