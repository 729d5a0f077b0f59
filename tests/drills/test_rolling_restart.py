"""The rolling-restart drill, short: no request fails and no write takes effect twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.rolling_restart import NGINX, SERVERS, run

pytestmark = [
    pytest.mark.skipif(not Path(NGINX).exists(), reason=f"no nginx at {NGINX}"),
    pytest.mark.timeout(180),
]


def test_restarting_three_servers_one_by_one_behind_nginx_fails_no_request(
    tmp_path: Path,
) -> None:
    report = run(tmp_path, drain_seconds=1, warmup_seconds=1, settle_seconds=0)
    print(report.text())  # the figures, in the test's output
    assert report.failed == ()
    assert report.wrong == ()
    assert report.duplicated_effects == 0
    assert report.unacknowledged_effects == 0
    assert report.acknowledged_writes > 0
    assert report.requests_in_roll > 0
    assert len(report.restarts) == SERVERS
    # Each server drained and exited 0 on SIGTERM, within the drain window and a margin.
    assert all(r.exit_code == 0 for r in report.restarts), report.restarts
    assert all(r.stop_seconds < report.drain_seconds + 10 for r in report.restarts)
    # The endpoint was off before SIGTERM: nginx never had to answer a 5xx itself.
    assert report.nginx_5xx == 0
