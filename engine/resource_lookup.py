"""What the upserts and lookups of every authored resource (segments, user properties, message
templates, subscription groups) share: the optional client-chosen id, finding a resource by id or
name inside one workspace, and upstream's typed 400s for both.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.resources import canonical_uuid

UNIQUE_NAMES = "Names must be unique in workspace. Id's must be globally unique."


class ResourceIdError(InvalidInput):
    """A resource `id` that is not a UUID: upstream's typed `IdError`."""

    def __init__(self, noun: str) -> None:
        message = f"Invalid {noun} id, must be a valid v4 UUID"
        super().__init__(message, field="id", body={"type": "IdError", "message": message})


class NameTaken(InvalidInput):
    """A name another resource of the workspace has, or an id of another workspace's resource;
    `error_type` is upstream's type tag for the resource."""

    def __init__(self, error_type: str = "UniqueConstraintViolation", message: str = UNIQUE_NAMES) -> None:
        super().__init__(message, field="name", body={"type": error_type, "message": message})


class WorkspaceResource(Protocol):
    """What the lookups read of an instance. The same names are column attributes on the mapped
    class, which a protocol cannot say: the queries below use the class untyped."""

    id: str
    workspace_id: str
    name: str


Resource = TypeVar("Resource", bound=WorkspaceResource)


def parse_resource_id(value: str | None, noun: str) -> str | None:
    """An upsert's optional `id` in canonical form.

    :raises ResourceIdError: it is not a UUID.
    """
    if value is None:
        return None
    canonical = canonical_uuid(value)
    if canonical is None:
        raise ResourceIdError(noun)
    return canonical


def find_in_workspace(
    session: Session, model: type[Resource], workspace_id: str, resource_id: str
) -> Resource | None:
    """The workspace's resource with that id (in any UUID spelling), or None."""
    canonical = canonical_uuid(resource_id)
    if canonical is None:
        return None
    mapped: Any = model
    found: Resource | None = session.scalar(
        select(mapped).where(mapped.workspace_id == workspace_id, mapped.id == canonical)
    )
    return found


def find_for_upsert(
    session: Session,
    model: type[Resource],
    workspace_id: str,
    resource_id: str | None,
    name: str | None,
    *,
    error_type: str = "UniqueConstraintViolation",
) -> Resource | None:
    """What an upsert updates: the resource with the canonical `resource_id` when one is given, else
    the workspace's resource named `name`; None when there is none yet.

    :raises NameTaken: the id is another workspace's resource.
    """
    if resource_id is not None:
        found = session.get(model, resource_id)
        if found is not None and found.workspace_id != workspace_id:
            raise NameTaken(error_type)
        return found
    if name is None:
        return None
    mapped: Any = model
    named: Resource | None = session.scalar(
        select(mapped).where(mapped.workspace_id == workspace_id, mapped.name == name)
    )
    return named
