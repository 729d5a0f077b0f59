"""``create_app(settings)``: the ASGI application, its routers, middleware and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from wms import __version__
from wms.api import routes
from wms.api.auth import ApiKeyAuthenticator
from wms.api.pagination import CursorCodec
from wms.api.permissions import API_PREFIX, roles_text
from wms.api.problems import install_problem_handlers, problems_description
from wms.config import Settings
from wms.ops import health
from wms.ops.health import DrainState
from wms.ops.metrics import POOLS
from wms.ops.middleware import RequestContextMiddleware
from wms.ops.secrets import api_key_pepper
from wms.store.database import create_pool

DOCS_ASSETS = "/docs/assets"


def create_app(settings: Settings, *, drain: DrainState | None = None) -> FastAPI:
    """Build the application; the lifespan opens the database pool, nothing happens before."""
    if settings.database_url is None:
        raise ValueError("create_app needs settings with a database_url (start the embedded one)")
    database_url = settings.database_url
    pepper = api_key_pepper(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = create_pool(
            database_url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            statement_timeout_ms=settings.statement_timeout_ms,
            lock_timeout_ms=settings.lock_timeout_ms,
        )
        await pool.open(wait=False)
        app.state.pool = pool
        app.state.authenticator = ApiKeyAuthenticator(pool, pepper, settings.auth_cache_seconds)
        POOLS.watch("primary", pool.get_stats)
        try:
            yield
        finally:
            POOLS.forget("primary")
            await pool.close()

    app = FastAPI(
        title="WMS Enterprise API",
        version=__version__,
        description=problems_description(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.settings = settings
    app.state.drain = drain or DrainState()
    app.state.cursors = CursorCodec(pepper)
    app.add_middleware(RequestContextMiddleware)
    install_problem_handlers(app)
    app.include_router(health.router)
    for router in routes.discover_routers():
        _describe_roles(router)
        app.include_router(router)
    if settings.docs_enabled:
        _mount_docs(app)
    return app


def _describe_roles(router: APIRouter) -> None:
    """Append each operation's allowed roles to its OpenAPI description (fails if unlisted)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path.startswith(API_PREFIX):
            lines = [roles_text(method, route.path) for method in sorted(route.methods or ())]
            route.description = "\n\n".join([route.description or "", *lines]).strip()


def _mount_docs(app: FastAPI) -> None:
    """Swagger UI served from the package's own copy of its assets (no CDN)."""
    assets = Path(str(resources.files("fastapi_offline"))) / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="WMS Enterprise API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )
