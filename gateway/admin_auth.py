"""Admin API key authentication for `/api/admin/*` and `/api-l/admin/*` (Dittofeed §1.2).

A key opens its own workspace and that workspace's children, never a parent or a sibling. Messages
and statuses are upstream's: 401 `{message}` for a missing, malformed or non-matching key.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request

from engine.audit import Actor
from engine.credentials import find_admin_key
from engine.errors import NotAuthenticated
from engine.storage.models import Workspace, WorkspaceStatus
from engine.workspaces import find_workspace_by_external_id
from gateway.deps import audit_context
from gateway.inputs import resolve_workspace_id
from gateway.request_log import note_workspace


def authenticate_admin(request: Request, session: Session) -> Workspace:
    """Return the Active workspace owning the request's admin API key.

    :raises NotAuthenticated: no header, a malformed one, or a key that matches nothing.
    """
    header = request.headers.get("authorization")
    if header is None:
        raise NotAuthenticated("No authorization header")
    parts = header.split(" ")
    if len(parts) != 2 or parts[0] != "Bearer":
        raise NotAuthenticated("Invalid authorization header")
    if not parts[1]:
        raise NotAuthenticated("API key missing for request")
    found = find_admin_key(session, parts[1])
    if found is None:
        raise NotAuthenticated("API key not valid")
    key, owner = found
    audit_context(request).actor = Actor("AdminApiKey", key.id)
    return owner


def authorize_target(
    request: Request, session: Session, body: Any = None, *, allow_inactive: bool = False
) -> Workspace:
    """Authenticate the key and return the workspace the request targets (workspaceId, else
    externalId, else the key's own), which must be the key's workspace or one of its children.

    :raises NotAuthenticated: the key does not open the target.
    """
    owner = authenticate_admin(request, session)
    workspace_id = resolve_workspace_id(request, body)
    external_id = request.query_params.get("externalId")
    if workspace_id is not None:
        target = session.get(Workspace, workspace_id)
    elif external_id is not None:
        target = find_workspace_by_external_id(session, owner, external_id)
    else:
        target = owner
    if target is None or (target.id != owner.id and target.parent_workspace_id != owner.id):
        raise NotAuthenticated("API key not valid")
    if target.status != WorkspaceStatus.ACTIVE and not allow_inactive:
        raise NotAuthenticated("API key not valid")
    note_workspace(request, target.id)
    return target
