"""How ``make bench`` shapes a measured run (bench/run.py) and reports a short one."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from bench import flows, report, run
from bench.load import Outcome, Request

WORK: list[Request] = [("GET", f"/r/{index}", None) for index in range(10)]


class Recorder:
    """A run that answers every request it is given with ``status``, and remembers them."""

    def __init__(self, status: int = 200) -> None:
        self.calls: list[tuple[list[Request], float]] = []
        self.status = status

    def __call__(self, work: list[Request], seconds: float) -> Outcome:
        self.calls.append((work, seconds))
        return Outcome(samples=[(0.0, 0.001, self.status)] * len(work), seconds=seconds)


def test_the_measured_run_follows_a_warm_up_on_the_first_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(run, "WARM_SECONDS", 2.0)
    recorder = Recorder()
    warm_up, measured = run.after_warm_up(recorder, WORK, warm=3, seconds=15.0)
    assert recorder.calls == [(WORK[:3], 2.0), (WORK[3:], 15.0)]
    assert (len(warm_up.samples), len(measured.samples)) == (3, 7)


def test_without_warm_up_the_whole_work_is_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "WARM_SECONDS", 0.0)
    recorder = Recorder()
    warm_up, _ = run.after_warm_up(recorder, WORK, warm=3, seconds=15.0)
    assert recorder.calls == [(WORK, 15.0)]
    assert warm_up.samples == []


def test_errors_in_a_warm_up_are_reported_by_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "WARM_SECONDS", 1.0)
    warm_up, _ = run.after_warm_up(Recorder(status=409), WORK, warm=3, seconds=15.0)
    assert run.error_statuses(warm_up) == {"409": 3}


def test_a_closed_loop_that_ran_out_of_work_is_named() -> None:
    stored = json.loads((Path(run.__file__).parent / "results.json").read_text())
    results = copy.deepcopy(stored)
    for flow in results["flows"].values():
        flow["max"]["seconds"] = results["seconds"]
    assert not any("ran out" in line for line in report.flow_sections(results))
    results["flows"]["intake"]["max"]["seconds"] = 0.5 * results["seconds"]
    named = [line for line in report.flow_sections(results) if "ran out" in line]
    assert len(named) == 1
    assert "(b) order intake after" in named[0]


def test_replayable_picks_leave_each_source_balance_enough_for_any_replay() -> None:
    # (task, location, sku, quantity, source balance, its allocation before the picks)
    rows = [
        (1, "A", "S", 2, 10, 4),  # balance 10: 4 allocated
        (2, "A", "S", 2, 10, 4),  # both picks would leave 0: a replay fails on allocated >= 0
        (3, "B", "S", 1, 11, 5),
        (4, "B", "S", 3, 11, 5),  # 5 - 4 = 1 left, under the 3 a replay of it takes
        (5, "C", "S", 1, None, None),  # no source balance left
    ]
    assert [task[0] for task in flows._replayable(rows)] == [1, 3]
