"""Transactions bound to one tenant, as the runtime role, so row-level security applies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from wms.ops.tracing import database_span
from wms.store.roles import APP

_BIND = (
    "SELECT set_config('role', %(role)s, true), set_config('app.tenant_id', %(tenant)s, true), "
    "set_config('statement_timeout', %(st)s, true), set_config('lock_timeout', %(lt)s, true), "
    "set_config('transaction_read_only', %(ro)s, true), "
    "set_config('plan_cache_mode', %(plans)s, true)"
)
# Commands run on generic plans. Their statements find rows by key, mostly through
# arrays of keys (``unnest(%s::bigint[])``), and PostgreSQL, left to choose, re-plans
# those at every call: a generic plan is costed for an array of unknown length, so it
# never looks cheaper than a plan made for one element. Planning was about 40% of
# PostgreSQL's CPU in a pick confirmation (bench/FINDINGS.md). A statement whose best
# plan depends on its values asks for its own (``planned_for_values``); reads, whose
# filters vary, keep PostgreSQL's choice. tests/integration/test_query_plans.py checks
# that the commands' generic plans stay on indexes.
COMMAND_PLANS = "force_generic_plan"
READ_PLANS = "auto"
_PLAN_FOR_VALUES = "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)"
_PLAN_AS_COMMANDS = "SELECT set_config('plan_cache_mode', %s, true)"
# A report of several statements that must agree with one another (GET /reports/kpis):
# under READ COMMITTED each statement would see the commits made since the previous one.
_BEGIN_ONE_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


@asynccontextmanager
async def tenant_transaction(
    pool: AsyncConnectionPool[AsyncConnection],
    tenant_id: int,
    *,
    statement_timeout_ms: int,
    lock_timeout_ms: int,
    read_only: bool = False,
    one_snapshot: bool = False,
) -> AsyncIterator[AsyncConnection]:
    """One transaction as ``wms_app`` with ``app.tenant_id`` set; commits unless it raises.

    ``one_snapshot`` (reads only) makes every statement see the database as of the first:
    REPEATABLE READ, which a read-only transaction gets without serialization failures and
    which a hot standby serves as well (SERIALIZABLE it would refuse).

    The pool's sessions are in autocommit (store/database.py), so ``BEGIN`` and the
    binding are pipelined with what follows instead of costing round trips of their own.
    A read-only transaction stays in pipeline mode to the end: ``BEGIN``, the binding and
    the first query travel together, and ``COMMIT`` goes with the closing sync. A writing
    one leaves pipeline mode after the binding, so that each statement's error is raised
    where it runs (services catch some). If the block raises, leaving the pool's
    connection context rolls the transaction back.
    """
    if one_snapshot and not read_only:
        raise ValueError("one_snapshot is for read-only transactions")
    begin = _BEGIN_ONE_SNAPSHOT if one_snapshot else "BEGIN"
    params = {
        "role": APP,
        "tenant": str(tenant_id),
        "st": str(statement_timeout_ms),
        "lt": str(lock_timeout_ms),
        "ro": "on" if read_only else "off",
        "plans": READ_PLANS if read_only else COMMAND_PLANS,
    }
    with database_span("db.transaction", read_only=read_only) as span:
        span.set_attribute("wms.tenant_id", tenant_id)
        async with pool.connection() as conn:
            if read_only:
                async with conn.pipeline():
                    await conn.execute(begin, prepare=False)
                    await conn.execute(_BIND, params)
                    yield conn
                    await conn.execute("COMMIT", prepare=False)
                return
            async with conn.pipeline():
                await conn.execute("BEGIN", prepare=False)
                await conn.execute(_BIND, params)
            yield conn
            await conn.commit()


@asynccontextmanager
async def planned_for_values(conn: AsyncConnection) -> AsyncIterator[None]:
    """Inside a command, plan what is sent within for its parameters, then go back.

    For a statement whose best plan depends on its values (how many products, which
    warehouse); the switches are pipelined with it, so they cost no round trip.
    """
    async with conn.pipeline():
        await conn.execute(_PLAN_FOR_VALUES)
        yield
        await conn.execute(_PLAN_AS_COMMANDS, (COMMAND_PLANS,))
