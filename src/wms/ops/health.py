"""Liveness and readiness (API.md "Health and metrics"), outside ``/api/v1`` and without auth."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from wms.store.database import database_status
from wms.store.migrations import MINIMUM_SCHEMA_VERSION, parse_version

router = APIRouter(tags=["health"])
READY_CHECK_TIMEOUT_SECONDS = 2.0


class DrainState:
    """Set once SIGTERM arrives: readiness fails at once while requests are still served."""

    def __init__(self) -> None:
        self.draining = False

    def start(self) -> None:
        """Begin draining (idempotent)."""
        self.draining = True


class LiveBody(BaseModel):
    """Body of ``/health/live``."""

    status: Literal["ok"]


class DatabaseCheck(BaseModel):
    """Whether the database answered a real query, and as what."""

    status: Literal["ok", "error", "skipped"]
    role: Literal["primary", "standby"] | None
    latency_ms: float | None
    error: str | None = None


class SchemaCheck(BaseModel):
    """The build's minimum schema version against the applied one."""

    minimum: str
    applied: str | None


class ReadyChecks(BaseModel):
    """Each condition of readiness."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    database: DatabaseCheck
    # "schema" would shadow a BaseModel attribute; the alias keeps the contract's name.
    schema_check: SchemaCheck = Field(alias="schema")
    draining: bool


class ReadyBody(BaseModel):
    """Body of ``/health/ready``."""

    status: Literal["ok", "unavailable"]
    checks: ReadyChecks


@router.get("/health/live", response_model=LiveBody, summary="The process is running")
async def live() -> LiveBody:
    """200 while the process runs; it touches nothing else."""
    return LiveBody(status="ok")


@router.get(
    "/health/ready",
    response_model=ReadyBody,
    summary="Ready to take traffic",
    responses={503: {"model": ReadyBody, "description": "Not ready: see checks"}},
)
async def ready(request: Request) -> JSONResponse:
    """200 when the database answers, the schema is recent enough and we are not draining."""
    draining = request.app.state.drain.draining
    schema = SchemaCheck(minimum=MINIMUM_SCHEMA_VERSION, applied=None)
    if draining:
        # No database round trip while shutting down: the answer is 503 whatever it says.
        database = DatabaseCheck(status="skipped", role=None, latency_ms=None)
    else:
        try:
            status = await asyncio.wait_for(
                database_status(request.app.state.pool), READY_CHECK_TIMEOUT_SECONDS
            )
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", with its reason
            database = DatabaseCheck(
                status="error", role=None, latency_ms=None, error=type(exc).__name__
            )
        else:
            database = DatabaseCheck(status="ok", role=status.role, latency_ms=status.latency_ms)
            schema = SchemaCheck(minimum=MINIMUM_SCHEMA_VERSION, applied=status.schema_version)
    schema_ok = schema.applied is not None and parse_version(schema.applied) >= parse_version(
        schema.minimum
    )
    is_ready = database.status == "ok" and schema_ok and not draining
    body = ReadyBody(
        status="ok" if is_ready else "unavailable",
        checks=ReadyChecks(database=database, schema=schema, draining=draining),
    )
    headers = {} if is_ready else {"Retry-After": "5"}
    return JSONResponse(
        body.model_dump(mode="json", by_alias=True),
        status_code=200 if is_ready else 503,
        headers=headers,
    )
