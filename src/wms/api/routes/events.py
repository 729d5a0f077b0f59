"""``/events``: the tenant's outbox as a feed, with the relay's visibility rule.

Only events of transactions older than the snapshot's xmin are shown, in (xid, id)
order, so a transaction committing late is never skipped by a reader that moved on.
``next_cursor`` is never null: after the last event, or the same position when there
is nothing new. A cursor before events retention already removed answers 410.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Request

from wms.api.auth import PrincipalDep
from wms.api.commands import read_transaction
from wms.api.pagination import CursorCodec, CursorExpiredError, ListQuery
from wms.api.query_models import query_of
from wms.api.routing import api_router, problem_response
from wms.api.schemas import ResponseModel
from wms.events.cloudevents import DATA_CONTENT_TYPE, SPEC_VERSION, dataschema
from wms.store import outbox

router = api_router("events")
_FILTERS: dict[str, Any] = {"feed": "events"}


class CloudEvent(ResponseModel):
    """One event in CloudEvents 1.0 JSON form."""

    specversion: str
    id: str
    source: str
    type: str
    subject: str
    time: datetime
    datacontenttype: str
    dataschema: str
    tenant: str
    data: dict[str, Any]


class EventPage(ResponseModel):
    """A page of the feed; poll again with ``next_cursor`` (never null)."""

    items: list[CloudEvent]
    next_cursor: str


class EventQuery(ListQuery):
    """Where the feed continues: ``cursor``, and the page size (as every list's)."""


@router.get(
    "/events",
    response_model=EventPage,
    responses={410: problem_response(410, "The cursor is older than retention (`cursor-expired`)")},
)
async def list_events(
    request: Request,
    principal: PrincipalDep,
    query: Annotated[EventQuery, query_of(EventQuery)],
) -> EventPage:
    """The tenant's events after ``cursor`` (without one: from the oldest retained).

    Without a cursor the feed starts after the newest event retention removed: older
    ones a relay still keeps for Kafka are past the retention, and a cursor among them
    would be answered 410 at the next page, again and again.
    """
    codec: CursorCodec = request.app.state.cursors
    cursor, limit = query.cursor, query.limit
    after: outbox.FeedPosition | None = None
    if cursor:
        position = codec.decode(cursor, principal.tenant_id, _FILTERS)
        after = (int(position[0]), int(position[1]))
    async with read_transaction(request, principal) as conn:
        start = after if after is not None else await outbox.feed_start(conn)
        rows = await outbox.feed_page(conn, start, limit)
        # After the read: a prune that ran before it is seen here, never a silent gap.
        if after is not None and await outbox.pruned_after(conn, after):
            raise CursorExpiredError(
                "events after this cursor were removed by retention; start without a cursor"
            )
    items = [
        CloudEvent(
            specversion=SPEC_VERSION,
            id=str(row["event_id"]),
            source=row["source"],
            type=row["type"],
            subject=row["subject"],
            time=row["occurred_at"],
            datacontenttype=DATA_CONTENT_TYPE,
            dataschema=dataschema(row["type"]),
            tenant=principal.tenant_code,
            data=row["data"],
        )
        for row in rows
    ]
    xid, last_id = (int(rows[-1]["xid"]), int(rows[-1]["id"])) if rows else start
    return EventPage(
        items=items, next_cursor=codec.encode(principal.tenant_id, _FILTERS, [str(xid), last_id])
    )
