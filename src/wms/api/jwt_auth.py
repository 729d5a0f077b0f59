"""Bearer JWTs from an OpenID Connect issuer, verified against its JWKS.

Only asymmetric algorithms are accepted (``none`` and the HMAC family are refused
before any key is looked at, which also closes the HS/RS confusion), the key is chosen
by ``kid`` from the issuer's key set (cached, refreshed when stale or when an unknown
``kid`` appears — at most every ``MIN_REFRESH_SECONDS``) and must suit the token's
``alg`` (``SigningKey.verifies``), and issuer, audience and expiry are required. Tenant,
roles and subject come from configurable claims.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from wms.domain.errors import DomainError
from wms.domain.roles import Role
from wms.store.roles import APP

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# What a JWK that declares no ``alg`` (optional in RFC 7517) may verify: by key type, and
# for elliptic curves by curve (each ES algorithm names its curve, RFC 7518 §3.4).
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC_ALGORITHM_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
_OKP_CURVES = frozenset({"Ed25519", "Ed448"})
MIN_REFRESH_SECONDS = 10.0
LEEWAY_SECONDS = 30
TENANT_CACHE_SECONDS = 60.0
# When a token carries several roles, the most powerful known one is used.
ROLE_PRECEDENCE = [Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.INTEGRATION, Role.READONLY]


class InvalidTokenError(DomainError):
    """The bearer token is not one this server accepts (never says which check failed)."""

    slug = "unauthorized"


@dataclass(frozen=True)
class SigningKey:
    """One key of the issuer's set: the JWK as published, and the public key it holds.

    The published JWK is kept because ``PyJWK.algorithm_name`` does not tell a declared
    ``alg`` from the default PyJWT fills in (RS256 for every RSA key).
    """

    jwk: dict[str, Any]
    public_key: Any

    def verifies(self, algorithm: str) -> bool:
        """Whether a token signed with ``algorithm`` may be checked with this key: the
        JWK's ``alg`` when it declares one, else any algorithm of the key's type."""
        declared = self.jwk.get("alg")
        if declared is not None:
            return bool(declared == algorithm)
        key_type, curve = self.jwk.get("kty"), self.jwk.get("crv")
        if key_type == "RSA":
            return algorithm in _RSA_ALGORITHMS
        if key_type == "EC":
            return isinstance(curve, str) and _EC_ALGORITHM_BY_CURVE.get(curve) == algorithm
        if key_type == "OKP":
            return curve in _OKP_CURVES and algorithm == "EdDSA"
        return False


class JwksCache:
    """The issuer's signing keys by ``kid``, fetched over HTTP and cached."""

    def __init__(self, url: str, cache_seconds: float) -> None:
        self._url = url
        self._cache_seconds = cache_seconds
        self._min_refresh = min(MIN_REFRESH_SECONDS, cache_seconds)
        self._keys: dict[str, SigningKey] = {}
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> SigningKey | None:
        """The key ``kid``; refetches a stale set, or once when the kid is unknown."""
        age = time.monotonic() - self._fetched_at
        if age > self._cache_seconds or (kid not in self._keys and age > self._min_refresh):
            await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched_at < self._min_refresh:
                return  # another request refreshed while we waited
            try:
                document = await asyncio.to_thread(_fetch_json, self._url)
                keys = _signing_keys(document)
            except (OSError, ValueError, RecursionError, jwt.PyJWTError):
                # Keep the keys we have: an issuer outage must not log everybody out.
                self._fetched_at = time.monotonic()
                return
            self._keys = keys
            self._fetched_at = time.monotonic()


def _signing_keys(document: Any) -> dict[str, SigningKey]:
    """The usable keys of a JWKS document by ``kid``; ``PyJWKSetError`` when there are none.

    As ``PyJWKSet`` reads a set (members PyJWT cannot use are skipped), keeping each
    member's JWK beside its key.
    """
    members = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(members, list):
        raise jwt.PyJWKSetError("the JWKS document has no list of keys")
    keys: dict[str, SigningKey] = {}
    for jwk in members:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
            continue
        try:
            keys[jwk["kid"]] = SigningKey(jwk, jwt.PyJWK(jwk).key)
        except jwt.PyJWTError:
            continue  # a key type or algorithm PyJWT cannot use (an encryption key, say)
    if not keys:
        raise jwt.PyJWKSetError("the JWKS document has no usable signing key")
    return keys


def _fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - configured URL
        return json.loads(response.read())


class JwtAuthenticator:
    """Turns a verified token into a principal of the tenant its tenant claim names."""

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection],
        *,
        issuer: str,
        audience: str,
        jwks: JwksCache,
        tenant_claim: str = "tenant",
        roles_claim: str = "roles",
        subject_claim: str = "sub",
    ) -> None:
        self._pool = pool
        self._issuer = issuer
        self._audience = audience
        self._jwks = jwks
        self._tenant_claim = tenant_claim
        self._roles_claim = roles_claim
        self._subject_claim = subject_claim
        self._tenants: dict[str, tuple[float, int | None]] = {}

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims once signature, issuer, audience and times check out."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidTokenError("the bearer token is malformed") from None
        algorithm = header.get("alg")
        kid = header.get("kid")
        # The header is the sender's JSON: a list or object there is unhashable, and the
        # set lookup below would raise TypeError (a 500) instead of refusing the token.
        if (
            not isinstance(algorithm, str)
            or algorithm not in ASYMMETRIC_ALGORITHMS
            or not isinstance(kid, str)
        ):
            raise InvalidTokenError("the bearer token is not signed with an accepted key")
        key = await self._jwks.key(kid)
        if key is None or not key.verifies(algorithm):
            raise InvalidTokenError("the bearer token is not signed with an accepted key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public_key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", self._subject_claim]},
            )
        except jwt.PyJWTError:
            raise InvalidTokenError("the bearer token is invalid or expired") from None
        return claims

    async def principal(self, token: str) -> tuple[int, str, list[Role], str]:
        """(tenant id, tenant code, roles most powerful first, subject) of a valid token."""
        claims = await self.verify(token)
        tenant_code = claims.get(self._tenant_claim)
        subject = claims.get(self._subject_claim)
        if not isinstance(tenant_code, str) or not isinstance(subject, str):
            raise InvalidTokenError("the bearer token names no tenant or subject")
        roles = known_roles(claims.get(self._roles_claim))
        if not roles:
            raise InvalidTokenError("the bearer token grants no known role")
        tenant_id = await self._tenant_id(tenant_code)
        if tenant_id is None:
            raise InvalidTokenError("the bearer token names an unknown tenant")
        return tenant_id, tenant_code, roles, subject

    async def _tenant_id(self, code: str) -> int | None:
        now = time.monotonic()
        cached = self._tenants.get(code)
        if cached is not None and now - cached[0] < TENANT_CACHE_SECONDS:
            return cached[1]
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute("SELECT set_config('role', %s, true)", (APP,))
            cursor = await conn.execute("SELECT tenant_id_by_code(%s)", (code,))
            row = await cursor.fetchone()
        found = int(row[0]) if row and row[0] is not None else None
        self._tenants[code] = (now, found)
        return found


def known_roles(value: object) -> list[Role]:
    """The known roles of a claim that is a list or a space-separated string, most
    powerful first."""
    names = value.split() if isinstance(value, str) else value
    if not isinstance(names, list):
        return []
    granted = {str(name) for name in names}
    return [role for role in ROLE_PRECEDENCE if role.value in granted]
