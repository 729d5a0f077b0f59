"""Tenant and API-key administration (the CLI's ``tenant`` and ``apikey`` commands)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg

from wms.domain.errors import ConflictError, NotFoundError
from wms.domain.roles import Role
from wms.services.api_keys import new_api_key
from wms.store import tenants as store


def create_tenant(conn: psycopg.Connection[Any], code: str, name: str) -> int:
    """Create a tenant; ``ConflictError`` when the code exists."""
    created = store.insert_tenant(conn, code, name)
    if created is None:
        raise ConflictError(f"tenant {code} already exists")
    return created


def create_api_key(
    conn: psycopg.Connection[Any],
    pepper: bytes,
    *,
    tenant_code: str,
    role: Role,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Make a key for a tenant and return the full token (shown once, never stored)."""
    tenant = store.tenant_id(conn, tenant_code)
    if tenant is None:
        raise NotFoundError(f"no tenant {tenant_code}")
    key = new_api_key(pepper)
    store.insert_api_key(
        conn,
        key_id=key.key_id,
        tenant=tenant,
        role=role.value,
        name=name,
        secret_hash=key.secret_hash,
        expires_at=expires_at,
    )
    return key.token


def list_api_keys(conn: psycopg.Connection[Any], tenant_code: str) -> list[dict[str, Any]]:
    """The tenant's keys (never their secrets)."""
    tenant = store.tenant_id(conn, tenant_code)
    if tenant is None:
        raise NotFoundError(f"no tenant {tenant_code}")
    return store.list_api_keys(conn, tenant)


def revoke_api_key(conn: psycopg.Connection[Any], key_id: str) -> None:
    """Revoke a key at once (servers cache keys for ``WMS_AUTH_CACHE_SECONDS``)."""
    if not store.revoke_api_key(conn, key_id):
        raise NotFoundError(f"no active API key {key_id}")
