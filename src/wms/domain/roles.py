"""The roles an API credential may hold (API.md "Auth")."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a credential may do; the route × role matrix is in ``wms.api.permissions``."""

    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    OPERATOR = "operator"
    INTEGRATION = "integration"
    READONLY = "readonly"
