"""Tenant settings: allocation strategy, backorder policy, tolerances."""

from __future__ import annotations

from typing import Any

from wms.services.unit_of_work import UnitOfWork
from wms.store import settings as store


async def update_settings(uow: UnitOfWork, changes: dict[str, Any]) -> dict[str, Any]:
    """Change some settings; audited with before and after."""
    before = await store.get(uow.conn, uow.tenant_id, for_update=True)
    await store.update(uow.conn, uow.tenant_id, changes)
    after = await store.get(uow.conn, uow.tenant_id)
    uow.audit("settings", uow.tenant_code, "updated", before=before, after=after)
    uow.emit("wms.settings.updated", "settings", uow.tenant_code, after)
    return after
