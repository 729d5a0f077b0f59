"""Every /api/v1 route refuses missing, bad, revoked and expired keys, and wrong roles."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.routing import APIRoute

from tests.conftest import ApiClient, TenantKeys
from wms.api.permissions import API_PREFIX, ROUTE_ROLES, allowed_roles
from wms.api.routes import discover_routers
from wms.config import Settings
from wms.domain.roles import Role
from wms.ops.secrets import api_key_pepper
from wms.services import tenants
from wms.store.tenants import admin_connection


def api_routes(api: ApiClient) -> Iterator[tuple[str, str]]:
    """Every (method, template) under /api/v1, from the app's own OpenAPI document."""
    spec = api.client.get("/openapi.json").json()
    for path, operations in sorted(spec["paths"].items()):
        if path.startswith(API_PREFIX):
            for method in sorted(operations):
                yield method.upper(), path


def test_the_openapi_document_lists_every_mounted_api_route(api: ApiClient) -> None:
    mounted = {
        (method, route.path_format)
        for router in discover_routers()
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert mounted == set(api_routes(api))


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "NOPE-1", path)


def call(api: ApiClient, method: str, path: str) -> int:
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    return api.request(method, concrete(path), json=body).status_code


def test_every_state_changing_route_is_in_the_role_matrix(api: ApiClient) -> None:
    routes = list(api_routes(api))
    assert routes, "no /api/v1 routes found"
    for method, path in routes:
        allowed_roles(method, path)  # raises for a route missing from the table
    listed = {(m, p) for m, p in routes if m not in {"GET", "HEAD"}}
    assert listed <= set(ROUTE_ROLES)


def test_without_a_credential_every_route_answers_401_problem(api: ApiClient) -> None:
    anonymous = api.as_key(None)
    for method, path in api_routes(api):
        response = anonymous.request(method, concrete(path))
        assert response.status_code == 401, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["type"].endswith("/unauthorized")


def test_a_body_that_does_not_decode_is_refused_for_its_credential_first(
    api: ApiClient, tenant: TenantKeys
) -> None:
    """FastAPI decodes a body before the routes' credential check: a broken body with no
    (or a weak) credential answered 400, telling a stranger the route parses JSON."""
    json_headers = {"Content-Type": "application/json"}
    for body in (b'{"code": "SP1",', '{"name": "São"}'.encode("latin-1")):
        anonymous = api.as_key(None).post("/warehouses", content=body, headers=json_headers)
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.json()["type"].endswith("/unauthorized")
        reader = api.as_key(tenant.keys[Role.READONLY])
        forbidden = reader.post("/warehouses", content=body, headers=json_headers)
        assert forbidden.status_code == 403, forbidden.text
        admitted = api.post("/warehouses", content=body, headers=json_headers)
        assert admitted.status_code == 400, admitted.text
        assert admitted.json()["type"].endswith("/malformed-json")


@pytest.mark.parametrize(
    "token",
    [
        "not-a-key",
        "wms_deadbeef0000_thisSecretIsLongEnoughButUnknown123",
        "Basic dXNlcjpwYXNz",
    ],
)
def test_unknown_or_malformed_keys_answer_401(api: ApiClient, token: str) -> None:
    for method, path in api_routes(api):
        assert api.as_key(token).request(method, concrete(path)).status_code == 401


def test_a_wrong_secret_for_a_real_key_id_answers_401(api: ApiClient, tenant: TenantKeys) -> None:
    real = tenant.keys[Role.ADMIN]
    forged = real[: real.rindex("_") + 1] + "x" * 43
    assert api.as_key(forged).get("/warehouses").status_code == 401
    assert api.get("/warehouses").status_code == 200


def test_revoked_and_expired_keys_answer_401(
    api: ApiClient, tenant: TenantKeys, settings: Settings
) -> None:
    assert settings.database_url is not None
    pepper = api_key_pepper(settings)
    with admin_connection(settings.database_url) as conn:
        expired = tenants.create_api_key(
            conn,
            pepper,
            tenant_code=tenant.code,
            role=Role.ADMIN,
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
        )
        revoked = tenants.create_api_key(conn, pepper, tenant_code=tenant.code, role=Role.ADMIN)
        assert api.as_key(revoked).get("/warehouses").status_code == 200
        tenants.revoke_api_key(conn, revoked.split("_")[1])
    for method, path in api_routes(api):
        assert api.as_key(expired).request(method, concrete(path)).status_code == 401
        assert api.as_key(revoked).request(method, concrete(path)).status_code == 401


@pytest.mark.parametrize("role", list(Role))
def test_each_role_gets_403_exactly_where_the_matrix_says(
    api: ApiClient, tenant: TenantKeys, role: Role
) -> None:
    client = api.as_key(tenant.keys[role])
    for method, path in api_routes(api):
        status = call(client, method, path)
        if role in allowed_roles(method, path):
            assert status not in {401, 403}, (role, method, path, status)
        else:
            assert status == 403, (role, method, path, status)


def test_readonly_may_only_read(api: ApiClient, tenant: TenantKeys) -> None:
    for method, path in api_routes(api):
        roles = allowed_roles(method, path)
        assert (Role.READONLY in roles) == (method in {"GET", "HEAD"}), (method, path)


def test_the_openapi_description_of_each_operation_names_its_roles(api: ApiClient) -> None:
    spec = api.client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        if not path.startswith(API_PREFIX):
            continue
        for method, operation in operations.items():
            assert "**Roles:**" in operation.get("description", ""), (method, path)
            assert operation.get("security"), (method, path)


def test_key_use_is_recorded(api: ApiClient, tenant: TenantKeys, settings: Settings) -> None:
    assert settings.database_url is not None
    api.get("/warehouses")
    with admin_connection(settings.database_url) as conn:
        keys = tenants.list_api_keys(conn, tenant.code)
    used = {k["key_id"] for k in keys if k["last_used_at"] is not None}
    assert tenant.keys[Role.ADMIN].split("_")[1] in used
