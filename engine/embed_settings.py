"""A workspace's embed settings: the origins allowed to frame its screens, and session revocation.

A child without its own allowed origins uses its parent's. Revoking sets `sessions_not_before`; a
session issued before it (in this workspace or, for a child, in its parent) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from engine.storage.gateway_models import EmbedSettings
from engine.storage.models import AdminApiKey, Workspace, WorkspaceStatus, utcnow


@dataclass(frozen=True)
class EffectiveEmbedSettings:
    allowed_origins: tuple[str, ...]
    # The latest revocation that applies to the workspace's sessions.
    sessions_not_before: datetime | None


def read_embed_settings(session: Session, workspace: Workspace) -> EffectiveEmbedSettings:
    standing = read_session_standing(session, workspace.id, None)
    assert standing is not None  # `workspace` is a loaded row
    return standing.settings


def set_allowed_origins(session: Session, workspace_id: str, origins: list[str] | None) -> None:
    """Store the workspace's own allowed origins; None means "use the parent's"."""
    _own(session, workspace_id).allowed_origins = origins


def revoke_sessions(session: Session, workspace_id: str) -> datetime:
    """End every embedded session of the workspace (and, for a parent, of its children) issued so far."""
    now = utcnow()
    _own(session, workspace_id).sessions_not_before = now
    return now


def _own(session: Session, workspace_id: str) -> EmbedSettings:
    settings = session.get(EmbedSettings, workspace_id)
    if settings is None:
        settings = EmbedSettings(workspace_id=workspace_id)
        session.add(settings)
    return settings


@dataclass(frozen=True)
class SessionStanding:
    """Everything an embedded session's validity depends on, read in one query."""

    workspace: Workspace
    # False when the minting admin API key was deleted or its workspace is no longer Active.
    key_works: bool
    settings: EffectiveEmbedSettings


def read_session_standing(session: Session, workspace_id: str, key_id: str | None) -> SessionStanding | None:
    """The workspace, its embed settings (own, else the parent's) and the minting key's state, or None
    when the workspace does not exist. One round trip: this runs on every embedded request."""
    own = aliased(EmbedSettings)
    inherited = aliased(EmbedSettings)
    minter = aliased(Workspace)
    row = session.execute(
        select(
            Workspace,
            own.allowed_origins,
            own.sessions_not_before,
            inherited.allowed_origins,
            inherited.sessions_not_before,
            minter.status,
        )
        .outerjoin(own, own.workspace_id == Workspace.id)
        .outerjoin(inherited, inherited.workspace_id == Workspace.parent_workspace_id)
        .outerjoin(AdminApiKey, AdminApiKey.id == key_id)
        .outerjoin(minter, minter.id == AdminApiKey.workspace_id)
        .where(Workspace.id == workspace_id)
    ).one_or_none()
    if row is None:
        return None
    workspace, own_origins, own_revoked, parent_origins, parent_revoked, minter_status = row
    origins = own_origins if own_origins is not None else parent_origins
    revocations = [moment for moment in (own_revoked, parent_revoked) if moment is not None]
    return SessionStanding(
        workspace=workspace,
        key_works=key_id is None or minter_status == WorkspaceStatus.ACTIVE,
        settings=EffectiveEmbedSettings(tuple(origins or ()), max(revocations) if revocations else None),
    )
