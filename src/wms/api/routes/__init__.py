"""The resource routers mounted under ``/api/v1``: every module here with a ``router``.

Discovery keeps resource modules independent: adding ``routes/orders.py`` with
``router = api_router("orders")`` is all it takes to mount it.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def discover_routers() -> list[APIRouter]:
    """Import each module of this package and collect its ``router``, by module name."""
    routers = []
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            routers.append(router)
    return routers
