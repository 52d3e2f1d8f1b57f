"""Workspaces: Root, Parent and Child; creation with bootstrap, child upsert, lookup, tombstoning.

Errors keep Dittofeed's typed 400 bodies (`WorkspaceAlreadyExists`, `InvalidDomain`,
`WorkspaceNameViolation`). Tombstoning renames name and externalId with `DfTombstoned-` so both can be
reused, and flips the status, which every credential check reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.bootstrap import bootstrap_workspace
from engine.credentials import default_write_key_header
from engine.errors import InvalidInput, NotFound
from engine.storage.models import Workspace, WorkspaceStatus, WorkspaceType

TOMBSTONE_PREFIX = "DfTombstoned"
_HOSTNAME = re.compile(r"^(?=.{1,255}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")
_PUBLIC_MAIL_LABELS = {
    "gmail",
    "yahoo",
    "hotmail",
    "outlook",
    "aol",
    "icloud",
    "protonmail",
    "zoho",
    "mail",
    "gmx",
    "yandex",
}


class WorkspaceAlreadyExists(InvalidInput):
    def __init__(self) -> None:
        super().__init__("workspace already exists", body={"type": "WorkspaceAlreadyExists"})


class InvalidDomain(InvalidInput):
    def __init__(self) -> None:
        super().__init__("invalid domain", field="domain", body={"type": "InvalidDomain"})


class WorkspaceNameViolation(InvalidInput):
    def __init__(self, message: str) -> None:
        super().__init__(message, field="name", body={"type": "WorkspaceNameViolation", "message": message})


@dataclass(frozen=True)
class WorkspaceResource:
    """Dittofeed's `WorkspaceResourceExtended`."""

    id: str
    name: str
    type: str
    status: str
    write_key: str | None
    external_id: str | None
    domain: str | None

    def to_json(self) -> dict[str, str]:
        body = {"id": self.id, "name": self.name, "type": self.type, "status": self.status}
        for key, value in (
            ("writeKey", self.write_key),
            ("externalId", self.external_id),
            ("domain", self.domain),
        ):
            if value is not None:
                body[key] = value
        return body


def create_workspace(
    session: Session,
    name: str,
    *,
    workspace_type: WorkspaceType = WorkspaceType.ROOT,
    parent: Workspace | None = None,
    external_id: str | None = None,
    domain: str | None = None,
) -> Workspace:
    """Insert a workspace and its default resources.

    :raises WorkspaceAlreadyExists: the name (or externalId) is taken under the same parent.
    :raises InvalidDomain: `domain` is not a hostname of the workspace's own.
    :raises WorkspaceNameViolation: the name is empty or uses the tombstone prefix.
    """
    _check_name(name)
    if domain is not None:
        _check_domain(domain)
    workspace = Workspace(
        name=name,
        type=workspace_type,
        parent_workspace_id=parent.id if parent else None,
        external_id=external_id,
        domain=domain,
    )
    try:
        with session.begin_nested():
            session.add(workspace)
            session.flush()
    except IntegrityError:
        raise WorkspaceAlreadyExists() from None
    bootstrap_workspace(session, workspace)
    return workspace


def upsert_child_workspace(
    session: Session, parent: Workspace, name: str, external_id: str, domain: str | None = None
) -> Workspace:
    """Return the Active child of `parent` with `external_id`, creating it if there is none.

    An existing child is returned only when its name matches; reusing the externalId under another
    name, or a name another child already has, is `WorkspaceAlreadyExists` (the contract's advice).
    """
    if parent.type != WorkspaceType.PARENT or parent.status != WorkspaceStatus.ACTIVE:
        raise InvalidInput("workspaceId must be an Active workspace of type Parent", field="workspaceId")
    existing = session.scalar(
        select(Workspace).where(
            Workspace.parent_workspace_id == parent.id, Workspace.external_id == external_id
        )
    )
    if existing is not None:
        if existing.name != name or existing.status != WorkspaceStatus.ACTIVE:
            raise WorkspaceAlreadyExists()
        if domain is not None and domain != existing.domain:
            _check_domain(domain)
            existing.domain = domain
        return existing
    return create_workspace(
        session,
        name,
        workspace_type=WorkspaceType.CHILD,
        parent=parent,
        external_id=external_id,
        domain=domain,
    )


def get_workspace(session: Session, workspace_id: str) -> Workspace:
    """:raises NotFound: no workspace has that id."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound("workspace not found")
    return workspace


def find_workspace_by_external_id(session: Session, owner: Workspace, external_id: str) -> Workspace | None:
    """The workspace with `external_id` that is `owner` itself or one of its children."""
    return session.scalar(
        select(Workspace)
        .where(Workspace.external_id == external_id)
        .where((Workspace.id == owner.id) | (Workspace.parent_workspace_id == owner.id))
        .order_by(Workspace.parent_workspace_id.is_(None).desc())
    )


def list_children(session: Session, parent_id: str, *, limit: int = 100, offset: int = 0) -> list[Workspace]:
    """Children of a parent, oldest first, tombstoned ones included with their status."""
    return list(
        session.scalars(
            select(Workspace)
            .where(Workspace.parent_workspace_id == parent_id)
            .order_by(Workspace.created_at, Workspace.id)
            .limit(limit)
            .offset(offset)
        )
    )


def event_workspace_ids(session: Session, workspace: Workspace) -> list[str]:
    """The workspaces whose events a read of `workspace` covers: a parent's are its children's."""
    if workspace.type != WorkspaceType.PARENT:
        return [workspace.id]
    return list(session.scalars(select(Workspace.id).where(Workspace.parent_workspace_id == workspace.id)))


def tombstone_workspace(session: Session, workspace: Workspace) -> None:
    """Soft-delete: free the name and externalId and end every credential at once. Idempotent."""
    if workspace.status != WorkspaceStatus.ACTIVE:
        return
    workspace.name = f"{TOMBSTONE_PREFIX}-{workspace.name}"
    if workspace.external_id is not None:
        workspace.external_id = f"{TOMBSTONE_PREFIX}-{workspace.external_id}"
    workspace.status = WorkspaceStatus.TOMBSTONED
    session.flush()


def describe_workspace(session: Session, workspace: Workspace) -> WorkspaceResource:
    return WorkspaceResource(
        id=workspace.id,
        name=workspace.name,
        type=workspace.type.value,
        status=workspace.status.value,
        write_key=default_write_key_header(session, workspace.id),
        external_id=workspace.external_id,
        domain=workspace.domain,
    )


def _check_name(name: str) -> None:
    if not name.strip():
        raise WorkspaceNameViolation("name must not be empty")
    if name.startswith(TOMBSTONE_PREFIX):
        raise WorkspaceNameViolation(f"name must not start with {TOMBSTONE_PREFIX}")


def _check_domain(domain: str) -> None:
    if not _HOSTNAME.match(domain) or any(
        label.lower() in _PUBLIC_MAIL_LABELS for label in domain.split(".")
    ):
        raise InvalidDomain()
