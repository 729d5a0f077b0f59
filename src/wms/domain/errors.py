"""Domain errors: what went wrong in the warehouse's terms, never in HTTP's.

Each error names a problem ``slug``; ``wms.api.problems`` maps slugs to HTTP statuses
and titles in one table. Extra attributes (``available``, ``current_status``) travel
to the client as problem extensions.
"""

from __future__ import annotations

from typing import ClassVar


class DomainError(Exception):
    """Base of every error the services raise on purpose."""

    slug: ClassVar[str] = "conflict"

    def __init__(self, detail: str, **extensions: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class NotFoundError(DomainError):
    """The object named in the path does not exist (or belongs to another tenant)."""

    slug = "not-found"


class FieldError(DomainError):
    """One or more request fields are wrong in a way the schema could not tell."""

    slug = "validation-error"

    def __init__(self, field: str, message: str, **extensions: object) -> None:
        super().__init__(message, **extensions)
        self.errors = [(field, message)]


class UnknownReferenceError(FieldError):
    """An object referenced in the body does not exist."""

    slug = "unknown-reference"


class ConflictError(DomainError):
    """The request conflicts with the current state (duplicate code, stale data...)."""

    slug = "conflict"


class InvalidStateError(ConflictError):
    """The object is in a status that does not allow this action."""

    slug = "invalid-state"

    def __init__(self, detail: str, current_status: str) -> None:
        super().__init__(detail, current_status=current_status)


class ImportRejectedError(DomainError):
    """A bulk import had bad rows; nothing was imported."""

    slug = "import-rejected"

    def __init__(self, detail: str, row_errors: list[dict[str, object]]) -> None:
        super().__init__(detail, row_errors=row_errors)
