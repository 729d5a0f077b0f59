"""The minimal-endpoint ceiling: the product's server stack serving ``/noop`` and ``/select1``.

Run: ``python -m bench.noop_app`` with ``DATABASE_URL``, ``PORT`` and ``WMS_DB_POOL_MAX``.

These routes exist only for the benchmark, never in the product's API. Everything else
is what ``wms-server serve`` runs: FastAPI, the same two middlewares
(src/wms/ops/middleware.py), the psycopg pool of ``create_pool`` with the server's
session settings, uvicorn and the garbage collector configured as in
src/wms/ops/server.py, JSON logs at WARNING.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request

from wms.ops.logging import configure_logging
from wms.ops.middleware import BodyLimitMiddleware, RequestContextMiddleware
from wms.ops.server import tune_garbage_collector
from wms.store.database import create_pool


def create_noop_app(url: str, pool_max: int) -> FastAPI:
    """The two ceiling routes behind the product's middleware, with the product's pool."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = create_pool(
            url, min_size=1, max_size=pool_max, statement_timeout_ms=5000, lock_timeout_ms=2000
        )
        await pool.open(wait=True)
        app.state.pool = pool
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/noop")
    async def noop() -> dict[str, str]:
        """No database: the HTTP stack alone."""
        return {"status": "ok"}

    @app.get("/select1")
    async def select1(request: Request) -> dict[str, int]:
        """One pooled connection, one round trip."""
        async with request.app.state.pool.connection() as conn:
            cursor = await conn.execute("SELECT 1")
            row = await cursor.fetchone()
        return {"value": row[0] if row else 0}

    app.add_middleware(BodyLimitMiddleware, max_bytes=16 * 1024 * 1024)
    app.add_middleware(RequestContextMiddleware)
    return app


def main() -> None:
    """Serve on 127.0.0.1:``PORT`` until SIGTERM."""
    configure_logging("WARNING")
    # The settings mirror wms.ops.server.run_server (one process; ceilings.noop_server
    # starts as many as the server under test runs).
    uvicorn.run(
        "bench.noop_app:app_from_env",
        factory=True,
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=True,
        lifespan="on",
    )


def app_from_env() -> FastAPI:
    """The app for ``DATABASE_URL`` and ``WMS_DB_POOL_MAX`` (uvicorn's factory)."""
    configure_logging("WARNING")
    app = create_noop_app(os.environ["DATABASE_URL"], int(os.environ.get("WMS_DB_POOL_MAX", "20")))
    tune_garbage_collector()  # as run_server does
    return app


if __name__ == "__main__":
    main()
