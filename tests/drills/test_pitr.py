"""The PITR drill, short: a destroyed primary comes back from backup + WAL with RPO 0."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.cluster import PG_BIN
from drills.pitr import run

pytestmark = [
    pytest.mark.skipif(not (PG_BIN / "pg_ctl").exists(), reason=f"no PostgreSQL in {PG_BIN}"),
    pytest.mark.timeout(240),
]


def test_restoring_base_backup_and_synchronous_wal_archive_loses_no_acknowledged_order(
    tmp_path: Path,
) -> None:
    report = run(tmp_path, warmup_seconds=2, detection_seconds=1)
    print(report.text())  # the figures, in the test's output
    assert report.acknowledged > 0
    assert report.lost == 0  # RPO 0: pg_receivewal --synchronous flushed every ack
    assert report.wal_segments >= 1
    assert report.first_write_after_seconds is not None
    # RTO target of the seed: 30 min; on a drill-sized database it is seconds.
    assert report.rto_seconds < 120
