"""``query_of``: one validation for a route's query string, answering and documenting
exactly what FastAPI's own per-parameter handling does for the same declarations."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient

from wms.api.pagination import CursorQuery, LimitQuery, ListQuery
from wms.api.query_models import query_of
from wms.api.routing import api_router, install_openapi
from wms.api.schemas import text_query


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Other:
    class Colour(StrEnum):  # the same class name, other values: FastAPI names both long
        GREEN = "green"


class OtherFilters(ListQuery):
    colour: Other.Colour | None = None


Filter = Annotated[str | None, text_query(64)]
Described = Annotated[str | None, text_query(64, "What this filter finds.")]
Count = Annotated[int | None, Query(ge=1, le=10)]


class Filters(ListQuery):  # limit and cursor inherited
    name: Filter = None
    note: Described = None
    colour: Colour | None = None
    count: Count = None


def _app() -> FastAPI:
    """One route per style, each echoing what it received, without authentication."""
    app = FastAPI()
    router = api_router("test")
    router.dependencies.clear()  # no credentials in a unit test

    @router.get("/declared")
    async def declared(
        *,
        name: Filter = None,
        note: Described = None,
        colour: Colour | None = None,
        count: Count = None,
        limit: LimitQuery = 50,
        cursor: CursorQuery = None,
    ) -> dict[str, Any]:
        return {"name": name, "note": note, "colour": colour, "count": count,
                "limit": limit, "cursor": cursor}  # fmt: skip

    @router.get("/modelled")
    async def modelled(query: Annotated[Filters, query_of(Filters)]) -> dict[str, Any]:
        assert query.filters() == {k: v for k, v in query.model_dump().items()
                                   if k not in ("limit", "cursor")}  # fmt: skip
        return query.model_dump()

    @router.get("/other-declared")
    async def other_declared(*, colour: Other.Colour | None = None) -> dict[str, Any]:
        return {"colour": colour}

    @router.get("/other-modelled")
    async def other_modelled(
        query: Annotated[OtherFilters, query_of(OtherFilters)],
    ) -> dict[str, Any]:
        return {"colour": query.colour}

    app.include_router(router)
    install_openapi(app)
    return app


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(_app())


@pytest.mark.parametrize(
    "query",
    [
        "",
        "name=a&colour=blue&count=3&limit=7&cursor=abc",
        "name=first&name=second",  # the last value, as FastAPI reads a scalar
        "unknown=1&limit=2",  # unknown parameters are ignored
        "limit=0",
        "limit=501&count=11",  # two errors at once
        "limit=many",
        "colour=green",
        "name=" + "x" * 65,
        "note=a%00b",  # a control character
        "name=",  # empty, not absent
    ],
)
def test_a_query_model_answers_what_declared_parameters_answer(
    client: TestClient, query: str
) -> None:
    declared = client.get(f"/api/v1/declared?{query}")
    modelled = client.get(f"/api/v1/modelled?{query}")
    assert (modelled.status_code, modelled.json()) == (declared.status_code, declared.json())


def test_a_query_model_is_documented_as_declared_parameters_are(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    declared = paths["/api/v1/declared"]["get"]
    modelled = paths["/api/v1/modelled"]["get"]
    assert modelled["parameters"] == declared["parameters"]
    names = ["name", "note", "colour", "count", "limit", "cursor"]  # inherited ones last
    assert [p["name"] for p in modelled["parameters"]] == names
    assert modelled["security"] == declared["security"] == [{"HTTPBearer": []}]
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    (colour,) = [p for p in modelled["parameters"] if p["name"] == "colour"]
    linked = schemas[colour["schema"]["anyOf"][0]["$ref"].removeprefix("#/components/schemas/")]
    assert linked == {"enum": ["red", "blue"], "title": "Colour", "type": "string"}


def test_query_schemas_sharing_a_class_name_link_to_their_own_components(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    paths, schemas = document["paths"], document["components"]["schemas"]
    for name in ("other", ""):
        declared = paths[f"/api/v1/{name + '-' if name else ''}declared"]["get"]
        modelled = paths[f"/api/v1/{name + '-' if name else ''}modelled"]["get"]
        assert modelled["parameters"][: len(declared["parameters"])] == declared["parameters"]
        assert "x-wms-query-schemas" not in modelled
    refs = [
        p["schema"]["anyOf"][0]["$ref"]
        for route in ("/api/v1/modelled", "/api/v1/other-modelled")
        for p in paths[route]["get"]["parameters"]
        if p["name"] == "colour"
    ]
    assert len(set(refs)) == 2  # two enums, two components
    for ref in refs:
        assert ref.removeprefix("#/components/schemas/") in schemas
