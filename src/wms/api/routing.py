"""The router every ``/api/v1`` resource module starts from."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from wms.api.auth import authorize
from wms.api.permissions import API_PREFIX
from wms.api.problems import Problem
from wms.domain.errors import DomainError

# Errors are served as application/problem+json only; the schema is named there.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {
        "model": Problem,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    for status in (400, 401, 403, 404, 409, 415, 422, 429, 503)
}


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_CSV_ROUTE_SUFFIX = ":import"


class UnsupportedMediaTypeError(DomainError):
    """The body is not JSON (nor CSV where an import accepts it)."""

    slug = "unsupported-media-type"


async def require_json_body(request: Request) -> None:
    """Refuse a body sent as a form or other non-JSON type instead of misreading it."""
    if request.method not in _BODY_METHODS:
        return
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in (
        request.headers
    )
    if not has_body and not content_type:
        return
    if content_type == "application/json" or content_type.endswith("+json"):
        return
    if content_type == "text/csv" and request.url.path.endswith(_CSV_ROUTE_SUFFIX):
        return
    raise UnsupportedMediaTypeError(
        f"send the body as application/json (got {content_type or 'no content type'})"
    )


def api_router(tag: str) -> APIRouter:
    """A router under ``/api/v1`` whose every route authenticates and checks roles.

    The prefix lives on the resource router itself (not on an enclosing router) so that
    each route's template, used for metrics and the role matrix, is the full path.
    """
    return APIRouter(
        prefix=API_PREFIX,
        tags=[tag],
        dependencies=[Depends(authorize), Depends(require_json_body)],
        responses=ERROR_RESPONSES,
    )
