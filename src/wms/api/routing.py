"""The router every ``/api/v1`` resource module starts from, and its OpenAPI plumbing.

Each operation documents the errors it can answer (problem+json, by method), the
headers of a creation and of a refusal, and OpenAPI links to the operations that take
what it returns (``links``), so clients and the contract fuzzer can follow them.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from wms.api.auth import SECURITY_SCHEME, SECURITY_SCHEMES, authorize
from wms.api.commands import MAX_IDEMPOTENCY_KEY_LENGTH
from wms.api.json_body import parse_json
from wms.api.permissions import API_PREFIX
from wms.api.problems import Problem, json_pointer
from wms.api.query_models import openapi_parameters, query_model_of
from wms.domain.errors import DomainError, FieldError

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_INTEGER = {"type": "integer", "minimum": 0}
_RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": _INTEGER}
_ERRORS: dict[int, str] = {
    400: "The body is not valid JSON (`malformed-json`)",
    401: "Missing or invalid credentials (`unauthorized`)",
    403: "The credential's role may not do this (`forbidden`)",
    404: "No such object, or another tenant's (`not-found`)",
    409: "Conflicts with the current state (`conflict`, `invalid-state`, `insufficient-stock`, …)",
    413: "The body is larger than `WMS_MAX_BODY_BYTES` (`payload-too-large`)",
    415: "The body is not JSON (`unsupported-media-type`)",
    422: "Invalid request: `errors` lists each field as a JSON Pointer or a parameter name",
    429: "Rate limited (`rate-limited`); retry after `Retry-After` seconds",
    503: "Temporarily unavailable (`service-unavailable`); retry after `Retry-After` seconds",
}
_READ_ERRORS = (401, 403, 404, 422, 429, 503)
_WRITE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
_HEADERS: dict[int, dict[str, Any]] = {
    429: {
        "Retry-After": {**_RETRY_AFTER, "required": True},
        "RateLimit-Limit": {"description": "Bucket size", "schema": _INTEGER, "required": True},
        "RateLimit-Remaining": {"description": "Tokens left", "schema": _INTEGER, "required": True},
        "RateLimit-Reset": {
            "description": "Seconds to a token",
            "schema": _INTEGER,
            "required": True,
        },
    },
    503: {"Retry-After": _RETRY_AFTER},
}
LOCATION_HEADER = {
    "Location": {
        "description": "Path of the created resource",
        "schema": {"type": "string"},
        "required": True,
    }
}
# Every write honours Idempotency-Key (api/commands.py); the contract says so per operation.
IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Makes the request safe to retry: the same key and request within 24 h "
    "answer the first answer again (with `Idempotent-Replayed: true`); another request "
    "under the key is 422 `idempotency-key-reused`",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH,
        # Printable ASCII, as a header carries it (no spaces at the ends: HTTP strips them).
        "pattern": "^[!-~]([ -~]*[!-~])?$",
    },
}
REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer of an earlier request with "
        "the same Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response of an error: problem+json, with its headers."""
    response: dict[str, Any] = {
        "model": Problem,
        "description": description or _ERRORS[status],
        "content": {"application/problem+json": {"schema": PROBLEM_REF}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


# Every error status any route may answer (kept for modules that document one more).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: problem_response(status) for status in _ERRORS
}


def link(operation: str, description: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link to ``"METHOD /path"`` (under ``/api/v1``) with its parameters.

    Values are runtime expressions such as ``$response.body#/number``.
    """
    method, path = operation.split(" ", 1)
    pointer = (API_PREFIX + path).replace("~", "~0").replace("/", "~1")
    return {
        "operationRef": f"#/paths/{pointer}/{method.lower()}",
        "description": description,
        "parameters": parameters,
    }


def links(status: int, **named: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route whose ``status`` answer links to other operations."""
    return {status: {"links": named}}


class ApiRoute(APIRoute):
    """A route documenting exactly the errors its method can answer, ``Location``, the
    bearer credential it requires, and the parameters of its ``query_of`` models."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        methods: set[str] | list[str] | None = None,
        status_code: int | None = None,
        responses: dict[int | str, dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        verbs = {method.upper() for method in methods or ("GET",)}
        statuses = _READ_ERRORS if verbs <= {"GET", "HEAD"} else _WRITE_ERRORS
        combined: dict[int | str, dict[str, Any]] = {
            status: problem_response(status) for status in statuses
        }
        for status, extra in (responses or {}).items():
            combined[status] = {**combined.get(status, {}), **extra}
        writes = bool(verbs & _BODY_METHODS)
        success = status_code or 200
        if writes:
            combined[success] = {
                **combined.get(success, {}),
                "headers": {**combined.get(success, {}).get("headers", {}), **REPLAYED_HEADER},
            }
        if status_code == 201:
            combined[201] = {
                **combined.get(201, {}),
                "headers": {**LOCATION_HEADER, **combined.get(201, {}).get("headers", {})},
            }
        super().__init__(
            path,
            endpoint,
            methods=methods,
            status_code=status_code,
            responses=combined,
            **kwargs,
        )
        documented: dict[str, Any] = {"security": [{SECURITY_SCHEME: []}]}
        if writes:
            documented["parameters"] = [IDEMPOTENCY_KEY_PARAMETER]
        for model in _query_models(self.dependant):
            parameters, schemas = openapi_parameters(model)
            documented.setdefault("parameters", []).extend(parameters)
            # Linked to the document's components by install_openapi, then dropped.
            documented.setdefault(_QUERY_SCHEMAS, {}).update(schemas)
        # FastAPI merges this into the operation (lists appended to its own parameters).
        self.openapi_extra = {**documented, **(self.openapi_extra or {})}


_QUERY_SCHEMAS = "x-wms-query-schemas"
_COMPONENT = "#/components/schemas/"


def _link_query_schemas(
    operation: dict[str, Any], defined: dict[str, Any], schemas: dict[str, Any]
) -> None:
    """Point the operation's query-model references at the document's components.

    pydantic names a referenced schema by its class (``TaskStatus``); FastAPI names the
    same schema by its module when two classes share a name. A query model's schema is
    linked to the component that is the same schema, or added under a free name.
    """
    renamed = {}
    for name, schema in defined.items():
        target = next((key for key, known in schemas.items() if known == schema), None)
        if target is None:
            target = name
            while target in schemas:
                target += "_"
            schemas[target] = schema
        renamed[_COMPONENT + name] = _COMPONENT + target
    if renamed:
        # A copy: the parameters are the route's own objects, shared by every app built.
        operation["parameters"] = deepcopy(operation.get("parameters", []))
        _rewrite_refs(operation["parameters"], renamed)


def _rewrite_refs(node: Any, renamed: dict[str, str]) -> None:
    if isinstance(node, dict):
        if node.get("$ref") in renamed:
            node["$ref"] = renamed[node["$ref"]]
        for value in node.values():
            _rewrite_refs(value, renamed)
    elif isinstance(node, list):
        for value in node:
            _rewrite_refs(value, renamed)


def _query_models(dependant: Dependant) -> list[type[Any]]:
    """The ``query_of`` models among the route's dependencies, in declaration order."""
    found = []
    for dependency in dependant.dependencies:
        model = query_model_of(dependency.call)
        if model is not None and model not in found:
            found.append(model)
        found += [m for m in _query_models(dependency) if m not in found]
    return found


def install_openapi(app: FastAPI) -> None:
    """Serve an OpenAPI document whose errors are ``application/problem+json`` only.

    FastAPI also lists a ``model`` response under the route's own media type; errors are
    never sent as plain ``application/json``, so that entry is dropped. The bearer scheme
    and the schemas ``query_of`` parameters refer to join the components.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            components = document.setdefault("components", {})
            components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
            schemas = components.setdefault("schemas", {})
            for operations in document.get("paths", {}).values():
                for operation in operations.values():
                    _link_query_schemas(operation, operation.pop(_QUERY_SCHEMAS, {}), schemas)
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if status[0] in "45" and "application/problem+json" in content:
                            content.pop("application/json", None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_CSV_ROUTE_SUFFIX = ":import"


class UnsupportedMediaTypeError(DomainError):
    """The body is not JSON (nor CSV where an import accepts it)."""

    slug = "unsupported-media-type"


async def require_json_body(request: Request) -> None:
    """Refuse a body sent as a form or other non-JSON type instead of misreading it, and
    any body but ``{}`` on an action that takes none."""
    if request.method not in _BODY_METHODS:
        return
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in (
        request.headers
    )
    if not has_body and not content_type:
        return
    if content_type == "application/json" or content_type.endswith("+json"):
        route = request.scope.get("route")
        # The imports read their body themselves (JSON or CSV); other routes without a
        # body model take none.
        if (
            isinstance(route, APIRoute)
            and route.body_field is None
            and not request.url.path.endswith(_CSV_ROUTE_SUFFIX)
        ):
            await _refuse_a_body(request)
        return
    if content_type == "text/csv" and request.url.path.endswith(_CSV_ROUTE_SUFFIX):
        return
    raise UnsupportedMediaTypeError(
        f"send the body as application/json (got {content_type or 'no content type'})"
    )


async def _refuse_a_body(request: Request) -> None:
    """An action without a body model (allocate, close, approve...) never reads its body:
    malformed JSON or unknown fields there went unnoticed and the action ran."""
    raw = await request.body()
    if not raw.strip():
        return
    sent = parse_json(raw)  # 400 malformed-json
    if sent == {}:
        return
    if isinstance(sent, dict):
        error = FieldError(json_pointer((next(iter(sent)),)), "Extra inputs are not permitted")
        error.errors += [(json_pointer((name,)), "Extra inputs are not permitted")
                         for name in list(sent)[1:]]  # fmt: skip
        raise error
    raise FieldError("/", "this action takes no body: send none, or {}")


def api_router(tag: str) -> APIRouter:
    """A router under ``/api/v1`` whose every route authenticates and checks roles.

    The prefix lives on the resource router itself (not on an enclosing router) so that
    each route's template, used for metrics and the role matrix, is the full path.
    """
    return APIRouter(
        prefix=API_PREFIX,
        tags=[tag],
        dependencies=[Depends(authorize), Depends(require_json_body)],
        route_class=ApiRoute,
    )
