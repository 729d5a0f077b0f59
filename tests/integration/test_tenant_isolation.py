"""Tenants are isolated by PostgreSQL itself: forced RLS on every tenant table."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from tests.conftest import ApiClient, TenantKeys
from wms.domain.roles import Role

GLOBAL_TABLES = {"tenants", "api_keys", "flyway_schema_history"}


def tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'wms' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "ORDER BY 1"
    ).fetchall()
    return [row[0] for row in rows]


def test_every_table_forces_rls_or_is_an_allowlisted_global_table(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for table in tables(conn):
            if table in GLOBAL_TABLES:
                continue
            enabled, forced = conn.execute(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = %s::regclass",
                (f"wms.{table}",),
            ).fetchone()  # type: ignore[misc]
            policies = conn.execute(
                "SELECT count(*) FROM pg_policies WHERE schemaname = 'wms' AND tablename = %s",
                (table,),
            ).fetchone()
            assert enabled, f"{table} does not enable row-level security"
            assert forced, f"{table} does not force row-level security"
            assert policies is not None
            assert policies[0] >= 1, f"{table} has no policy"


def test_tenant_id_leads_every_primary_and_foreign_key_of_tenant_tables(
    database_url: str,
) -> None:
    with psycopg.connect(database_url) as conn:
        for table in tables(conn):
            if table in GLOBAL_TABLES:
                continue
            constraints = conn.execute(
                "SELECT conname, contype, "
                "(SELECT attname FROM pg_attribute WHERE attrelid = conrelid "
                " AND attnum = conkey[1]), "
                "confrelid::regclass::text, "
                "(SELECT attname FROM pg_attribute WHERE attrelid = confrelid "
                " AND attnum = confkey[1]) "
                "FROM pg_constraint WHERE conrelid = %s::regclass AND contype IN ('p', 'f')",
                (f"wms.{table}",),
            ).fetchall()
            kinds = {row[1] for row in constraints}
            assert "p" in kinds, f"{table} has no primary key"
            for name, kind, first_column, referenced, referenced_first in constraints:
                assert first_column == "tenant_id", f"{table}.{name} does not lead with tenant_id"
                if kind == "f" and referenced.removeprefix("wms.") not in GLOBAL_TABLES:
                    assert referenced_first == "tenant_id", f"{table}.{name} → {referenced}"


def test_the_runtime_role_cannot_read_global_tables(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("SET ROLE wms_app")
        for table in ("tenants", "api_keys"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM wms.{table}")
            conn.rollback()
            conn.execute("SET ROLE wms_app")


def test_the_runtime_role_sees_no_row_of_another_tenant_in_any_table(
    api: ApiClient, make_tenant: Callable[[], TenantKeys], tenant: TenantKeys, database_url: str
) -> None:
    other = make_tenant()
    other_api = api.as_key(other.keys[Role.ADMIN])
    for client in (api, other_api):
        assert (
            client.post(
                "/warehouses", json={"code": "SP1", "name": "One", "timezone": "UTC"}
            ).status_code
            == 201
        )
        assert client.patch("/settings", json={"allocate_on_create": True}).status_code == 200
    with psycopg.connect(database_url) as conn:
        names = [t for t in tables(conn) if t not in GLOBAL_TABLES]
        conn.execute("SET ROLE wms_app")
        conn.execute("SELECT set_config('app.tenant_id', %s, false)", (str(tenant.tenant_id),))
        for table in names:
            foreign = conn.execute(
                f"SELECT count(*) FROM wms.{table} WHERE tenant_id <> %s", (tenant.tenant_id,)
            ).fetchone()
            assert foreign == (0,), table
        own = conn.execute("SELECT count(*) FROM wms.warehouses").fetchone()
        assert own == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO wms.audit_log (tenant_id, actor, entity, entity_id, action) "
                "VALUES (%s, 'x', 'x', 'x', 'x')",
                (other.tenant_id,),
            )


def test_without_a_bound_tenant_the_runtime_role_sees_nothing(
    api: ApiClient, database_url: str
) -> None:
    assert (
        api.post("/warehouses", json={"code": "SP1", "name": "One", "timezone": "UTC"}).status_code
        == 201
    )
    with psycopg.connect(database_url) as conn:
        conn.execute("SET ROLE wms_app")
        assert conn.execute("SELECT count(*) FROM wms.warehouses").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM wms.audit_log").fetchone() == (0,)


def test_another_tenants_objects_answer_404_by_code(
    api: ApiClient, make_tenant: Callable[[], TenantKeys]
) -> None:
    assert (
        api.post(
            "/warehouses", json={"code": "MINE", "name": "Mine", "timezone": "UTC"}
        ).status_code
        == 201
    )
    intruder = api.as_key(make_tenant().keys[Role.ADMIN])
    assert intruder.get("/warehouses/MINE").status_code == 404
    assert intruder.patch("/warehouses/MINE", json={"name": "Stolen"}).status_code == 404
    assert intruder.get("/warehouses").json()["items"] == []
    assert intruder.get("/audit").json()["items"] == []
    # The same code is free in another tenant.
    assert (
        intruder.post(
            "/warehouses", json={"code": "MINE", "name": "Theirs", "timezone": "UTC"}
        ).status_code
        == 201
    )
    assert api.get("/warehouses/MINE").json()["name"] == "Mine"


def test_a_cursor_from_one_tenant_is_refused_by_another(
    api: ApiClient, make_tenant: Callable[[], TenantKeys]
) -> None:
    for code in ("A", "B"):
        api.post("/warehouses", json={"code": code, "name": code, "timezone": "UTC"})
    cursor = api.get("/warehouses", params={"limit": 1}).json()["next_cursor"]
    assert cursor
    other = api.as_key(make_tenant().keys[Role.ADMIN])
    response = other.get("/warehouses", params={"limit": 1, "cursor": cursor})
    assert response.status_code == 422
    assert response.json()["type"].endswith("/invalid-cursor")


def test_another_tenants_objects_answer_404_by_id(
    api: ApiClient, make_tenant: Callable[[], TenantKeys], tenant: TenantKeys, database_url: str
) -> None:
    from tests.integration.stock_world import build_world

    build_world(api, tenant, database_url)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO wms.locations (tenant_id, warehouse_id, code, type) "
            "SELECT tenant_id, id, 'DOCK-1', 'dock' FROM wms.warehouses WHERE tenant_id = %s",
            (tenant.tenant_id,),
        )
    adjusted = api.post(
        "/inventory/adjustments",
        json={"warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "quantity": 3,
              "reason": "found"},
    )  # fmt: skip
    movement = adjusted.json()["movements"][0]
    count = api.post("/cycle-counts", json={"warehouse": "SP1", "locations": ["A-01"]}).json()
    asn = api.post(
        "/asns",
        json={"reference": "PO-9", "warehouse": "SP1", "supplier": "S",
              "expected_at": "2026-12-01T12:00:00Z", "lines": [{"sku": "SKU-1", "quantity": 1}]},
    ).json()  # fmt: skip
    intruder = api.as_key(make_tenant().keys[Role.ADMIN])
    for path in (
        f"/inventory/movements/{movement}",
        f"/cycle-counts/{count['id']}",
        f"/asns/{asn['id']}",
    ):
        assert api.get(path).status_code == 200, path
        assert intruder.get(path).status_code == 404, path
    assert intruder.post(f"/cycle-counts/{count['id']}/approve").status_code == 404
    assert intruder.post(f"/asns/{asn['id']}/close").status_code == 404
