"""The resource routers mounted under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from wms.api.routes import warehouses

ROUTERS: list[APIRouter] = [warehouses.router]
