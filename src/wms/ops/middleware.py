"""One ASGI middleware for what every request needs: request id, log line and metrics."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wms.ops.metrics import HTTP_DURATION, HTTP_REQUESTS, UNMATCHED_ROUTE

log = structlog.get_logger("wms.http")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def route_template(scope: Scope) -> str:
    """The matched route's template (``/api/v1/orders/{number}``), never the raw path."""
    route = scope.get("route")
    if isinstance(route, BaseRoute):
        path: object = getattr(route, "path", None)
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
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            method = scope["method"]
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
