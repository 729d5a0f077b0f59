"""The database roles of DESIGN §4, created by ``migrate`` where the login may do so.

- ``wms_owner`` owns the schema; migrations run as it (``SET ROLE``).
- ``wms_app`` is the runtime role: no ownership, no BYPASSRLS; each transaction of the
  server runs ``SET LOCAL ROLE wms_app``, so one login serves both.
- ``wms_admin`` has BYPASSRLS for cross-tenant operations (backup, archival, keys).

All three are NOLOGIN group roles; the configured login is made a member of each.
Where the login may not create roles (a managed database without CREATEROLE), an
operator runs ``docs/database-roles.sql`` once and ``migrate`` checks the result.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

OWNER = "wms_owner"
APP = "wms_app"
ADMIN = "wms_admin"
SCHEMA = "wms"

_ROLE_OPTIONS = {
    OWNER: "NOLOGIN NOSUPERUSER NOBYPASSRLS",
    APP: "NOLOGIN NOSUPERUSER NOBYPASSRLS",
    ADMIN: "NOLOGIN NOSUPERUSER BYPASSRLS",
}


class RoleSetupError(RuntimeError):
    """The roles or schema are missing and this login may not create them."""


def ensure_roles(conn: psycopg.Connection) -> None:
    """Create the roles and schema if missing, and make the login a member of each role."""
    login = str(_scalar(conn, "SELECT session_user"))
    for role, options in _ROLE_OPTIONS.items():
        if not _role_exists(conn, role):
            _create_role(conn, role, options)
        if not _scalar(conn, "SELECT pg_has_role(session_user, %s, 'MEMBER')", (role,)):
            try:
                conn.execute(
                    sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(login))
                )
            except psycopg.errors.InsufficientPrivilege:
                raise RoleSetupError(
                    f"login {login!r} is not a member of role {role!r} and may not grant it; "
                    f"run docs/database-roles.sql as an administrator"
                ) from None
    if not _scalar(conn, "SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,)):
        try:
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                    sql.Identifier(SCHEMA), sql.Identifier(OWNER)
                )
            )
        except psycopg.errors.UniqueViolation:
            pass  # another database's migrate raced us; the schema is there now
        except psycopg.errors.InsufficientPrivilege:
            raise RoleSetupError(
                f"schema {SCHEMA!r} is missing and login {login!r} may not create it; "
                f"run docs/database-roles.sql as an administrator"
            ) from None
    conn.execute(
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}").format(
            sql.Identifier(SCHEMA), sql.Identifier(APP), sql.Identifier(ADMIN)
        )
    )


def _scalar(conn: psycopg.Connection, query: str, params: tuple[object, ...] = ()) -> object:
    row = conn.execute(query.encode(), params).fetchone()
    return row[0] if row else None


def _role_exists(conn: psycopg.Connection, role: str) -> bool:
    return bool(_scalar(conn, "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)))


def _create_role(conn: psycopg.Connection, role: str, options: str) -> None:
    try:
        # Roles are cluster-wide: two databases migrating at once may both try.
        conn.execute(sql.SQL("CREATE ROLE {} " + options).format(sql.Identifier(role)))
    except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
        pass
    except psycopg.errors.InsufficientPrivilege:
        raise RoleSetupError(
            f"role {role!r} is missing and this login may not create it "
            f"(it needs CREATEROLE; BYPASSRLS needs a superuser); "
            f"run docs/database-roles.sql as an administrator"
        ) from None
