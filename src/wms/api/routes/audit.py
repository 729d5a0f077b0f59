"""``/audit``: who changed what, when, from which request, before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Request
from pydantic import Field

from wms.api.auth import PrincipalDep
from wms.api.commands import read_transaction
from wms.api.pagination import ListQuery, Page, start_listing
from wms.api.query_models import query_of
from wms.api.routing import api_router
from wms.api.schemas import ResponseModel, text_query
from wms.store import audit as store

router = api_router("audit")


class AuditEntry(ResponseModel):
    """One audited change."""

    id: int
    occurred_at: datetime
    actor: str
    entity: str
    entity_id: str
    action: str
    # Each entity and action has its own shape (a product's fields, a count's results):
    # free-form in the OpenAPI document, documented as such (docs/known-issues.md).
    before: Annotated[
        dict[str, Any] | None,
        Field(description="The audited object's fields before the change; shape per entity"),
    ]
    after: Annotated[
        dict[str, Any] | None,
        Field(description="Its fields after the change, or what the action recorded"),
    ]
    request_id: str | None


class AuditQuery(ListQuery):
    """Filters of the audit listing: one entity, or one object of it."""

    entity: Annotated[str | None, text_query(60, "e.g. warehouse")] = None
    id: Annotated[str | None, text_query(200, "The entity's code or id")] = None


@router.get("/audit", response_model=Page[AuditEntry])
async def list_audit(
    request: Request,
    principal: PrincipalDep,
    query: Annotated[AuditQuery, query_of(AuditQuery)],
) -> Page[AuditEntry]:
    """Audit entries, newest first (by id, descending), optionally for one entity."""
    listing = start_listing(request, principal.tenant_id, query=query)
    async with read_transaction(request, principal) as conn:
        rows = await store.list_entries(
            conn,
            entity=query.entity,
            entity_id=query.id,
            after_id=listing.after[0] if listing.after else None,
            limit=listing.fetch,
        )
    return listing.page(rows, position=lambda row: [row["id"]], item=AuditEntry.model_validate)
