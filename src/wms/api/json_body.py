"""JSON a route reads itself (imports, the idempotency fingerprint): one parser, one error.

``json.loads`` raises ``ValueError`` for text that is not JSON, but ``RecursionError`` for
arrays or objects nested deeper than the interpreter's recursion limit. Both are the
client's mistake; caught apart, the second escaped as a 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from wms.domain.errors import DomainError


class MalformedJsonError(DomainError):
    """The body claims to be JSON but is not, or nests too deep to be read."""

    slug = "malformed-json"


def parse_json(text: bytes | str, *, parse_float: Callable[[str], Any] | None = None) -> Any:
    """``text`` parsed as JSON; ``MalformedJsonError`` (400) when it is not valid JSON or
    nests deeper than the parser can follow."""
    try:
        return json.loads(text, parse_float=parse_float)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError too
        raise MalformedJsonError("the request body is not valid JSON") from None
