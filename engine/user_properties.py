"""User properties as resources (Dittofeed §6.3): listing, the upsert with upstream's semantics, status
changes and deletion, in the wire form of `SavedUserPropertyResource`.

`id` and `anonymousId` are protected: every workspace has them and the API can neither create, change,
pause nor delete them. Sending a definition always moves `definitionUpdatedAt`, which the compute loop
reads as "recompute from scratch".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.assignments import forget_computed_property
from engine.definitions import check_storable
from engine.errors import InvalidInput, NotFound
from engine.resource_lookup import NameTaken, find_for_upsert, find_in_workspace, parse_resource_id
from engine.resources import canonical_uuid, epoch_ms
from engine.storage.event_store import EventStore
from engine.storage.models import utcnow
from engine.storage.resource_models import ComputedPropertyStatus, UserProperty

PROTECTED_NAMES = frozenset({"id", "anonymousId"})
# Upstream's type tag for a taken name or a foreign id.
_ALREADY_EXISTS = "UserPropertyAlreadyExists"


class ProtectedUserProperty(InvalidInput):
    def __init__(self) -> None:
        message = "User property name is protected"
        super().__init__(message, field="name", body={"type": "ProtectedUserProperty", "message": message})


class UserPropertyNotFound(InvalidInput):
    """`PATCH user-properties/status` answers a missing property with a typed 400, not a 404."""

    def __init__(self) -> None:
        message = "User property not found"
        super().__init__(message, field="id", body={"type": "NotFound", "message": message})


@dataclass(frozen=True)
class UserPropertyUpsert:
    """A validated `PUT user-properties` body; None means "not sent"."""

    name: str
    id: str | None = None
    definition: dict[str, Any] | None = None
    example_value: str | None = None
    status: ComputedPropertyStatus | None = None


def user_property_resource(prop: UserProperty) -> dict[str, Any]:
    """The user property as Dittofeed's `SavedUserPropertyResource`."""
    resource: dict[str, Any] = {
        "id": prop.id,
        "workspaceId": prop.workspace_id,
        "name": prop.name,
        "definition": prop.definition,
        "status": prop.status.value,
        "createdAt": epoch_ms(prop.created_at),
        "updatedAt": epoch_ms(prop.updated_at),
        "definitionUpdatedAt": epoch_ms(prop.definition_updated_at),
    }
    if prop.example_value is not None:
        resource["exampleValue"] = prop.example_value
    return resource


def list_user_properties(
    session: Session, workspace_id: str, *, ids: Sequence[str] = (), names: Sequence[str] = ()
) -> list[UserProperty]:
    """The workspace's user properties, oldest first; `ids` and `names` narrow it (either matches)."""
    query = select(UserProperty).where(UserProperty.workspace_id == workspace_id)
    if ids or names:
        query = query.where(
            UserProperty.id.in_([canonical_uuid(i) or i for i in ids]) | UserProperty.name.in_(list(names))
        )
    return list(session.scalars(query.order_by(UserProperty.created_at, UserProperty.name)))


def upsert_user_property(
    session: Session, workspace_id: str, upsert: UserPropertyUpsert, *, now: datetime | None = None
) -> UserProperty:
    """With a definition, create or update (by `id` when given, else by name); without one, update the
    existing property's example value and status.

    :raises ResourceIdError: `id` is not a UUID.
    :raises ProtectedUserProperty: the name, or the property `id` names, is protected.
    :raises NameTaken: the name is another property's, or the id another workspace's.
    :raises NotFound: no definition, and no such property to update.
    """
    now = now or utcnow()
    check_storable(upsert.name, "body/name")
    check_storable(upsert.example_value, "body/exampleValue")
    property_id = parse_resource_id(upsert.id, "user property")
    if upsert.name in PROTECTED_NAMES:
        raise ProtectedUserProperty()
    existing = find_for_upsert(
        session, UserProperty, workspace_id, property_id, upsert.name, error_type=_ALREADY_EXISTS
    )
    if existing is not None and existing.name in PROTECTED_NAMES:
        raise ProtectedUserProperty()
    if upsert.definition is None:
        if existing is None:
            raise NotFound("User property not found")
    elif existing is None:
        existing = UserProperty(
            workspace_id=workspace_id,
            name=upsert.name,
            definition=upsert.definition,
            created_at=now,
            updated_at=now,
            definition_updated_at=now,
        )
        if property_id is not None:
            existing.id = property_id
        session.add(existing)
    else:
        # Upstream renames only through an upsert by id (by name, the name is the key).
        existing.name = upsert.name
        existing.definition = upsert.definition
        existing.definition_updated_at = now
    if upsert.example_value is not None:
        existing.example_value = upsert.example_value
    if upsert.status is not None:
        existing.status = upsert.status
    try:
        session.flush()
    except IntegrityError:
        # No savepoint: the error ends the request, and its transaction is rolled back whole.
        raise NameTaken(_ALREADY_EXISTS) from None
    return existing


def set_user_property_status(
    session: Session, workspace_id: str, property_id: str, status: ComputedPropertyStatus
) -> UserProperty:
    """:raises UserPropertyNotFound: no such property. :raises ProtectedUserProperty: it is protected."""
    prop = find_in_workspace(session, UserProperty, workspace_id, property_id)
    if prop is None:
        raise UserPropertyNotFound()
    if prop.name in PROTECTED_NAMES:
        raise ProtectedUserProperty()
    prop.status = status
    session.flush()
    return prop


def delete_user_property(session: Session, store: EventStore, workspace_id: str, property_id: str) -> None:
    """Delete the property and everything computed for it (before the caller commits).

    :raises NotFound: no such property, or a protected one (which upstream reports the same way).
    """
    prop = find_in_workspace(session, UserProperty, workspace_id, property_id)
    if prop is None or prop.name in PROTECTED_NAMES:
        raise NotFound("User property not found")
    session.delete(prop)
    session.flush()
    forget_computed_property(store, workspace_id, prop.id)
