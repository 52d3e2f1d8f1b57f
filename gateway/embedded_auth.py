"""Embedded sessions: minting the token `POST /api-l/sessions` returns, and authorising
`/api-l/embedded/*` requests with it.

The token is opaque to clients and signed by `gateway.tokens`. Every request re-checks what could
have changed since it was minted: the workspace is still Active, the admin API key that minted it
still exists, and no revocation happened after it was issued. A token rides only in the
`Authorization: Bearer` header of API calls, never in a cookie.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request

from engine.audit import Actor
from engine.embed_settings import read_session_standing
from engine.errors import NotAuthenticated, PermissionDenied
from engine.storage.models import Workspace, WorkspaceStatus
from gateway.deps import Authorize, audit_context
from gateway.embed_policy import (
    access_needed,
    check_embedded_origin,
    check_resource_ids,
    check_scope,
)
from gateway.inputs import resolve_workspace_id
from gateway.tokens import ExpiredToken, Purpose, TokenSigner

DEFAULT_TTL_SECONDS = 3600


@dataclass(frozen=True)
class EmbeddedSession:
    """What a verified token grants: one workspace, optionally narrowed to components and resources."""

    workspace_id: str
    occupant_id: str | None
    components: frozenset[str] | None
    resource_ids: frozenset[str] | None
    # Origins that may frame the screens and call the API: the session's, else the workspace's.
    frame_origins: tuple[str, ...]
    expires_at: datetime


def mint_token(
    signer: TokenSigner,
    *,
    workspace_id: str,
    ttl_seconds: int,
    key_id: str | None,
    occupant_id: str | None = None,
    components: Sequence[str] | None = None,
    resource_ids: Sequence[str] | None = None,
    allowed_origins: Sequence[str] | None = None,
) -> str:
    issued_ms = int(time.time() * 1000)
    payload = {
        "ws": workspace_id,
        "occ": occupant_id,
        "cmp": sorted(set(components)) if components is not None else None,
        "res": sorted(set(resource_ids)) if resource_ids is not None else None,
        "orig": sorted(set(allowed_origins)) if allowed_origins else None,
        "kid": key_id,
        "iat": issued_ms,
        "exp": issued_ms + ttl_seconds * 1000,
    }
    return signer.sign(Purpose.EMBEDDED_SESSION, payload)


def verify_token(
    session: Session, signer: TokenSigner, token: str, *, max_ttl_seconds: int
) -> EmbeddedSession:
    """Return the session `token` grants.

    :raises NotAuthenticated: tampered, expired, revoked, or its workspace or key is gone.
    """
    payload, _ = signer.load(Purpose.EMBEDDED_SESSION, token, max_age=max_ttl_seconds + 60)
    try:
        workspace_id = str(payload["ws"])
        issued_ms = int(payload["iat"])
        expires_ms = int(payload["exp"])
    except (KeyError, TypeError, ValueError):
        raise NotAuthenticated("Session token is invalid") from None
    if expires_ms <= time.time() * 1000:
        raise ExpiredToken("Session token expired")
    key_id = payload.get("kid")
    standing = read_session_standing(session, workspace_id, key_id if isinstance(key_id, str) else None)
    if standing is None or standing.workspace.status != WorkspaceStatus.ACTIVE:
        raise NotAuthenticated("Session token's workspace is not active")
    if not standing.key_works:
        raise NotAuthenticated("Session token revoked: the admin API key that minted it no longer works")
    settings = standing.settings
    if (
        settings.sessions_not_before is not None
        and issued_ms < settings.sessions_not_before.timestamp() * 1000
    ):
        raise NotAuthenticated("Session token revoked")
    workspace = standing.workspace
    components = payload.get("cmp")
    resource_ids = payload.get("res")
    return EmbeddedSession(
        workspace_id=workspace.id,
        occupant_id=payload.get("occ"),
        components=frozenset(components) if components is not None else None,
        resource_ids=frozenset(resource_ids) if resource_ids is not None else None,
        frame_origins=tuple(payload.get("orig") or settings.allowed_origins),
        expires_at=datetime.fromtimestamp(expires_ms / 1000, UTC),
    )


def authenticate_embedded(request: Request, session: Session) -> EmbeddedSession:
    """Verify the request's bearer token (once per request) and keep the session on `request.state`.

    :raises NotAuthenticated: no bearer token, or one that does not verify.
    """
    header = request.headers.get("authorization")
    if header is None:
        raise NotAuthenticated("No authorization header: send Authorization: Bearer <session token>")
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token:
        raise NotAuthenticated("Invalid authorization header: send Authorization: Bearer <session token>")
    return open_embedded_session(request, session, token)


def open_embedded_session(request: Request, session: Session, token: str) -> EmbeddedSession:
    """Verify `token` and make it this request's credential: kept on `request.state` (for the
    frame-ancestors header and the handlers) and named as the audit actor."""
    settings = request.app.state.settings
    embedded = verify_token(
        session, request.app.state.signer, token, max_ttl_seconds=settings.session_ttl_max_seconds
    )
    request.state.embedded = embedded
    audit_context(request).actor = Actor("EmbedOccupant", embedded.occupant_id)
    return embedded


def embedded_session(request: Request) -> EmbeddedSession | None:
    """The embedded session that authorised this request, or None for any other credential."""
    embedded: EmbeddedSession | None = getattr(request.state, "embedded", None)
    return embedded


def embedded_access(group: str) -> Authorize:
    """The authoriser of `/api-l/embedded/<group>/*`: token, origin, scope, workspace, resources."""
    prefix = f"/api-l/embedded/{group}"

    def authorize(request: Request, session: Session, body: Any = None) -> Workspace:
        embedded = authenticate_embedded(request, session)
        check_embedded_origin(request, request.app.state.settings.dashboard_url, embedded.frame_origins)
        below = request.scope["path"].removeprefix(prefix).strip("/")
        check_scope(embedded.components, group, access_needed(request.method, f"{group}/{below}".strip("/")))
        workspace_id = resolve_workspace_id(request, body)
        if workspace_id is not None and workspace_id != embedded.workspace_id:
            raise PermissionDenied("workspaceId does not match the session's workspace")
        check_resource_ids(embedded.resource_ids, request.query_params, body)
        workspace = session.get(Workspace, embedded.workspace_id)
        assert workspace is not None  # verify_token loaded it in this transaction
        return workspace

    return authorize
