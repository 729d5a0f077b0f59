"""Keyset pagination (API.md "Lists"): ``limit``, opaque signed ``cursor``, ``next_cursor``.

A cursor carries the last row's sort key, the tenant and a digest of the filters, signed
with a server key: it cannot be forged, moved to another tenant, or reused with other
filters (→ 422 ``invalid-cursor``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel

from wms.api.query_models import QueryModel
from wms.domain.errors import DomainError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
ItemT = TypeVar("ItemT")
RowT = TypeVar("RowT")

LimitQuery = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Page size (default {DEFAULT_LIMIT}).")
]
CursorQuery = Annotated[
    str | None, Query(max_length=2000, description="Opaque cursor from `next_cursor`.")
]


class ListQuery(QueryModel):
    """A list's query parameters (``query_of``): its filters, then ``limit`` and ``cursor``."""

    limit: LimitQuery = DEFAULT_LIMIT
    cursor: CursorQuery = None

    def filters(self) -> dict[str, Any]:
        """The filters alone, which a cursor is bound to."""
        return self.model_dump(exclude={"limit", "cursor"})


class InvalidCursorError(DomainError):
    """The cursor is malformed, forged, or belongs to another tenant or filter."""

    slug = "invalid-cursor"


class CursorExpiredError(DomainError):
    """What the cursor continues from was removed by retention; start again."""

    slug = "cursor-expired"


class Page(BaseModel, Generic[ItemT]):
    """One page of a listing; ``next_cursor`` is null only at the end."""

    items: list[ItemT]
    next_cursor: str | None


class CursorCodec:
    """Signs and checks cursors with a key derived from the server's secret."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, b"wms-cursor-v1", hashlib.sha256).digest()

    def encode(self, tenant_id: int, filters: dict[str, Any], position: list[Any]) -> str:
        """A cursor continuing after ``position`` (the last row's sort key)."""
        payload = json.dumps(
            {"t": tenant_id, "f": _digest(filters), "p": position}, separators=(",", ":")
        ).encode()
        signature = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        return _b64(payload) + "." + _b64(signature)

    def decode(self, cursor: str, tenant_id: int, filters: dict[str, Any]) -> list[Any]:
        """The position stored in ``cursor``; ``InvalidCursorError`` if it does not fit."""
        try:
            payload_text, signature_text = cursor.split(".", 1)
            payload, signature = _unb64(payload_text), _unb64(signature_text)
        except ValueError:
            raise InvalidCursorError("the cursor is malformed") from None
        expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(signature, expected):
            raise InvalidCursorError("the cursor was not issued by this server")
        data = json.loads(payload)
        if data["t"] != tenant_id or data["f"] != _digest(filters):
            raise InvalidCursorError("the cursor belongs to another listing; start again")
        position: list[Any] = data["p"]
        return position


@dataclass(frozen=True)
class Listing:
    """One list request: its page size, decoded position and the filters it is bound to."""

    codec: CursorCodec
    tenant_id: int
    filters: dict[str, Any]
    limit: int
    after: list[Any] | None

    @property
    def fetch(self) -> int:
        """Rows to fetch: one more than the page, to know whether another page follows."""
        return self.limit + 1

    def page(
        self,
        rows: list[RowT],
        *,
        position: Callable[[RowT], list[Any]],
        item: Callable[[RowT], ItemT],
    ) -> Page[ItemT]:
        """The page of ``rows`` and the cursor after its last row (``position`` = sort key)."""
        shown = rows[: self.limit]
        next_cursor = None
        if len(rows) > self.limit and shown:
            next_cursor = self.codec.encode(self.tenant_id, self.filters, position(shown[-1]))
        return Page[ItemT](items=[item(row) for row in shown], next_cursor=next_cursor)


def start_listing(
    request: Request,
    tenant_id: int,
    query: ListQuery,
    *,
    filters: dict[str, Any] | None = None,
) -> Listing:
    """Decode the query's cursor (checked against tenant and filters) for a list endpoint.

    ``filters``, when given, replace the query's own (a path parameter bound to the
    cursor, a value normalised for it).
    """
    codec: CursorCodec = request.app.state.cursors
    filters = query.filters() if filters is None else filters
    after = codec.decode(query.cursor, tenant_id, filters) if query.cursor else None
    return Listing(codec, tenant_id, filters, query.limit, after)


def _digest(filters: dict[str, Any]) -> str:
    canonical = json.dumps(filters, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("bad base64") from exc
