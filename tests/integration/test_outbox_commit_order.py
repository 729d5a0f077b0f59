"""The relay publishes in commit order (V16), not in transaction-id order.

Before V16 it read rows by (xid, id), below the snapshot's xmin: a transaction that took
its id early and changed an aggregate after another one reached Kafka first, and any
open write transaction held every later event back.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from tests.conftest import TenantKeys
from tests.e2e.worker_helpers import as_worker, prune, relay_once, write_events
from tests.integration.kafka_fixtures import Broker
from wms.events import outbox_sql
from wms.store.migrations import Migrator, default_migrations_dir, load_migrations

EVENT = (
    "INSERT INTO wms.outbox (tenant_id, event_id, type, source, subject, aggregate, "
    "aggregate_id, data) VALUES (%s, gen_random_uuid(), 'wms.test.sequenced', '/wms/local/-', "
    "'test/K', 'test', 'K', %s)"
)

EVENT_OF_XID = EVENT.replace("(tenant_id,", "(xid, tenant_id,").replace(
    "VALUES (", "VALUES (%s::xid8, "
)


def as_tenant(database_url: str, tenant_id: int) -> psycopg.Connection:
    """A connection whose transaction acts as the runtime role bound to ``tenant_id``."""
    conn = psycopg.connect(database_url)
    conn.execute("SELECT set_config('role', 'wms_app', true)")
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant_id),))
    return conn


def commits(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM wms.outbox_commits").fetchone()
    return int(row[0]) if row else 0


def test_of_two_changes_of_one_aggregate_the_first_committed_is_published_first(
    database_url: str, tenant: TenantKeys, kafka_broker: Broker
) -> None:
    write_events(database_url, tenant.tenant_id, [("K", {"seq": 0, "what": "created"})])
    early = as_tenant(database_url, tenant.tenant_id)
    later = as_tenant(database_url, tenant.tenant_id)
    try:
        # The first to take a transaction id is the last to change K (it waited for it).
        (early_xid,) = early.execute("SELECT pg_current_xact_id()::text").fetchone()  # type: ignore[misc]
        later.execute(EVENT, (tenant.tenant_id, Jsonb({"seq": 1, "what": "changed first"})))
        (later_xid,) = later.execute("SELECT pg_current_xact_id()::text").fetchone()  # type: ignore[misc]
        later.commit()
        early.execute(EVENT, (tenant.tenant_id, Jsonb({"seq": 2, "what": "changed then"})))
        early.commit()
    finally:
        early.close()
        later.close()
    assert int(early_xid) < int(later_xid)

    assert relay_once(database_url, kafka_broker) == 3
    records = kafka_broker.read("wms.events", at_least=3)
    assert [r["value"]["data"]["seq"] for r in records] == [0, 1, 2]  # before: 0, 2, 1
    assert commits(database_url) == 0  # forgotten once published


def test_an_open_transaction_holds_back_no_committed_event(
    database_url: str, tenant: TenantKeys, kafka_broker: Broker
) -> None:
    open_tx = as_tenant(database_url, tenant.tenant_id)
    try:
        open_tx.execute(EVENT, (tenant.tenant_id, Jsonb({"seq": 9, "what": "still open"})))
        write_events(database_url, tenant.tenant_id, [("K", {"seq": 0}), ("L", {"seq": 0})])
        assert relay_once(database_url, kafka_broker) == 2  # before: 0 until it ended
        open_tx.commit()
    finally:
        open_tx.close()
    assert relay_once(database_url, kafka_broker) == 1
    assert relay_once(database_url, kafka_broker) == 0


def test_without_a_relay_the_commits_of_pruned_events_are_forgotten(
    database_url: str, tenant: TenantKeys
) -> None:
    write_events(database_url, tenant.tenant_id, [("K", {"seq": 0})], age_days=30)
    write_events(database_url, tenant.tenant_id, [("K", {"seq": 1})])
    assert commits(database_url) == 2
    assert prune(database_url, published_only=False) == 1
    assert as_worker(database_url, outbox_sql.sweep_commits) == 1
    assert commits(database_url) == 1  # the recent one still has its event


def test_upgrading_numbers_the_waiting_events_in_their_old_order(
    empty_database_url: str, tmp_path: Path
) -> None:
    before = tmp_path / "migrations"
    before.mkdir()
    for migration in load_migrations():
        if int(migration.version) < 16:
            shutil.copy(default_migrations_dir() / migration.script, before)
    Migrator(empty_database_url, folder=before).migrate()
    with psycopg.connect(empty_database_url) as conn:
        (tenant_id,) = conn.execute(
            "INSERT INTO wms.tenants (code, name) VALUES ('t', 'T') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        conn.commit()
        xids = []
        for seq in range(3):
            conn.execute(EVENT, (tenant_id, Jsonb({"seq": seq})))
            (xid,) = conn.execute("SELECT pg_current_xact_id()::text").fetchone()  # type: ignore[misc]
            xids.append(xid)
            conn.commit()
        conn.execute("UPDATE wms.outbox SET published_at = now() WHERE data->>'seq' = '0'")
        conn.commit()

    Migrator(empty_database_url).migrate()
    with psycopg.connect(empty_database_url) as conn:
        numbered = conn.execute("SELECT xid::text FROM wms.outbox_commits ORDER BY seq").fetchall()
    assert [row[0] for row in numbered] == xids[1:]  # the published one needs none


def test_every_transaction_id_of_a_commit_gets_its_number_and_a_clash_fails_loudly(
    database_url: str, tenant: TenantKeys
) -> None:
    # Rows carrying explicit transaction ids (copied back from an archive) each need one.
    with psycopg.connect(database_url) as conn:
        for xid in ("5", "6"):
            conn.execute(
                EVENT.replace("(tenant_id,", "(xid, tenant_id,").replace(
                    "VALUES (", "VALUES (%s::xid8, "
                ),
                (xid, tenant.tenant_id, Jsonb({"seq": int(xid)})),
            )
        conn.commit()
        numbered = conn.execute("SELECT xid::text FROM wms.outbox_commits ORDER BY seq").fetchall()
        assert [row[0] for row in numbered] == ["5", "6"]
        # A sequence set back must not drop a commit's number (its events would wait forever).
        conn.execute("SELECT setval('wms.outbox_commit_seq', 1, false)")
        conn.commit()
        conn.execute(EVENT, (tenant.tenant_id, Jsonb({"seq": 7})))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.commit()
