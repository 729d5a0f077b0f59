"""API keys: ``wms_<keyid>_<secret>``, the secret kept only as HMAC-SHA256 with a pepper."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "wms"
_KEY_SHAPE = re.compile(r"^wms_(?P<key_id>[a-z0-9]{8,32})_(?P<secret>[A-Za-z0-9_-]{20,200})$")


@dataclass(frozen=True)
class NewApiKey:
    """A freshly made key: the full token is shown once, only the hash is stored."""

    key_id: str
    token: str
    secret_hash: bytes


def hash_secret(pepper: bytes, secret: str) -> bytes:
    """The stored form of a secret: HMAC-SHA256 keyed by the server's pepper."""
    return hmac.new(pepper, secret.encode(), hashlib.sha256).digest()


def new_api_key(pepper: bytes) -> NewApiKey:
    """Generate a key id (12 hex characters) and a 256-bit secret."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return NewApiKey(
        key_id=key_id,
        token=f"{KEY_PREFIX}_{key_id}_{secret}",
        secret_hash=hash_secret(pepper, secret),
    )


def parse_token(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed token, else None."""
    match = _KEY_SHAPE.match(token)
    if match is None:
        return None
    return match["key_id"], match["secret"]


def secret_matches(pepper: bytes, secret: str, stored_hash: bytes) -> bool:
    """Compare in constant time."""
    return hmac.compare_digest(hash_secret(pepper, secret), stored_hash)
