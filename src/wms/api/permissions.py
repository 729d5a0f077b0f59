"""The route × role matrix (API.md "Auth"), in one table.

``admin`` may do everything; ``supervisor`` all but tenant settings; ``operator`` reads,
receipts, putaway, moves, picks, packing and count results; ``integration`` master data,
ASNs, orders, shipments, reads and events; ``readonly`` GET only. Every GET under
``/api/v1`` is open to all roles; every other route must be listed here (a test walks
the app and fails on a route missing from the table).
"""

from __future__ import annotations

from wms.domain.roles import Role

API_PREFIX = "/api/v1"
EVERY_ROLE = frozenset(Role)
ADMIN_ONLY = frozenset({Role.ADMIN})
MANAGERS = frozenset({Role.ADMIN, Role.SUPERVISOR})
MASTER_DATA = MANAGERS | {Role.INTEGRATION}
FLOOR_WORK = MANAGERS | {Role.OPERATOR}

_WRITES: dict[tuple[str, str], frozenset[Role]] = {
    ("PATCH", "/settings"): ADMIN_ONLY,
    ("POST", "/warehouses"): MASTER_DATA,
    ("PATCH", "/warehouses/{code}"): MASTER_DATA,
    ("PUT", "/warehouses/{code}/carrier-cutoffs"): MASTER_DATA,
    ("POST", "/warehouses/{wh}/zones"): MASTER_DATA,
    ("POST", "/warehouses/{wh}/locations"): MASTER_DATA,
    ("PATCH", "/warehouses/{wh}/locations/{code}"): MASTER_DATA,
    ("POST", "/warehouses/{wh}/locations:import"): MASTER_DATA,
    ("PUT", "/warehouses/{wh}/putaway-rules"): MASTER_DATA,
    ("PUT", "/warehouses/{wh}/locations/{code}/replenishment"): MASTER_DATA,
    ("POST", "/products"): MASTER_DATA,
    ("PATCH", "/products/{sku}"): MASTER_DATA,
    ("POST", "/products:import"): MASTER_DATA,
    ("POST", "/inventory/adjustments"): MANAGERS,
    ("POST", "/inventory/moves"): FLOOR_WORK,
    ("POST", "/inventory/status-changes"): MANAGERS,
    ("POST", "/cycle-counts"): MANAGERS,
    ("POST", "/cycle-counts/{id}/results"): FLOOR_WORK,
    ("POST", "/cycle-counts/{id}/approve"): MANAGERS,
    ("POST", "/cycle-counts/{id}/cancel"): MANAGERS,
    ("POST", "/asns"): MASTER_DATA,
    ("POST", "/asns/{id}/receipts"): FLOOR_WORK,
    ("POST", "/asns/{id}/close"): MASTER_DATA,
    ("POST", "/putaway-tasks/{id}/confirm"): FLOOR_WORK,
    ("POST", "/putaway-tasks:confirm"): FLOOR_WORK,
    ("POST", "/putaway-tasks/{id}/cancel"): MANAGERS,
    ("POST", "/orders"): MASTER_DATA,
    ("POST", "/orders/{number}/allocate"): MASTER_DATA,
    ("POST", "/orders/{number}/cancel"): MASTER_DATA,
    ("POST", "/waves"): MANAGERS,
    ("POST", "/waves/{id}/release"): MANAGERS,
    ("POST", "/pick-tasks/{id}/confirm"): FLOOR_WORK,
    ("POST", "/pick-tasks:confirm"): FLOOR_WORK,
    ("POST", "/orders/{number}/packages"): FLOOR_WORK,
    ("POST", "/shipments"): MASTER_DATA,
    ("POST", "/shipments/{id}/dispatch"): MASTER_DATA,
    ("POST", "/shipments/{id}/cancel"): MASTER_DATA,
    ("POST", "/replenishment-tasks/{id}/confirm"): FLOOR_WORK,
    ("POST", "/replenishment-tasks/{id}/cancel"): MANAGERS,
}
ROUTE_ROLES: dict[tuple[str, str], frozenset[Role]] = {
    (method, API_PREFIX + path): roles for (method, path), roles in _WRITES.items()
}


class UnlistedRouteError(LookupError):
    """A state-changing route is missing from the matrix (a programming error)."""


def allowed_roles(method: str, path_template: str) -> frozenset[Role]:
    """Roles allowed on a route; GET and HEAD are open to every role."""
    if method in {"GET", "HEAD"}:
        return EVERY_ROLE
    try:
        return ROUTE_ROLES[(method, path_template)]
    except KeyError:
        raise UnlistedRouteError(f"{method} {path_template} is not in the role matrix") from None


def roles_text(method: str, path_template: str) -> str:
    """The roles line added to each operation's OpenAPI description."""
    roles = allowed_roles(method, path_template)
    names = ", ".join(f"`{role}`" for role in Role if role in roles)
    return f"**Roles:** {names}."
