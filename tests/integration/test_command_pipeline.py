"""The one command pipeline: idempotency, audit and outbox rows, problem+json errors."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from tests.conftest import ApiClient, TenantKeys, until_sessions_wait_for_locks
from tests.e2e.worker_helpers import as_worker
from tests.integration.stock_world import build_world
from tests.integration.test_orders import order_body
from wms.app import create_app
from wms.config import Settings
from wms.domain.roles import Role
from wms.events.worker import chores
from wms.store import idempotency
from wms.store import settings as settings_store

WAREHOUSE = {"code": "SP1", "name": "São Paulo 1", "timezone": "America/Sao_Paulo"}


def count(database_url: str, query: str, *params: object) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


def test_the_same_post_with_the_same_key_has_one_effect_and_replays_the_answer(
    api: ApiClient, database_url: str
) -> None:
    headers = {"Idempotency-Key": "create-sp1"}
    first = api.post("/warehouses", json=WAREHOUSE, headers=headers)
    again = api.post("/warehouses", json=WAREHOUSE, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"] == "/api/v1/warehouses/SP1"
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert count(database_url, "SELECT count(*) FROM wms.warehouses") == 1
    assert count(database_url, "SELECT count(*) FROM wms.audit_log") == 1
    assert count(database_url, "SELECT count(*) FROM wms.outbox") == 1


def test_the_fingerprint_ignores_key_order_and_whitespace(api: ApiClient) -> None:
    headers = {"Idempotency-Key": "k", "Content-Type": "application/json"}
    first = api.post("/warehouses", json=WAREHOUSE, headers=headers)
    reordered = '{ "timezone": "America/Sao_Paulo", "name": "São Paulo 1",  "code": "SP1" }'
    again = api.post("/warehouses", content=reordered.encode(), headers=headers)
    assert again.status_code == 201
    assert again.content == first.content


def test_a_key_reused_with_another_body_is_422_and_changes_nothing(
    api: ApiClient, database_url: str
) -> None:
    headers = {"Idempotency-Key": "reused"}
    assert api.post("/warehouses", json=WAREHOUSE, headers=headers).status_code == 201
    other = api.post("/warehouses", json={**WAREHOUSE, "code": "SP2"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["type"] == "https://wms.example/problems/idempotency-key-reused"
    assert count(database_url, "SELECT count(*) FROM wms.warehouses") == 1


def test_a_key_reused_on_another_resource_is_422_and_changes_nothing(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    """Two body-less commands differ only by their path: the key's first answer is not
    replayed for the second resource."""
    build_world(api, tenant, database_url)
    for number in ("SO-1", "SO-2"):
        assert api.post("/orders", json=order_body(number)).status_code == 201
    headers = {"Idempotency-Key": "cancel"}
    assert api.post("/orders/SO-1/cancel", headers=headers).status_code == 200
    assert api.post("/orders/SO-1/cancel", headers=headers).headers["idempotent-replayed"] == "true"
    other = api.post("/orders/SO-2/cancel", headers=headers)
    assert other.status_code == 422, other.text
    assert other.json()["type"].endswith("/idempotency-key-reused")
    assert api.get("/orders/SO-2").json()["status"] != "cancelled"


def test_keys_are_scoped_per_tenant(api: ApiClient, make_tenant: Any) -> None:
    headers = {"Idempotency-Key": "shared-key"}
    other = api.as_key(make_tenant().keys[Role.ADMIN])
    assert api.post("/warehouses", json=WAREHOUSE, headers=headers).status_code == 201
    second = other.post("/warehouses", json={**WAREHOUSE, "code": "X"}, headers=headers)
    assert second.status_code == 201
    assert "idempotent-replayed" not in second.headers


def test_concurrent_requests_with_one_key_have_one_effect(
    api: ApiClient, database_url: str
) -> None:
    headers = {"Idempotency-Key": "race"}
    answers: list[Any] = []
    barrier = threading.Barrier(8)

    def send() -> None:
        barrier.wait()
        answers.append(api.post("/warehouses", json=WAREHOUSE, headers=headers))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = [a for a in answers if a.status_code == 201]
    in_progress = [a for a in answers if a.status_code == 409]
    assert len(created) + len(in_progress) == 8, [a.status_code for a in answers]
    assert created, "at least the first request succeeds"
    assert len({a.content for a in created}) == 1
    for answer in in_progress:
        assert answer.json()["type"].endswith("/request-in-progress")
        assert answer.headers["retry-after"] == "1"
    assert count(database_url, "SELECT count(*) FROM wms.warehouses") == 1
    replay = api.post("/warehouses", json=WAREHOUSE, headers=headers)
    assert replay.content == created[0].content


def test_an_overlong_idempotency_key_is_422(api: ApiClient) -> None:
    response = api.post("/warehouses", json=WAREHOUSE, headers={"Idempotency-Key": "k" * 256})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_an_idempotency_key_does_not_turn_a_too_deep_body_into_a_500(api: ApiClient) -> None:
    # The fingerprint caught ValueError only: with a key, the RecursionError of a body
    # nested past json's limit was a 500 where the same body without one is a 4xx.
    assert api.post("/warehouses", json=WAREHOUSE).status_code == 201
    for content_type in ("text/csv", "application/json"):
        headers = {"Content-Type": content_type}
        path, deep = "/warehouses/SP1/locations:import", b"[" * 20_000
        without_key = api.post(path, content=deep, headers=headers)
        with_key = api.post(path, content=deep, headers={**headers, "Idempotency-Key": "deep"})
        assert 400 <= without_key.status_code < 500, without_key.text[:200]
        assert with_key.status_code == without_key.status_code, with_key.text[:200]
        assert with_key.json()["type"] == without_key.json()["type"]


def test_the_worker_purges_idempotency_records_past_their_24_hours(
    api: ApiClient, settings: Settings, database_url: str
) -> None:
    # Nothing deleted them (claim only ignored expired records): the table grew for ever.
    for key, code in (("old", "SP1"), ("fresh", "SP2")):
        created = api.post(
            "/warehouses", json={**WAREHOUSE, "code": code}, headers={"Idempotency-Key": key}
        )
        assert created.status_code == 201
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE wms.idempotency_keys SET created_at = now() - interval '24 hours 1 second' "
            "WHERE key = 'old'"
        )

    def keys_left() -> list[str]:
        with psycopg.connect(database_url) as conn:
            return [row[0] for row in conn.execute("SELECT key FROM wms.idempotency_keys")]

    async def chores_until_purged() -> None:
        stop = asyncio.Event()
        every_pass = settings.model_copy(update={"event_prune_interval_seconds": 0.1})
        running = asyncio.create_task(chores(every_pass, database_url, stop))
        try:
            for _ in range(100):
                if await asyncio.to_thread(keys_left) == ["fresh"]:
                    return
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await running

    asyncio.run(chores_until_purged())
    assert keys_left() == ["fresh"]


def test_a_failed_command_leaves_no_audit_event_or_idempotency_record(
    api: ApiClient, database_url: str
) -> None:
    assert api.post("/warehouses", json=WAREHOUSE).status_code == 201
    duplicate = api.post("/warehouses", json=WAREHOUSE, headers={"Idempotency-Key": "dup"})
    assert duplicate.status_code == 409
    assert count(database_url, "SELECT count(*) FROM wms.audit_log") == 1
    assert count(database_url, "SELECT count(*) FROM wms.outbox") == 1
    assert count(database_url, "SELECT count(*) FROM wms.idempotency_keys") == 0


def test_each_command_writes_an_audit_row_with_request_id_and_an_event(
    api: ApiClient, database_url: str
) -> None:
    api.post("/warehouses", json=WAREHOUSE, headers={"X-Request-ID": "req-42"})
    api.patch("/warehouses/SP1", json={"name": "Renamed"})
    with psycopg.connect(database_url) as conn:
        audit = conn.execute(
            "SELECT action, request_id, before->>'name', after->>'name', actor "
            "FROM wms.audit_log ORDER BY id"
        ).fetchall()
        events = conn.execute(
            "SELECT type, source, subject, xid IS NOT NULL FROM wms.outbox ORDER BY id"
        ).fetchall()
    assert [row[:4] for row in audit] == [
        ("created", "req-42", None, "São Paulo 1"),
        ("updated", audit[1][1], "São Paulo 1", "Renamed"),
    ]
    assert all(row[4].startswith("apikey:") for row in audit)
    assert events == [
        ("wms.warehouse.created", "/wms/local/SP1", "warehouse/SP1", True),
        ("wms.warehouse.updated", "/wms/local/SP1", "warehouse/SP1", True),
    ]


def test_audit_listing_filters_by_entity_and_id(api: ApiClient) -> None:
    api.post("/warehouses", json=WAREHOUSE)
    api.post("/warehouses", json={**WAREHOUSE, "code": "SP2"})
    api.patch("/settings", json={"recount_tolerance_pct": 2.5})
    entries = api.get("/audit", params={"entity": "warehouse", "id": "SP2"}).json()["items"]
    assert [(e["entity_id"], e["action"]) for e in entries] == [("SP2", "created")]
    everything = api.get("/audit").json()["items"]
    assert [e["entity"] for e in everything] == ["settings", "warehouse", "warehouse"]


def test_settings_have_defaults_and_only_admins_change_them(
    api: ApiClient, tenant: TenantKeys
) -> None:
    defaults = api.get("/settings").json()
    assert defaults["allocation_strategy"] == "fifo"
    assert defaults["backorder_policy"] == "backorder"
    assert defaults["updated_at"] is None
    supervisor = api.as_key(tenant.keys[Role.SUPERVISOR])
    assert supervisor.patch("/settings", json={"allocation_strategy": "fefo"}).status_code == 403
    changed = api.patch("/settings", json={"allocation_strategy": "fefo"})
    assert changed.status_code == 200
    assert changed.json()["allocation_strategy"] == "fefo"
    assert supervisor.get("/settings").json()["allocation_strategy"] == "fefo"
    bad = api.patch("/settings", json={"recount_tolerance_pct": 150})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "/recount_tolerance_pct"


def test_settings_before_any_change_are_the_table_s_column_defaults(
    tenant: TenantKeys, database_url: str
) -> None:
    # The store answers a tenant without a settings row from defaults of its own: they
    # must stay the ones a row is created with (migrations own those).
    async def read(for_update: bool) -> dict[str, Any]:
        async with await psycopg.AsyncConnection.connect(
            database_url, options="-c search_path=wms"
        ) as conn:
            return await settings_store.get(conn, tenant.tenant_id, for_update=for_update)

    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM wms.tenant_settings WHERE tenant_id = %s", (tenant.tenant_id,))
    before = asyncio.run(read(for_update=False))
    created = asyncio.run(read(for_update=True))  # inserts the row with the table's defaults
    assert before.pop("updated_at") is None
    created.pop("updated_at")
    assert before == created


def test_every_error_is_problem_json_with_the_right_status_and_type(api: ApiClient) -> None:
    cases = [
        (api.get("/no-such-thing"), 404, "not-found"),
        (api.client.get("/nowhere"), 404, "not-found"),
        (api.request("DELETE", "/warehouses"), 405, "method-not-allowed"),
        (
            api.post(
                "/warehouses",
                content=b'{"code": "SP1",',
                headers={"Content-Type": "application/json"},
            ),
            400,
            "malformed-json",
        ),
        (
            # Latin-1, not UTF-8: FastAPI cannot decode it (a 400 of its own, before JSON).
            api.post(
                "/warehouses",
                content='{"code": "SP1", "name": "São", "timezone": "UTC"}'.encode("latin-1"),
                headers={"Content-Type": "application/json"},
            ),
            400,
            "malformed-json",
        ),
        (api.post("/warehouses", data={"code": "SP1"}), 415, "unsupported-media-type"),
        (api.get("/warehouses/NOPE"), 404, "not-found"),
        (api.get("/warehouses", params={"limit": 0}), 422, "validation-error"),
        (api.get("/warehouses", params={"cursor": "garbage"}), 422, "invalid-cursor"),
    ]
    for response, status, slug in cases:
        assert response.status_code == status, (slug, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["type"] == f"https://wms.example/problems/{slug}"
        assert body["status"] == status
        assert body["title"]
        assert body["detail"]


def test_wrong_types_are_422_with_json_pointer_fields(api: ApiClient) -> None:
    response = api.post(
        "/warehouses", json={"code": 5, "name": "", "timezone": "Nowhere/City", "extra": 1}
    )
    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"/code", "/name", "/timezone", "/extra"}
    nested = api.put("/warehouses/SP1/carrier-cutoffs", json={"cutoffs": [{"carrier": "C"}]})
    assert nested.status_code == 422
    assert nested.json()["errors"][0]["field"] == "/cutoffs/0/time"


def test_keyset_paging_returns_every_row_once_and_ends_with_a_null_cursor(
    api: ApiClient,
) -> None:
    for number in range(7):
        api.post("/warehouses", json={**WAREHOUSE, "code": f"W{number}"})
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/warehouses", params=params).json()
        seen += [item["code"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"W{number}" for number in range(7)]


def test_statement_and_lock_timeouts_answer_503_and_change_nothing(
    settings: Any, tenant: TenantKeys, database_url: str
) -> None:
    from fastapi.testclient import TestClient

    from wms.app import create_app

    slow = settings.model_copy(update={"statement_timeout_ms": 300, "lock_timeout_ms": 10_000})
    impatient = settings.model_copy(update={"statement_timeout_ms": 10_000, "lock_timeout_ms": 200})
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE wms.warehouses IN ACCESS EXCLUSIVE MODE")
        for variant in (slow, impatient):
            with TestClient(create_app(variant), raise_server_exceptions=False) as client:
                client_api = ApiClient(client, tenant.keys[Role.ADMIN])
                read = client_api.get("/warehouses")
                assert read.status_code == 503, read.text
                assert read.headers["retry-after"]
                write = client_api.post("/warehouses", json=WAREHOUSE)
                assert write.status_code in {409, 503}, write.text
                assert write.headers["content-type"] == "application/problem+json"
        blocker.rollback()
    assert count(database_url, "SELECT count(*) FROM wms.warehouses") == 0


def test_api_answers_carry_security_headers(api: ApiClient) -> None:
    for response in (api.get("/warehouses"), api.get("/warehouses/NOPE")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in response.headers["content-security-policy"]


PAUSE_AFTER_SAVE = """
CREATE FUNCTION wms.test_pause_after_save() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(4242);  -- held by the test: the request waits here,
    RETURN NULL;                          -- its record written and locked, not committed
END $$;
CREATE TRIGGER test_pause_after_save AFTER UPDATE ON wms.idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION wms.test_pause_after_save();
"""


def test_the_purge_of_expired_idempotency_records_spares_one_saved_again_meanwhile(
    api: ApiClient, settings: Settings, database_url: str, tenant: TenantKeys
) -> None:
    # A key reused after its 24 hours: the new answer replaces the expired record. The
    # purge waiting for that row re-checked only its identity and deleted the new record:
    # the client's retry ran the command again.
    key = {"Idempotency-Key": "K-REUSED"}
    first = api.post("/warehouses", json={"code": "W1", "name": "W", "timezone": "UTC"},
                     headers=key)  # fmt: skip
    assert first.status_code == 201, first.text
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE wms.idempotency_keys SET created_at = now() - interval '25 hours'"
        )  # a day later
        conn.execute(PAUSE_AFTER_SAVE)

    body = {"code": "W2", "name": "W", "timezone": "UTC"}
    patient = settings.model_copy(update={"lock_timeout_ms": 20_000})
    with (
        TestClient(create_app(patient)) as client,
        psycopg.connect(database_url, autocommit=True) as blocker,
        ThreadPoolExecutor(2) as pool,
    ):
        reuser = ApiClient(client, api.token)
        blocker.execute("SELECT pg_advisory_lock(4242)")
        second = pool.submit(reuser.post, "/warehouses", json=body, headers=key)
        until_sessions_wait_for_locks(database_url, 1, "the request after its save")
        purge = pool.submit(
            as_worker, database_url, lambda conn: idempotency.purge_expired(conn, limit=5000)
        )
        until_sessions_wait_for_locks(database_url, 2, "the purge on the saved record")
        blocker.execute("SELECT pg_advisory_unlock(4242)")
        assert second.result(timeout=20).status_code == 201
        purged = purge.result(timeout=20)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER test_pause_after_save ON wms.idempotency_keys")
        kept = conn.execute("SELECT count(*) FROM wms.idempotency_keys").fetchone()

    # The client retries the request it just made (a lost response): a replay is due.
    retry = api.post("/warehouses", json=body, headers=key)
    replayed = retry.headers.get("Idempotent-Replayed")
    assert (purged, kept, retry.status_code, replayed) == (0, (1,), 201, "true"), (
        f"the purge deleted the record saved under it: the retry ran again: {retry.text}"
    )
