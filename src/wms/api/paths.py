"""Path parameters that may hold a ``/`` (SKUs, order numbers), sent encoded as ``%2F``.

The HTTP server decodes ``%2F`` before routing, so ``/products/AB%2F1`` would reach the
router as ``/products/AB/1`` and match nothing. ``KeepEncodedSlashes`` decodes the raw
path again segment by segment, an encoded slash becoming ``SLASH_IN_SEGMENT``; the
``segment`` convertor of the routes (``{sku:segment}``) turns it back into ``/``. An
unencoded ``/`` still separates segments: ``/orders/A/cancel`` is order ``A``'s cancel,
``/orders/A%2Fcancel`` the order numbered ``A/cancel``.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from starlette.convertors import Convertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send

# A private-use character: no SKU or order number may hold it (their patterns), so it
# can stand for an encoded slash between the decoding and the convertor.
SLASH_IN_SEGMENT = "\ue000"


class SegmentConvertor(Convertor[str]):
    """One path segment, in which an encoded slash (``%2F``) is part of the value."""

    regex = "[^/]+"

    def convert(self, value: str) -> str:
        """The segment's value, its encoded slashes restored."""
        return value.replace(SLASH_IN_SEGMENT, "/")

    def to_string(self, value: str) -> str:
        """The value as a path segment (``/`` encoded)."""
        return quote(value, safe="")


register_url_convertor("segment", SegmentConvertor())


def segment(value: str) -> str:
    """``value`` as one path segment of a URL we hand out (a ``Location``)."""
    return quote(value, safe="")


def decode_keeping_slashes(raw_path: bytes) -> str:
    """The raw path decoded as the server does, except that ``%2F`` stays inside its segment."""
    return "/".join(
        unquote(part.replace("%2F", SLASH_IN_SEGMENT).replace("%2f", SLASH_IN_SEGMENT))
        for part in raw_path.decode("latin-1").split("/")
    )


class KeepEncodedSlashes:
    """Route on the raw path where it holds an encoded slash (rare: one bytes check else)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_path = scope.get("raw_path")
        if scope["type"] == "http" and raw_path and (b"%2F" in raw_path or b"%2f" in raw_path):
            decoded = decode_keeping_slashes(raw_path)
            # Only when the raw path is the whole path (no root_path prefix to account for).
            if decoded.replace(SLASH_IN_SEGMENT, "/") == scope["path"]:
                scope = {**scope, "path": decoded}
        await self.app(scope, receive, send)
