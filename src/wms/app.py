"""``create_app(settings)``: the ASGI application, its routers, middleware and lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import redis.asyncio
import structlog
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from wms import __version__
from wms.api import routes
from wms.api.auth import ApiKeyAuthenticator, authorize
from wms.api.jwt_auth import JwksCache, JwtAuthenticator
from wms.api.pagination import CursorCodec
from wms.api.paths import KeepEncodedSlashes
from wms.api.permissions import API_PREFIX, roles_text
from wms.api.problems import install_problem_handlers, problems_description
from wms.api.ratelimit import Buckets, Limit, LocalBuckets, RateLimiter, RedisBuckets
from wms.api.routing import install_openapi
from wms.config import Settings
from wms.ops import health
from wms.ops.health import DrainState
from wms.ops.metrics import POOLS
from wms.ops.middleware import (
    BodyLimitMiddleware,
    InFlightLimitMiddleware,
    RequestContextMiddleware,
)
from wms.ops.secrets import api_key_pepper
from wms.store import cache
from wms.store.database import create_pool
from wms.store.failover import StandbyAwarePool

DOCS_ASSETS = "/docs/assets"
# Benchmarks raise the limit for a run; the log says so.
UNLIMITED_RPS = 1_000_000.0
log = structlog.get_logger(__name__)


def create_app(settings: Settings, *, drain: DrainState | None = None) -> FastAPI:
    """Build the application; the lifespan opens the database pool, nothing happens before."""
    if settings.database_url is None:
        raise ValueError("create_app needs settings with a database_url (start the embedded one)")
    database_url = settings.database_url
    pepper = api_key_pepper(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Writes follow the primary across a failover; reads go on from a standby.
        pool = StandbyAwarePool(
            database_url,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            statement_timeout_ms=settings.statement_timeout_ms,
            lock_timeout_ms=settings.lock_timeout_ms,
        )
        await pool.open(wait=False)
        app.state.pool = pool
        app.state.authenticator = ApiKeyAuthenticator(pool, pepper, settings.auth_cache_seconds)
        app.state.jwt_authenticator = jwt_authenticator(settings, pool)
        # One Redis client per process, shared by rate limits and the cache; short
        # timeouts so a Redis outage degrades answers' speed, not their correctness.
        app.state.redis = (
            redis.asyncio.from_url(
                settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
            if settings.redis_url
            else None
        )
        app.state.rate_limiter = rate_limiter(settings, app.state.redis)
        cache.install(cache.backend_for(app.state.redis), settings.cache_ttl_seconds)
        app.state.replica_pool = replica_pool(settings)
        if app.state.replica_pool is not None:
            await app.state.replica_pool.open(wait=False)
            POOLS.watch("replica", app.state.replica_pool.get_stats)
        POOLS.watch("primary", pool.get_stats)
        POOLS.watch("standby_fallback", pool.standby.get_stats)  # only used while no primary
        try:
            yield
        finally:
            cache.install(None)
            if app.state.replica_pool is not None:
                POOLS.forget("replica")
                await app.state.replica_pool.close()
            POOLS.forget("primary")
            POOLS.forget("standby_fallback")
            if app.state.redis is not None:
                await app.state.redis.aclose()
            await pool.close()

    app = FastAPI(
        title="WMS Enterprise API",
        version=__version__,
        description=problems_description(),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        # Our middleware makes the server span (route template, request id, the log
        # line's trace id) and Prometheus has the metrics: FastAPI's built-in telemetry
        # would add a second server span and OTel metrics nobody reads.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.drain = drain or DrainState()
    app.state.cursors = CursorCodec(pepper)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.max_in_flight:
        app.add_middleware(InFlightLimitMiddleware, limit=settings.max_in_flight)
    app.add_middleware(RequestContextMiddleware)
    app.add_middleware(KeepEncodedSlashes)  # outermost: every layer sees the routed path
    install_problem_handlers(app, authorize)
    install_openapi(app)
    app.include_router(health.router)
    for router in routes.discover_routers():
        _describe_roles(router)
        app.include_router(router)
    if settings.docs_enabled:
        _mount_docs(app)
    return app


def rate_limiter(settings: Settings, redis_client: object | None) -> RateLimiter:
    """Buckets shared through Redis when a client is there, else in this process."""
    buckets: Buckets = RedisBuckets(redis_client) if redis_client is not None else LocalBuckets()
    if settings.rate_limit_rps >= UNLIMITED_RPS:
        log.warning("rate_limit_raised", rps=settings.rate_limit_rps)
    return RateLimiter(
        buckets,
        credential=Limit(settings.rate_limit_rps, settings.rate_limit_burst),
        tenant=Limit(settings.tenant_rate_limit_rps, settings.tenant_rate_limit_burst),
    )


def jwt_authenticator(
    settings: Settings, pool: AsyncConnectionPool[AsyncConnection]
) -> JwtAuthenticator | None:
    """The OIDC token verifier when an issuer is configured, else None (API keys only)."""
    if not (settings.oidc_issuer and settings.oidc_audience and settings.oidc_jwks_url):
        return None
    return JwtAuthenticator(
        pool,
        issuer=settings.oidc_issuer,
        audience=settings.oidc_audience,
        jwks=JwksCache(settings.oidc_jwks_url, settings.oidc_jwks_cache_seconds),
        tenant_claim=settings.oidc_tenant_claim,
        roles_claim=settings.oidc_roles_claim,
        subject_claim=settings.oidc_subject_claim,
    )


def replica_pool(settings: Settings) -> AsyncConnectionPool[AsyncConnection] | None:
    """The read pool of ``DATABASE_REPLICA_URL`` (a standby preferred), or None."""
    if settings.database_replica_url is None:
        return None
    pool = create_pool(
        settings.database_replica_url,
        min_size=0,
        max_size=settings.db_pool_max,
        statement_timeout_ms=settings.statement_timeout_ms,
        lock_timeout_ms=settings.lock_timeout_ms,
        name="replica",
        target_session_attrs="prefer-standby",
    )
    pool.timeout = 2.0  # an unreachable replica falls back to the primary quickly
    return pool


def _describe_roles(router: APIRouter) -> None:
    """Append each operation's allowed roles to its OpenAPI description (fails if unlisted)."""
    for route in router.routes:
        if isinstance(route, APIRoute) and route.path_format.startswith(API_PREFIX):
            template = route.path_format
            lines = [roles_text(method, template) for method in sorted(route.methods or ())]
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
