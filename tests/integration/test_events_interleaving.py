"""A transaction committing its event after later ones is delivered, never skipped."""

from __future__ import annotations

import time
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from tests.conftest import ApiClient, TenantKeys
from tests.e2e.worker_helpers import prune, relay_once, write_events
from tests.integration.kafka_fixtures import Broker


def open_long_transaction(database_url: str, tenant: TenantKeys) -> psycopg.Connection:
    """A tenant transaction that writes an event now and commits when the test says."""
    conn = psycopg.connect(database_url)
    conn.execute("SET search_path = wms, public")
    conn.execute("SELECT set_config('role', 'wms_app', true)")
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (str(tenant.tenant_id),))
    conn.execute(
        "INSERT INTO outbox (tenant_id, event_id, type, source, subject, aggregate, "
        "aggregate_id, data) VALUES (%s, gen_random_uuid(), 'wms.warehouse.updated', "
        "'/wms/local/LONG', 'warehouse/LONG', 'warehouse', 'LONG', %s)",
        (tenant.tenant_id, Jsonb({"code": "LONG"})),
    )
    return conn


def settled_feed(api: ApiClient, params: dict[str, Any], at_least: int) -> dict[str, Any]:
    """A feed page once it shows ``at_least`` items (20 s at most).

    The feed shows a transaction once every older one of the cluster ended: on a shared
    server another database's transaction may hold it back a moment.
    """
    deadline = time.monotonic() + 20
    page: dict[str, Any] = api.get("/events", params=params).json()
    while len(page["items"]) < at_least and time.monotonic() < deadline:
        time.sleep(0.2)
        page = api.get("/events", params=params).json()
    return page


def feed(api: ApiClient, cursor: str | None) -> tuple[list[str], str]:
    response = api.get("/events", params={"cursor": cursor} if cursor else {})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"]
    return [item["subject"] for item in body["items"]], body["next_cursor"]


def test_a_late_commit_reaches_the_feed_after_the_later_ones_and_kafka_when_committed(
    api: ApiClient, tenant: TenantKeys, database_url: str, kafka_broker: Broker
) -> None:
    wh = {"name": "W", "timezone": "UTC"}
    assert api.post("/warehouses", json={"code": "EARLY", **wh}).status_code == 201
    long_tx = open_long_transaction(database_url, tenant)
    try:
        assert api.post("/warehouses", json={"code": "LATER", **wh}).status_code == 201
        # The snapshot xmin is cluster-wide: on a shared server another database's
        # transaction may hold EARLY back for a moment, so wait for it (bounded).
        deadline = time.monotonic() + 20
        seen, cursor = feed(api, None)
        while not seen and time.monotonic() < deadline:
            time.sleep(0.2)
            seen, cursor = feed(api, None)
        assert seen == ["warehouse/EARLY"]  # LATER waits behind the open transaction
        # Kafka gets what is committed, in commit order (V16): LATER does not wait.
        assert relay_once(database_url, kafka_broker) == 2
        again, same = feed(api, cursor)
        assert again == []
        assert same == cursor  # nothing new: the same position
        long_tx.commit()
    finally:
        long_tx.close()
    deadline = time.monotonic() + 20
    rest, _ = feed(api, cursor)
    while len(rest) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        rest, _ = feed(api, cursor)
    assert rest == ["warehouse/LONG", "warehouse/LATER"]
    assert relay_once(database_url, kafka_broker) == 1
    records = kafka_broker.read("wms.events", at_least=3)
    subjects = [r["value"]["subject"] for r in records]
    assert sorted(subjects) == ["warehouse/EARLY", "warehouse/LATER", "warehouse/LONG"]
    first = records[0]
    assert first["headers"]["ce_id"] == first["value"]["id"]
    assert first["headers"]["ce_type"] == first["value"]["type"]
    assert first["key"] == f"{tenant.code}/warehouse/{first['value']['subject'].split('/')[1]}"
    assert first["value"]["tenant"] == tenant.code
    assert first["value"]["specversion"] == "1.0"


def test_the_feed_answers_410_for_a_cursor_before_pruned_events(
    api: ApiClient, database_url: str
) -> None:
    wh = {"name": "W", "timezone": "UTC"}
    assert api.post("/warehouses", json={"code": "OLD1", **wh}).status_code == 201
    _, start = feed(api, None)
    assert api.post("/warehouses", json={"code": "OLD2", **wh}).status_code == 201
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE wms.outbox SET occurred_at = now() - interval '30 days'")

    assert prune(database_url, published_only=False) == 2
    response = api.get("/events", params={"cursor": start})
    assert response.status_code == 410
    assert response.json()["type"].endswith("/cursor-expired")
    fresh = api.get("/events")
    assert fresh.status_code == 200
    assert fresh.json()["items"] == []
    assert fresh.json()["next_cursor"]


def test_the_feed_pages_as_every_list_does(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    write_events(database_url, tenant.tenant_id, [("P", {"seq": n}) for n in range(60)])
    first = settled_feed(api, {}, 50)
    assert [item["data"]["seq"] for item in first["items"]] == list(range(50))
    rest = api.get("/events", params={"cursor": first["next_cursor"], "limit": 500})
    assert [item["data"]["seq"] for item in rest.json()["items"]] == list(range(50, 60))
    too_many = api.get("/events", params={"limit": 501})
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "limit"
