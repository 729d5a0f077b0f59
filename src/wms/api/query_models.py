"""Query parameters declared as one model and validated in one pydantic call.

FastAPI checks each declared query parameter on its own and inspects its type again at
every request: about 16 µs a parameter on the benchmark machine, 130 µs for the stock
lookup's eight, more than the Python side of its SQL (bench/FINDINGS.md). So a route
declares its query parameters as a ``QueryModel`` (every list: a ``pagination.ListQuery``)
and takes ``query_of(Model)``: the query string is validated in one call, a bad value is
the same 422 problem as before (FastAPI's ``RequestValidationError``, located ``query``),
and ``ApiRoute`` documents the model's fields as the operation's query parameters, as
FastAPI would (tests/unit/test_query_models.py compares the two).
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError

Q = TypeVar("Q", bound="QueryModel")
COMPONENTS = "#/components/schemas/{model}"


class QueryModel(BaseModel):
    """A route's query parameters; unknown parameters are ignored, as FastAPI does."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def query_of(model: type[Q]) -> Any:
    """``Depends()`` giving ``model`` validated from the request's query string."""
    return Depends(_parser(model))


def query_model_of(dependency: object) -> type[QueryModel] | None:
    """The model a ``query_of`` dependency parses; None for any other callable."""
    found: type[QueryModel] | None = getattr(dependency, "query_model", None)
    return found


@cache
def _parser(model: type[Q]) -> Any:
    async def parse(request: Request) -> Q:
        try:
            # One value per name, the last one given, as FastAPI reads a scalar parameter.
            return model.model_validate(dict(request.query_params))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            # In the order the parameters are documented, as FastAPI reports them.
            errors.sort(key=lambda error: order.get(str(error["loc"][0]), len(order)))
            raise RequestValidationError(
                [{**error, "loc": ("query", *error["loc"])} for error in errors]
            ) from None

    order = {name: index for index, name in enumerate(_own_fields_first(model))}

    parse.query_model = model  # type: ignore[attr-defined]
    return parse


def _own_fields_first(model: type[QueryModel]) -> list[str]:
    """Field names, those the model declares before those it inherits (a list's ``limit``
    and ``cursor`` come last, after its filters, as FastAPI lists a signature's)."""
    inherited = {
        name
        for base in model.__mro__[1:]
        if isinstance(base, type) and issubclass(base, BaseModel)
        for name in base.model_fields
    }
    names = list(model.model_fields)
    return [n for n in names if n not in inherited] + [n for n in names if n in inherited]


def openapi_parameters(model: type[QueryModel]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The model's fields as OpenAPI query parameters, and the schemas they refer to."""
    schema = model.model_json_schema(ref_template=COMPONENTS, mode="validation")
    parameters = []
    for name in _own_fields_first(model):
        field = model.model_fields[name]
        property_schema = dict(schema["properties"][name])
        if property_schema.get("default", ...) is None:
            property_schema.pop("default")  # FastAPI leaves a null default out
        # pydantic titles a field beside a reference only in the field's own schema
        property_schema.setdefault("title", field.title or name.replace("_", " ").title())
        parameter: dict[str, Any] = {
            "name": field.alias or name,
            "in": "query",
            "required": field.is_required(),
            "schema": property_schema,
        }
        if field.description:
            parameter["description"] = field.description
        parameters.append(parameter)
    return parameters, schema.get("$defs", {})
