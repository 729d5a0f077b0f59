"""SQL of idempotency records (API.md "Idempotency"): kept 24 hours, per tenant."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from psycopg import AsyncConnection

RETENTION_HOURS = 24  # also spelled out in the SQL below


@dataclass(frozen=True)
class StoredResponse:
    """The first answer to a key, replayed to every retry with the same request."""

    fingerprint: bytes
    status: int
    body: bytes
    location: str | None


def lock_key(tenant_id: int, key: str) -> int:
    """A signed 64-bit advisory lock key for (tenant, idempotency key)."""
    digest = hashlib.blake2b(f"{tenant_id}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def try_lock(conn: AsyncConnection, tenant_id: int, key: str) -> bool:
    """Take the key's lock for this transaction; False when another request holds it."""
    cursor = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (lock_key(tenant_id, key),))
    row = await cursor.fetchone()
    return bool(row and row[0])


async def find(conn: AsyncConnection, tenant_id: int, key: str) -> StoredResponse | None:
    """The stored answer for ``key`` if it is younger than the retention period."""
    cursor = await conn.execute(
        "SELECT fingerprint, response_status, response_body, response_location "
        "FROM idempotency_keys WHERE tenant_id = %s AND key = %s "
        "AND created_at > now() - interval '24 hours'",
        (tenant_id, key),
    )
    row = await cursor.fetchone()
    if row is None:
        return None
    return StoredResponse(bytes(row[0]), int(row[1]), bytes(row[2]), row[3])


async def save(conn: AsyncConnection, tenant_id: int, key: str, response: StoredResponse) -> None:
    """Store the answer (replacing an expired record of the same key)."""
    await conn.execute(
        "INSERT INTO idempotency_keys (tenant_id, key, fingerprint, response_status, "
        "response_body, response_location) VALUES (%s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (tenant_id, key) DO UPDATE SET fingerprint = excluded.fingerprint, "
        "response_status = excluded.response_status, response_body = excluded.response_body, "
        "response_location = excluded.response_location, created_at = now()",
        (tenant_id, key, response.fingerprint, response.status, response.body, response.location),
    )
