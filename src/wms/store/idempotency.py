"""SQL of idempotency records (API.md "Idempotency"): kept 24 hours, per tenant."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from psycopg import AsyncConnection

RETENTION_HOURS = 24
# Where a record's life ends: ``claim`` ignores older records, ``purge_expired`` deletes them.
_EXPIRED_BEFORE = f"now() - interval '{RETENTION_HOURS} hours'"


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


_TRY_LOCK = "SELECT pg_try_advisory_xact_lock(%s)"
_FIND = (
    "SELECT fingerprint, response_status, response_body, response_location "
    "FROM idempotency_keys WHERE tenant_id = %s AND key = %s "
    f"AND created_at > {_EXPIRED_BEFORE}"
)
# The age is tested on the deleted row itself too: a record saved again (a key reused
# after its 24 h) while the purge waited for its lock is re-checked in its new version and
# kept; the subquery's row is the old version, which alone would let it go.
_PURGE = (
    "WITH gone AS (DELETE FROM idempotency_keys WHERE (tenant_id, key) IN ("
    "  SELECT tenant_id, key FROM idempotency_keys "
    f"  WHERE created_at <= {_EXPIRED_BEFORE} LIMIT %s) "
    f"AND created_at <= {_EXPIRED_BEFORE} RETURNING 1) "
    "SELECT count(*) FROM gone"
)


async def claim(
    conn: AsyncConnection, tenant_id: int, key: str
) -> tuple[bool, StoredResponse | None]:
    """Take the key's lock for this transaction, and read its stored answer, in one round trip.

    ``(False, _)`` when another request holds the lock. Two statements, pipelined, not
    one: the lookup must take its snapshot after the lock is held, or an answer committed
    by the previous holder between the two would be missed and the command run twice.
    """
    async with conn.pipeline():
        locked = await conn.execute(_TRY_LOCK, (lock_key(tenant_id, key),))
        found = await conn.execute(_FIND, (tenant_id, key))
    lock_row = await locked.fetchone()
    row = await found.fetchone()
    stored = (
        None if row is None else StoredResponse(bytes(row[0]), int(row[1]), bytes(row[2]), row[3])
    )
    return bool(lock_row and lock_row[0]), stored


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


async def purge_expired(conn: AsyncConnection, *, limit: int) -> int:
    """Delete up to ``limit`` records past the retention, every tenant's (the worker's
    admin session); rows removed. ``claim`` already ignores them: without this the table
    only ever grew."""
    cursor = await conn.execute(_PURGE, (limit,))
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
