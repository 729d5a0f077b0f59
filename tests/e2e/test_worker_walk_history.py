"""The worker prunes location re-sequencing history past the walk's life (V17)."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.conftest import ApiClient
from tests.e2e.conftest import Launch
from tests.e2e.worker_helpers import start_worker, wait_until

pytestmark = pytest.mark.slow


def history(database_url: str) -> tuple[int, int]:
    """(rows of re-sequencing history, the warehouse's pruned number)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM wms.location_resequencing), "
            "(SELECT location_walk_pruned_version FROM wms.warehouses WHERE code = 'WH')"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_the_worker_prunes_old_resequencing_history(
    launch: Launch, *, tmp_path: Path, database_url: str, api: ApiClient
) -> None:
    assert api.post("/warehouses", json={"code": "WH", "name": "W", "timezone": "UTC"}).is_success
    for code in ("A", "B"):
        created = api.post("/warehouses/WH/locations", json={"code": code, "type": "storage"})
        assert created.status_code == 201, created.text
    for code, sequence in (("A", 5), ("B", 6)):
        moved = api.patch(f"/warehouses/WH/locations/{code}", json={"pick_sequence": sequence})
        assert moved.status_code == 200, moved.text
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE wms.location_resequencing SET changed_at = now() - interval '8 days' "
            "WHERE walk_version = 1"
        )
    assert history(database_url) == (2, 0)

    # No Kafka: the chores run all the same.
    worker = start_worker(launch, tmp_path, database_url, "", WMS_EVENT_PRUNE_INTERVAL_SECONDS="1")
    wait_until(lambda: history(database_url) == (1, 1), 30, worker)
