"""The one error tree of feedgate; gateway/errors.py maps each class to an HTTP status, once.

EngineError
 ├── InvalidInput        the client sent something malformed; names the field
 ├── NotAuthenticated    no credential, or one that matches nothing
 ├── PermissionDenied    a valid credential that may not do this
 ├── NotFound
 ├── Conflict            the request clashes with stored state
 ├── PayloadTooLarge
 └── Unavailable         a store is unreachable; nothing was acknowledged
"""

from __future__ import annotations

from typing import Any


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    def __init__(self, message: str, *, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Dittofeed answers some errors with a typed body ({"type": "WorkspaceAlreadyExists"});
        # the body keeps that wire shape, and defaults to {"message": ...}.
        self.body = body if body is not None else {"message": message}


class InvalidInput(EngineError):
    """The request is malformed. `field` names the offending field, e.g. ``body.batch[3].event``."""

    def __init__(self, message: str, *, field: str | None = None, body: dict[str, Any] | None = None) -> None:
        super().__init__(message, body=body)
        self.field = field


class NotAuthenticated(EngineError):
    """No credential, or one that matches nothing."""


class PermissionDenied(EngineError):
    """A valid credential that may not do this."""


class NotFound(EngineError):
    """The named resource does not exist in this workspace."""


class Conflict(EngineError):
    """The request clashes with stored state."""


class PayloadTooLarge(EngineError):
    """The request body is over the configured limit."""


class Unavailable(EngineError):
    """A store is unreachable; nothing was acknowledged."""
