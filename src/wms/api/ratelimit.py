"""Token-bucket rate limits per credential and per tenant, shared through Redis.

With ``REDIS_URL`` every replica draws from the same buckets (one atomic Lua script
per check, using Redis's own clock), so the limit is the real one whatever the number
of pods; without Redis, or while Redis is unreachable, each process keeps its own
buckets. (The seed's ingress annotation limits per client IP per ingress replica.)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from wms.domain.errors import DomainError

log = structlog.get_logger(__name__)

# KEYS[1] bucket; ARGV rate/s, burst, cost. Returns {allowed, tokens*1000, wait ms}.
_LUA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate / 1000)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, math.floor(tokens * 1000), wait}
"""


class RateLimitedError(DomainError):
    """The caller spent its bucket; ``retry_after`` says when to come back."""

    slug = "rate-limited"


@dataclass(frozen=True)
class Verdict:
    """One bucket's answer: allowed or not, what is left, and how long to wait."""

    allowed: bool
    remaining: int
    wait_seconds: float


@dataclass(frozen=True)
class Limit:
    """A bucket's refill rate (tokens per second) and size."""

    rate: float
    burst: float


class Buckets(Protocol):
    """Somewhere token buckets live."""

    async def take(self, key: str, limit: Limit) -> Verdict:
        """Take one token from bucket ``key``."""
        ...


class LocalBuckets:
    """Buckets in this process only."""

    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}

    async def take(self, key: str, limit: Limit) -> Verdict:
        """Take one token, refilling by the time elapsed."""
        now = time.monotonic()
        tokens, at = self._state.get(key, (limit.burst, now))
        tokens = min(limit.burst, tokens + (now - at) * limit.rate)
        if tokens >= 1:
            self._state[key] = (tokens - 1, now)
            return Verdict(True, int(tokens - 1), 0.0)
        self._state[key] = (tokens, now)
        return Verdict(False, 0, (1 - tokens) / limit.rate)


class RedisBuckets:
    """Buckets in Redis shared by every replica; local buckets while Redis is away."""

    def __init__(self, client: Any, fallback: LocalBuckets | None = None) -> None:
        self._client = client
        self._script = client.register_script(_LUA)
        self._fallback = fallback or LocalBuckets()
        self.available = True

    async def take(self, key: str, limit: Limit) -> Verdict:
        """Take one token atomically in Redis (or locally when Redis fails)."""
        try:
            allowed, tokens_milli, wait_ms = await self._script(
                keys=[key], args=[limit.rate, limit.burst, 1]
            )
        except Exception as exc:  # noqa: BLE001 - any Redis failure degrades to local buckets
            if self.available:
                log.warning("rate_limit_redis_unavailable", error=type(exc).__name__)
            self.available = False
            return await self._fallback.take(key, limit)
        self.available = True
        return Verdict(bool(allowed), int(tokens_milli) // 1000, int(wait_ms) / 1000)


class RateLimiter:
    """Checks a request against its credential's bucket and its tenant's bucket."""

    def __init__(self, buckets: Buckets, *, credential: Limit, tenant: Limit) -> None:
        self.buckets = buckets
        self.credential = credential
        self.tenant = tenant

    async def check(self, tenant_id: int, actor: str) -> Verdict:
        """Spend one token of each bucket; raise ``RateLimitedError`` when one is empty."""
        own = await self.buckets.take(f"t{tenant_id}:rl:cred:{actor}", self.credential)
        if not own.allowed:
            raise _limited(own, self.credential, "this credential")
        shared = await self.buckets.take(f"t{tenant_id}:rl:tenant", self.tenant)
        if not shared.allowed:
            raise _limited(shared, self.tenant, "this tenant")
        return own if own.remaining <= shared.remaining else shared


def headers(verdict: Verdict, limit: Limit) -> dict[str, str]:
    """``RateLimit-*`` headers (IETF draft) for a response."""
    reset = math.ceil(verdict.wait_seconds) if not verdict.allowed else 1
    return {
        "RateLimit-Limit": str(int(limit.burst)),
        "RateLimit-Remaining": str(verdict.remaining),
        "RateLimit-Reset": str(reset),
    }


def _limited(verdict: Verdict, limit: Limit, whose: str) -> RateLimitedError:
    wait = max(1, math.ceil(verdict.wait_seconds))
    return RateLimitedError(
        f"too many requests from {whose}: {limit.rate:g} per second, bursts of {limit.burst:g}",
        retry_after=wait,
        rate_limit=headers(verdict, limit),
    )
