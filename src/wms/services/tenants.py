"""Tenant and API-key administration (the CLI's ``tenant`` and ``apikey`` commands)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import psycopg

from wms.domain.errors import ConflictError, FieldError, NotFoundError
from wms.domain.roles import Role
from wms.services.api_keys import new_api_key
from wms.store import tenants as store

# The tenants table's CHECKs (V1), tested first so that a mistake is told in words rather
# than by a constraint's name. ``fullmatch``: Python's ``$`` also matches before a final
# newline, PostgreSQL's does not.
TENANT_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
MAX_TENANT_NAME_LENGTH = 200


def create_tenant(conn: psycopg.Connection[Any], code: str, name: str) -> int:
    """Create a tenant; ``FieldError`` for a code or name the tenants table refuses,
    ``ConflictError`` when the code exists."""
    check_tenant(code, name)
    created = store.insert_tenant(conn, code, name)
    if created is None:
        raise ConflictError(f"tenant {code} already exists")
    return created


def check_tenant(code: str, name: str) -> None:
    """Refuse a code or name the tenants table's CHECKs would, naming the rule broken."""
    if TENANT_CODE.fullmatch(code) is None:
        raise FieldError(
            "code",
            f"tenant code {code!r} must be 1 to 63 letters, digits, '_' or '-', "
            "starting with a letter or digit",
        )
    if not 1 <= len(name) <= MAX_TENANT_NAME_LENGTH:
        raise FieldError(
            "name",
            f"tenant name must be 1 to {MAX_TENANT_NAME_LENGTH} characters (got {len(name)})",
        )


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
