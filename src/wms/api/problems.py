"""RFC 9457 problem details: the one table of problem types and the handlers that use it.

Every error the application answers with is ``application/problem+json``: routing
errors (404/405), malformed JSON (400), validation (422 with JSON Pointer fields),
domain errors, and unexpected failures (500, without internals).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from psycopg_pool import PoolTimeout
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from wms.api.permissions import API_PREFIX
from wms.api.schemas import MemberError
from wms.domain.errors import DomainError, FieldError
from wms.store.database import DatabaseReadOnlyError

log = structlog.get_logger(__name__)

PROBLEM_BASE = "https://wms.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    """One kind of error: its slug (the end of ``type``), HTTP status and title."""

    slug: str
    status: int
    title: str


PROBLEM_TYPES: dict[str, ProblemType] = {
    p.slug: p
    for p in [
        ProblemType("malformed-json", 400, "The request body is not valid JSON"),
        ProblemType("unauthorized", 401, "Missing or invalid credentials"),
        ProblemType("forbidden", 403, "The credential's role may not do this"),
        ProblemType("not-found", 404, "No such resource"),
        ProblemType("method-not-allowed", 405, "Method not allowed on this resource"),
        ProblemType("conflict", 409, "Conflicts with the current state"),
        ProblemType("invalid-state", 409, "Not allowed in the object's current status"),
        ProblemType("request-in-progress", 409, "A request with this key is still running"),
        ProblemType("insufficient-stock", 409, "Not enough unallocated stock"),
        ProblemType("location-unavailable", 409, "The location is inactive or full"),
        ProblemType("lot-expiry-conflict", 409, "The lot already has another expiry date"),
        ProblemType("over-receipt", 409, "More than the ASN line allows, tolerance included"),
        ProblemType("not-on-asn", 409, "The product is not on the ASN"),
        ProblemType("pick-mismatch", 409, "The scan is not the task's location, product or lot"),
        ProblemType("over-pick", 409, "More units than the pick task asks for"),
        ProblemType("packing-mismatch", 409, "The packages do not hold exactly what was picked"),
        ProblemType(
            "concurrent-update", 409, "Concurrent updates kept this request from finishing"
        ),
        ProblemType("cursor-expired", 410, "The cursor is older than the retention"),
        ProblemType("payload-too-large", 413, "The request body is too large"),
        ProblemType("unsupported-media-type", 415, "Send application/json"),
        ProblemType("validation-error", 422, "The request is not valid"),
        ProblemType("unknown-reference", 422, "The request names an object that does not exist"),
        ProblemType("idempotency-key-reused", 422, "The key was used with a different request"),
        ProblemType("invalid-cursor", 422, "The cursor does not belong to this listing"),
        ProblemType("import-rejected", 422, "The import has invalid rows; nothing was imported"),
        ProblemType("rate-limited", 429, "Too many requests"),
        ProblemType("internal-error", 500, "Internal error"),
        ProblemType("service-unavailable", 503, "Temporarily unavailable"),
        ProblemType("database-read-only", 503, "The database is a standby; writes are refused"),
    ]
}


class FieldProblem(BaseModel):
    """One invalid field: a JSON Pointer into the body, or a parameter name with ``in``."""

    field: str
    message: str
    location: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details; extensions such as ``available`` may follow."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


def problem_response(
    slug: str, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any
) -> Response:
    """A problem+json response of the registered type ``slug``."""
    kind = PROBLEM_TYPES[slug]
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind.slug,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
    }
    body.update({key: value for key, value in extensions.items() if value is not None})
    return Response(
        json.dumps(body, default=str),
        status_code=kind.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def json_pointer(location: tuple[int | str, ...]) -> str:
    """``("lines", 0, "quantity")`` → ``/lines/0/quantity`` (RFC 6901 escaping)."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in location)


def validation_errors(exc: RequestValidationError) -> list[dict[str, str]]:
    """FastAPI's errors as ``{field, message}``: body fields as JSON Pointers."""
    errors = []
    for error in exc.errors():
        where, *path = error["loc"]
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, MemberError):
            path.append(cause.member)
        if where == "body":
            field = json_pointer(tuple(path))
            errors.append({"field": field or "/", "message": error["msg"]})
        else:
            name = ".".join(str(p) for p in path)
            errors.append({"field": name, "message": error["msg"], "location": str(where)})
    return errors


def problems_description() -> str:
    """Markdown table of every problem type, for the OpenAPI description."""
    rows = "\n".join(f"| `{p.slug}` | {p.status} | {p.title} |" for p in PROBLEM_TYPES.values())
    return (
        f"Errors are RFC 9457 `application/problem+json`; `type` is `{PROBLEM_BASE}<slug>`.\n\n"
        f"| slug | status | title |\n|---|---|---|\n{rows}\n"
    )


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> set[str]:
    """Every method some route of ``routes`` serves at the request's path.

    Starlette's 405 names only the first route matching the path, but one path often has
    a route per method (``GET`` and ``POST /asns``): ``Allow`` must list them all.
    """
    methods: set[str] = set()
    for route in routes:
        if route.matches(scope)[0] is Match.NONE:
            continue
        inner = getattr(route, "original_router", None)  # an included router's wrapper
        if inner is not None:
            methods |= allowed_methods(inner.routes, scope)
        else:
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def install_problem_handlers(
    app: FastAPI, authorize: Callable[[Request], Awaitable[object]] | None = None
) -> None:
    """Route every error of ``app`` through the problem types above; ``authorize`` (the
    routes' credential check) answers first for a body refused before it ran."""

    async def credential_first(request: Request) -> Response | None:
        # FastAPI decodes a body before the route's dependencies run: a body that does not
        # decode was refused before the credential was looked at. The credential's own
        # problem (401, 403, 429) comes first, as for any other request.
        if (
            authorize is None
            or hasattr(request.state, "principal")
            or not request.url.path.startswith(API_PREFIX)
        ):
            return None
        try:
            await authorize(request)
        except DomainError as exc:
            return await domain_error(request, exc)
        return None

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400 and (refused := await credential_first(request)) is not None:
            return refused
        # 400: a body FastAPI could not even decode (not UTF-8, say), before any JSON error.
        slug = {400: "malformed-json", 404: "not-found", 405: "method-not-allowed",
                413: "payload-too-large"}.get(
            exc.status_code, "validation-error" if exc.status_code < 500 else "internal-error"
        )  # fmt: skip
        detail = str(exc.detail) if exc.detail else PROBLEM_TYPES[slug].title
        if exc.status_code == 400:
            detail = "the request body is not valid JSON (JSON is UTF-8)"
        if exc.status_code == 404 and exc.detail == "Not Found":
            detail = f"no route or resource at {request.url.path}"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            methods = allowed_methods(request.app.routes, request.scope)
            headers["Allow"] = ", ".join(sorted(methods)) or headers.get("Allow", "")
        return problem_response(slug, detail, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if any(error.get("type") == "json_invalid" for error in exc.errors()):
            if (refused := await credential_first(request)) is not None:
                return refused
            return problem_response("malformed-json", "the request body is not valid JSON")
        errors = validation_errors(exc)
        return problem_response(
            "validation-error", f"{len(errors)} invalid field(s)", errors=errors
        )

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        errors = None
        if isinstance(exc, FieldError):
            errors = [{"field": field, "message": message} for field, message in exc.errors]
        extensions = dict(exc.extensions)
        headers = {}
        if "retry_after" in extensions:
            headers["Retry-After"] = str(extensions.pop("retry_after"))
        rate_limit = extensions.pop("rate_limit", None)
        if isinstance(rate_limit, dict):
            headers.update({str(k): str(v) for k, v in rate_limit.items()})
        if exc.slug == "unauthorized":
            headers["WWW-Authenticate"] = "Bearer"
        return problem_response(exc.slug, exc.detail, errors=errors, headers=headers, **extensions)

    @app.exception_handler(psycopg.errors.LockNotAvailable)
    async def lock_timeout(request: Request, exc: psycopg.errors.LockNotAvailable) -> Response:
        # A read waited longer than lock_timeout (commands retry, then answer 409).
        return problem_response(
            "service-unavailable", "the data is busy; retry shortly", headers={"Retry-After": "1"}
        )

    @app.exception_handler(psycopg.errors.QueryCanceled)
    async def too_slow(request: Request, exc: psycopg.errors.QueryCanceled) -> Response:
        # statement_timeout: the database gave up on this request; nothing was changed.
        log.warning("statement_timeout", route=request.url.path)
        return problem_response(
            "service-unavailable",
            "the request took longer than the server allows; nothing was changed",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(psycopg.OperationalError)
    async def database_unavailable(request: Request, exc: psycopg.OperationalError) -> Response:
        log.warning("database_unavailable", error=type(exc).__name__)
        return problem_response(
            "service-unavailable", "the database is unavailable", headers={"Retry-After": "5"}
        )

    @app.exception_handler(DatabaseReadOnlyError)
    @app.exception_handler(psycopg.errors.ReadOnlySqlTransaction)
    async def read_only(request: Request, exc: Exception) -> Response:
        # Failover in progress or a standby-only URL: reads work, writes come back later.
        log.warning("database_read_only", route=request.url.path)
        return problem_response(
            "database-read-only",
            "the database is a standby (failover in progress?); nothing was changed",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(PoolTimeout)
    async def pool_exhausted(request: Request, exc: PoolTimeout) -> Response:
        log.warning("database_pool_exhausted")
        return problem_response(
            "service-unavailable", "the server is busy; retry shortly", headers={"Retry-After": "1"}
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled_error", error=type(exc).__name__)
        return problem_response("internal-error", "an unexpected error occurred; see the log")
