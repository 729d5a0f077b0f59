"""The command pipeline (DESIGN §6.1): the one way a request changes state.

``run_command`` binds the tenant, honours ``Idempotency-Key``, runs the service in one
transaction that also writes its audit rows, events and idempotency record, retries
serialization failures and deadlocks a bounded number of times, and turns what is left
into problem+json. Reads use ``read_transaction``.

Observations a service queued with ``uow.observe`` are applied only after the commit;
``wms_command_duration_seconds`` times each command (retries included) and
``wms_db_transaction_duration_seconds`` each transaction (docs/metrics.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TypeVar

import psycopg
import structlog
from fastapi import Request
from fastapi.responses import Response
from psycopg import AsyncConnection
from psycopg_pool import PoolTimeout
from pydantic import BaseModel

from wms.api.auth import Principal
from wms.api.json_body import MalformedJsonError, parse_json
from wms.config import Settings
from wms.domain.errors import ConflictError, DomainError, FieldError
from wms.ops.metrics import COMMAND_DURATION, DB_TRANSACTION_DURATION
from wms.ops.middleware import route_template
from wms.services.unit_of_work import UnitOfWork
from wms.store import cache, idempotency
from wms.store.database import constraint_conflict
from wms.store.tenancy import tenant_transaction

log = structlog.get_logger(__name__)
T = TypeVar("T")
MAX_ATTEMPTS = 4
MAX_IDEMPOTENCY_KEY_LENGTH = 255
_RETRYABLE = (
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.LockNotAvailable,
)


@dataclass(frozen=True)
class Answer:
    """What a command answers: status, body model, and ``Location`` for a creation."""

    status: int
    body: BaseModel
    location: str | None = None


class RequestInProgressError(DomainError):
    """Another request with the same idempotency key is still running."""

    slug = "request-in-progress"


class IdempotencyKeyReusedError(DomainError):
    """The idempotency key was first used with a different request."""

    slug = "idempotency-key-reused"


class ConcurrentUpdateError(ConflictError):
    """Retries ran out while concurrent transactions kept conflicting."""

    slug = "concurrent-update"


async def fingerprint(request: Request) -> bytes:
    """SHA-256 of method, route template, path parameters and the body as canonical JSON.

    API.md names method, route template and body; the path's parameters are added: with
    the template alone, a key reused on another order (``/orders/{number}/cancel`` for
    SO-2 after SO-1, both without a body) replayed SO-1's answer and left SO-2 as it was.
    """
    raw = await request.body()
    try:
        canonical = json.dumps(
            parse_json(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except MalformedJsonError:
        # Not JSON (a CSV import, or a body the route will refuse): the bytes as sent.
        canonical = raw
    path = json.dumps(request.path_params, sort_keys=True, ensure_ascii=False, default=str)
    head = f"{request.method} {route_template(request.scope)} {path}\n".encode()
    return hashlib.sha256(head + canonical).digest()


def idempotency_key(request: Request) -> str | None:
    """The request's ``Idempotency-Key``, validated."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable():
        raise FieldError(
            "Idempotency-Key", f"must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable characters"
        )
    return key


def _to_response(stored: idempotency.StoredResponse, *, replayed: bool) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    if stored.location:
        headers["Location"] = stored.location
    return Response(
        stored.body, status_code=stored.status, media_type="application/json", headers=headers
    )


async def run_command(
    request: Request,
    principal: Principal,
    service: Callable[[UnitOfWork], Awaitable[T]],
    answer: Callable[[T], Answer],
) -> Response:
    """Run ``service`` as one idempotent, audited, retried transaction; answer with ``answer``."""
    # The route template and method name the command: static, so the label stays bounded.
    command = f"{request.method} {route_template(request.scope)}"
    started = time.perf_counter()
    try:
        return await _attempts(request, principal, service, answer)
    finally:
        COMMAND_DURATION.labels(command).observe(time.perf_counter() - started)


async def _attempts(
    request: Request,
    principal: Principal,
    service: Callable[[UnitOfWork], Awaitable[T]],
    answer: Callable[[T], Answer],
) -> Response:
    settings: Settings = request.app.state.settings
    key = idempotency_key(request)
    print_ = await fingerprint(request) if key else b""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            # The cache scope is outermost: keys the command invalidated are dropped again
            # after the transaction commits (a reader may have re-cached the old row).
            async with (
                cache.tenant_scope(principal.tenant_id),
                _transaction(request, principal) as conn,
            ):
                if key is not None:
                    locked, stored = await idempotency.claim(conn, principal.tenant_id, key)
                    if not locked:
                        raise RequestInProgressError(
                            "a request with this Idempotency-Key is still running", retry_after=1
                        )
                    if stored is not None:
                        if stored.fingerprint != print_:
                            raise IdempotencyKeyReusedError(
                                "this Idempotency-Key was used with a different request"
                            )
                        return _to_response(stored, replayed=True)
                uow = UnitOfWork(
                    conn=conn,
                    tenant_id=principal.tenant_id,
                    tenant_code=principal.tenant_code,
                    actor=principal.actor,
                    request_id=getattr(request.state, "request_id", None),
                    region=settings.region,
                )
                result = await service(uow)
                reply = answer(result)
                stored = idempotency.StoredResponse(
                    fingerprint=print_,
                    status=reply.status,
                    body=reply.body.model_dump_json().encode(),
                    location=reply.location,
                )
                # The command's last writes and its COMMIT travel in one round trip (an
                # error in any of them still raises here, before anything counts).
                async with conn.pipeline():
                    await uow.flush()
                    if key is not None:
                        await idempotency.save(conn, principal.tenant_id, key, stored)
                    await conn.execute("COMMIT", prepare=False)
            # Committed: only now do the command's metrics count. A failed or retried
            # attempt never gets here, and its UnitOfWork (with its observations) is dropped.
            uow.committed()
            return _to_response(stored, replayed=False)
        except _RETRYABLE as exc:
            log.info("command_retry", attempt=attempt, error=type(exc).__name__)
            if attempt == MAX_ATTEMPTS:
                raise ConcurrentUpdateError(
                    "concurrent updates kept conflicting; try again", retry_after=1
                ) from None
            await asyncio.sleep(random.uniform(0.005, 0.02) * attempt)  # noqa: S311 - jitter
        except psycopg.errors.IntegrityError as exc:
            raise constraint_conflict(exc) from None  # a 409, never a 500
        except psycopg.errors.NumericValueOutOfRange:
            # A total past bigint (a balance's on-hand, a sum): a 409 as well, not a 500.
            raise ConflictError(
                "a quantity would exceed the largest the database holds; nothing was changed"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


@asynccontextmanager
async def _timed(
    kind: str, transaction: AbstractAsyncContextManager[AsyncConnection]
) -> AsyncIterator[AsyncConnection]:
    """``transaction``, timed from the bound connection's hand-over to commit or rollback.

    The wait for a pool connection is left out (the pool gauges show it); a transaction
    that never began is not observed.
    """
    started: float | None = None
    try:
        async with transaction as conn:
            started = time.perf_counter()
            yield conn
    finally:
        if started is not None:
            DB_TRANSACTION_DURATION.labels(kind).observe(time.perf_counter() - started)


@asynccontextmanager
async def _transaction(request: Request, principal: Principal) -> AsyncIterator[AsyncConnection]:
    settings: Settings = request.app.state.settings
    async with _timed(
        "command",
        tenant_transaction(
            request.app.state.pool,
            principal.tenant_id,
            statement_timeout_ms=settings.statement_timeout_ms,
            lock_timeout_ms=settings.lock_timeout_ms,
        ),
    ) as conn:
        yield conn


@asynccontextmanager
async def read_transaction(
    request: Request, principal: Principal, *, one_snapshot: bool = False
) -> AsyncIterator[AsyncConnection]:
    """A read-only transaction bound to the caller's tenant.

    ``one_snapshot``: all its statements see one snapshot (REPEATABLE READ), for a response
    built from several statements whose figures must agree.
    """
    settings: Settings = request.app.state.settings
    async with _timed(
        "read",
        tenant_transaction(
            request.app.state.pool,
            principal.tenant_id,
            statement_timeout_ms=settings.statement_timeout_ms,
            lock_timeout_ms=settings.lock_timeout_ms,
            read_only=True,
            one_snapshot=one_snapshot,
        ),
    ) as conn:
        with cache.bound_tenant(principal.tenant_id):
            yield conn


REPLICA_RETRY_SECONDS = 30.0


@asynccontextmanager
async def replica_transaction(
    request: Request, principal: Principal
) -> AsyncIterator[AsyncConnection]:
    """A read-only tenant transaction on the read replica, for reads that tolerate lag.

    Never for writes or read-your-writes. Without a replica, or while it is unreachable
    (then skipped for ``REPLICA_RETRY_SECONDS``), the primary answers.
    """
    settings: Settings = request.app.state.settings
    replica = getattr(request.app.state, "replica_pool", None)
    down_until: float = getattr(request.app.state, "replica_down_until", 0.0)
    if replica is None or time.monotonic() < down_until:
        async with read_transaction(request, principal) as conn:
            yield conn
        return
    entered = False
    try:
        async with _timed(
            "replica",
            tenant_transaction(
                replica,
                principal.tenant_id,
                statement_timeout_ms=settings.statement_timeout_ms,
                lock_timeout_ms=settings.lock_timeout_ms,
                read_only=True,
            ),
        ) as conn:
            entered = True
            with cache.bound_tenant(principal.tenant_id):
                yield conn
        return
    except (psycopg.OperationalError, PoolTimeout) as exc:
        if entered:
            raise
        log.warning("replica_unavailable", error=type(exc).__name__)
        request.app.state.replica_down_until = time.monotonic() + REPLICA_RETRY_SECONDS
    async with read_transaction(request, principal) as conn:
        yield conn
