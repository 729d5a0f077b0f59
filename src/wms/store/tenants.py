"""SQL of tenants and API keys, run as the BYPASSRLS admin role (cross-tenant by nature)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from wms.store.roles import ADMIN, SCHEMA


def admin_connection(url: str) -> psycopg.Connection[Any]:
    """A connection acting as ``wms_admin`` for tenant and key administration."""
    conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    conn.execute(f"SET ROLE {ADMIN}")
    conn.execute(f"SET search_path = {SCHEMA}")
    return conn


def insert_tenant(conn: psycopg.Connection[Any], code: str, name: str) -> int | None:
    """Create a tenant; its id, or None when the code is taken."""
    row = conn.execute(
        "INSERT INTO tenants (code, name) VALUES (%s, %s) ON CONFLICT (code) DO NOTHING "
        "RETURNING id",
        (code, name),
    ).fetchone()
    return int(row[0]) if row else None


def tenant_id(conn: psycopg.Connection[Any], code: str) -> int | None:
    """The id of tenant ``code``."""
    row = conn.execute("SELECT id FROM tenants WHERE code = %s", (code,)).fetchone()
    return int(row[0]) if row else None


def insert_api_key(
    conn: psycopg.Connection[Any],
    *,
    key_id: str,
    tenant: int,
    role: str,
    name: str | None,
    secret_hash: bytes,
    expires_at: datetime | None,
) -> None:
    """Store a key's id, role and secret hash (never the secret)."""
    conn.execute(
        "INSERT INTO api_keys (key_id, tenant_id, role, name, secret_hash, expires_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        (key_id, tenant, role, name, secret_hash, expires_at),
    )


def list_api_keys(conn: psycopg.Connection[Any], tenant: int) -> list[dict[str, Any]]:
    """A tenant's keys, oldest first, without their hashes."""
    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(
            "SELECT key_id, role, name, created_at, expires_at, revoked_at, last_used_at "
            "FROM api_keys WHERE tenant_id = %s ORDER BY created_at, key_id",
            (tenant,),
        )
        return cursor.fetchall()


def revoke_api_key(conn: psycopg.Connection[Any], key_id: str) -> bool:
    """Mark a key revoked; False when no such (unrevoked) key exists."""
    cursor = conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL",
        (key_id,),
    )
    return cursor.rowcount == 1
