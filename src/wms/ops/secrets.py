"""Server-side secrets: the API-key pepper (also the root of the cursor-signing key)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from wms.config import ConfigError, Settings

PEPPER_FILE = "api-key-pepper"
_REQUIRED_IN = {"staging", "production"}


def api_key_pepper(settings: Settings) -> bytes:
    """``WMS_API_KEY_PEPPER``; outside staging/production a generated one in ``WMS_DATA_DIR``.

    Every replica and the CLI must share the pepper, or keys made by one are unknown to
    the others: production takes it from the environment (a Kubernetes Secret).
    """
    if settings.api_key_pepper is not None:
        return settings.api_key_pepper.get_secret_value().encode()
    if settings.environment in _REQUIRED_IN:
        raise ConfigError(f"WMS_API_KEY_PEPPER must be set in {settings.environment}")
    path = settings.data_dir / "secrets" / PEPPER_FILE
    if not path.exists():
        _create_secret_file(path)
    return path.read_bytes().strip()


def _create_secret_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it first
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
