"""``/settings``: the caller's tenant settings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import Field, field_validator

from wms.api.auth import PrincipalDep
from wms.api.commands import Answer, read_transaction, run_command
from wms.api.routing import api_router
from wms.api.schemas import RequestModel, ResponseModel, examples, not_null
from wms.domain.settings import AllocationStrategy, BackorderPolicy
from wms.services import settings as service
from wms.store import settings as store

router = api_router("settings")
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2)]


class TenantSettings(ResponseModel):
    """The tenant's settings."""

    allocation_strategy: AllocationStrategy
    backorder_policy: BackorderPolicy
    allocate_on_create: bool
    over_receipt_tolerance_pct: float
    recount_tolerance_pct: float
    updated_at: datetime | None


class SettingsChanges(RequestModel):
    """Body of ``PATCH /settings``: only the fields given change; none may be null."""

    model_config = examples({"allocation_strategy": "fefo", "backorder_policy": "backorder"})

    allocation_strategy: AllocationStrategy | None = None
    backorder_policy: BackorderPolicy | None = None
    allocate_on_create: bool | None = None
    over_receipt_tolerance_pct: Percent | None = None
    recount_tolerance_pct: Percent | None = None

    _present = field_validator("*")(not_null)  # every setting has a value


def _ok(row: dict[str, Any]) -> Answer:
    return Answer(200, TenantSettings.model_validate(row))


@router.get("/settings", response_model=TenantSettings)
async def get_settings(request: Request, principal: PrincipalDep) -> TenantSettings:
    """The tenant's settings (defaults until first changed)."""
    async with read_transaction(request, principal) as conn:
        row = await store.get(conn, principal.tenant_id)
    return TenantSettings.model_validate(row)


@router.patch("/settings", response_model=TenantSettings)
async def update_settings(
    body: SettingsChanges, request: Request, principal: PrincipalDep
) -> Response:
    """Change some of the tenant's settings."""
    changes = body.model_dump(exclude_unset=True)
    return await run_command(
        request, principal, lambda uow: service.update_settings(uow, changes), _ok
    )
