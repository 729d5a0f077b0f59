"""ASGI middleware every request passes: request id, log line and metrics; body size; load."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from opentelemetry.trace import SpanKind
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wms.api.problems import problem_response
from wms.ops.metrics import HTTP_DURATION, HTTP_REQUESTS, HTTP_REQUESTS_SHED, UNMATCHED_ROUTE
from wms.ops.tracing import context_from_http, mark_error, tracer

log = structlog.get_logger("wms.http")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
API_PATH_PREFIX = "/api/"
# JSON answers are never rendered, framed, sniffed or cached by intermediaries.
API_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
]


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/v1/orders/{number}``), never the raw path."""
    route = scope.get("route")
    if isinstance(route, BaseRoute):
        # path_format: the template without convertors ({sku}, not {sku:segment}).
        path: object = getattr(route, "path_format", None)
        if isinstance(path, str):
            return path
    if scope.get("endpoint") is not None and not scope.get("path_params"):
        # A plain route without parameters (/openapi.json, /docs): its path is its template.
        return str(scope["path"])
    return UNMATCHED_ROUTE


def request_id_from(scope: Scope) -> str:
    """The caller's ``X-Request-ID`` when it is short and plain, otherwise a new one."""
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate: str = bytes(value).decode("latin-1")
            if _SAFE_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Bind a request id to logs, echo it back, log the request and record its metrics."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap one HTTP request; other scope types pass straight through."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                if scope["path"].startswith(API_PATH_PREFIX):
                    headers.extend(API_SECURITY_HEADERS)
                message = {**message, "headers": headers}
            await send(message)

        method = scope["method"]
        # Named by the route template once routing has run; the raw path until then.
        with tracer().start_as_current_span(
            f"{method} {scope['path']}",
            context=context_from_http(scope.get("headers", [])),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "wms.request_id": request_id},
        ) as span:
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = route_template(scope)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    mark_error(span, f"HTTP {status}")
                HTTP_REQUESTS.labels(method, route, str(status)).inc()
                HTTP_DURATION.labels(method, route).observe(elapsed)
                log.info(
                    "request",
                    method=method,
                    path=scope["path"],
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
                structlog.contextvars.unbind_contextvars("request_id")


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with 413, whether announced or streamed.

    An announced ``Content-Length`` is refused before the app runs; a chunked body is
    counted as it is read, and the read fails with an HTTP 413 the app's problem
    handlers turn into problem+json.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the announced length, then count what is received."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                # Outside the app's exception handlers: answer here, without reading it.
                too_large = problem_response(
                    "payload-too-large", f"the body is larger than {self.max_bytes} bytes"
                )
                await too_large(scope, receive, send)
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, f"the body is larger than {self.max_bytes} bytes")
            return message

        await self.app(scope, counted, send)


class InFlightLimitMiddleware:
    """Answer ``/api`` requests 503 at once, before any work, while ``limit`` are in flight.

    Past its capacity a process only queues: every request waits longer and none is served
    sooner, while the queue's own bookkeeping takes CPU from the work. Refusing the excess
    keeps the admitted requests' latency bounded and the process's throughput near its
    maximum (bench/FINDINGS.md, "overload"); ``Retry-After`` tells clients when to come
    back. Health endpoints are never refused: readiness must still answer.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request in, or refuse it when the process is full."""
        if scope["type"] != "http" or not scope["path"].startswith(API_PATH_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            HTTP_REQUESTS_SHED.inc()
            busy = problem_response(
                "service-unavailable",
                "the server is at capacity; retry shortly",
                headers={"Retry-After": "1"},
            )
            await busy(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
