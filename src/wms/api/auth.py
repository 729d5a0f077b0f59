"""Bearer authentication with API keys, and the role check of every ``/api/v1`` route."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security.utils import get_authorization_scheme_param
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from wms.api.jwt_auth import JwtAuthenticator
from wms.api.permissions import allowed_roles
from wms.api.ratelimit import RateLimiter
from wms.domain.errors import DomainError
from wms.domain.roles import Role
from wms.ops.middleware import route_template
from wms.ops.singleflight import SingleFlight
from wms.services.api_keys import KEY_PREFIX, parse_token, secret_matches
from wms.store.roles import APP

TOUCH_INTERVAL_SECONDS = 60.0
MAX_CACHED_KEYS = 10_000  # key records (and misses) an authenticator remembers


class UnauthorizedError(DomainError):
    """No credential, or one that is malformed, unknown, revoked or expired."""

    slug = "unauthorized"


class ForbiddenError(DomainError):
    """The credential is valid but its role may not use this route."""

    slug = "forbidden"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant comes from the credential, never from the request.

    ``actor`` names the credential in audit rows, the ledger and picker statistics:
    ``apikey:<keyid>`` or ``jwt:<subject>`` (an operator's identity from the issuer).
    """

    tenant_id: int
    tenant_code: str
    role: Role
    actor: str
    # A token may grant several roles whose rights do not contain each other (operator
    # and integration): ``role`` is the most powerful, any of them may open a route.
    other_roles: frozenset[Role] = frozenset()

    @property
    def roles(self) -> frozenset[Role]:
        """Every role granted."""
        return self.other_roles | {self.role}


@dataclass(frozen=True)
class _KeyRecord:
    tenant_id: int
    tenant_code: str
    role: Role
    secret_hash: bytes
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyAuthenticator:
    """Verifies ``wms_<keyid>_<secret>`` tokens; records are cached for a few seconds."""

    def __init__(
        self, pool: AsyncConnectionPool[AsyncConnection], pepper: bytes, cache_seconds: float
    ) -> None:
        self._pool = pool
        self._pepper = pepper
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, _KeyRecord | None]] = {}
        self._touched: dict[str, float] = {}
        self._reading: SingleFlight[str, _KeyRecord | None] = SingleFlight()

    async def authenticate(self, token: str) -> Principal:
        """The principal of a valid token; ``UnauthorizedError`` otherwise (never why)."""
        parsed = parse_token(token)
        if parsed is None:
            raise UnauthorizedError("the credential is not a valid API key")
        key_id, secret = parsed
        record = await self._record(key_id)
        now = datetime.now(UTC)
        if (
            record is None
            or not secret_matches(self._pepper, secret, record.secret_hash)
            or record.revoked_at is not None
            or (record.expires_at is not None and record.expires_at <= now)
        ):
            raise UnauthorizedError("the API key is unknown, revoked or expired")
        return Principal(record.tenant_id, record.tenant_code, record.role, f"apikey:{key_id}")

    async def _record(self, key_id: str) -> _KeyRecord | None:
        cached = self._cache.get(key_id)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1]
        if self._cache_seconds <= 0:
            return await self._read_record(key_id)
        # When a busy key's record expires, every request in flight misses at once: one
        # of them reads it, the others wait for that read instead of each taking a
        # pooled connection for the same row. (Without a cache, revocations take effect
        # at once: a request never shares a read that began before it.)
        return await self._reading.run(key_id, partial(self._read_record, key_id))

    async def _read_record(self, key_id: str) -> _KeyRecord | None:
        now = time.monotonic()
        touch = now - self._touched.get(key_id, -TOUCH_INTERVAL_SECONDS) >= TOUCH_INTERVAL_SECONDS
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT set_config('role', %s, true)", (APP,))
            cursor = await conn.execute(
                "SELECT tenant_id, tenant_code, role, secret_hash, expires_at, revoked_at "
                "FROM api_key_lookup(%s)",
                (key_id,),
            )
            row = await cursor.fetchone()
            # A standby refuses writes; last_used_at is a hint, so it waits for a primary.
            standby = conn.info.parameter_status("in_hot_standby") == "on"
            if row is not None and touch and not standby:
                await conn.execute("SELECT api_key_touch(%s)", (key_id,))
                self._touched[key_id] = now
        record = None
        if row is not None:
            record = _KeyRecord(row[0], row[1], Role(row[2]), bytes(row[3]), row[4], row[5])
        if self._cache_seconds > 0:
            self._remember(key_id, now, record)
        return record

    def _remember(self, key_id: str, now: float, record: _KeyRecord | None) -> None:
        """Cache a record (or a miss), within ``MAX_CACHED_KEYS``: key ids come from
        unauthenticated requests, and each unknown one was cached for good."""
        if len(self._cache) >= MAX_CACHED_KEYS:
            fresh = now - self._cache_seconds
            self._cache = {k: v for k, v in self._cache.items() if v[0] >= fresh}
            if len(self._cache) >= MAX_CACHED_KEYS:
                self._cache.clear()  # a flood of fresh ids: start again, reads go on
        self._cache[key_id] = (now, record)


# The scheme OpenAPI documents on every /api/v1 operation (routing.ApiRoute). The header
# is read by ``bearer_token``, not by FastAPI's ``HTTPBearer`` dependency: the same parsing,
# without a dependency's cost at every request (~60 µs, bench/FINDINGS.md).
SECURITY_SCHEME = "HTTPBearer"
SECURITY_SCHEMES = {
    SECURITY_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key `wms_<keyid>_<secret>`, or a JWT from the configured OIDC "
        "issuer.",
    }
}


def bearer_token(request: Request) -> str | None:
    """The credential of ``Authorization: Bearer <credential>``; None if absent or not bearer."""
    scheme, credentials = get_authorization_scheme_param(request.headers.get("authorization"))
    if not (scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


async def authorize(request: Request) -> Principal:
    """Authenticate the caller and check its role against the route × role matrix."""
    token = bearer_token(request)
    if token is None:
        raise UnauthorizedError("send Authorization: Bearer <api key>")
    tokens: JwtAuthenticator | None = request.app.state.jwt_authenticator
    if token.startswith(f"{KEY_PREFIX}_") or tokens is None:
        authenticator: ApiKeyAuthenticator = request.app.state.authenticator
        principal = await authenticator.authenticate(token)
    else:
        tenant_id, tenant_code, roles, subject = await tokens.principal(token)
        principal = Principal(tenant_id, tenant_code, roles[0], f"jwt:{subject}",
                              frozenset(roles[1:]))  # fmt: skip
    if not principal.roles & allowed_roles(request.method, route_template(request.scope)):
        granted = ", ".join(sorted(principal.roles))
        raise ForbiddenError(f"role {granted} may not {request.method} this resource")
    limiter: RateLimiter = request.app.state.rate_limiter
    await limiter.check(principal.tenant_id, principal.actor)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(authorize)]
