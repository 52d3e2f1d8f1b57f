"""Embedded sessions for a parent's backend: `POST /api-l/sessions` mints a token, `DELETE` revokes
every session of a workspace, and `/api-l/admin/embed-settings` holds the origins allowed to frame it.

Minting takes the admin API key of the workspace or of its parent. A write key is public (it ships in
browsers), so it is refused with a message that names the right key, unless
FEEDGATE_ALLOW_WRITE_KEY_SESSIONS restores Dittofeed's documented example.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.audit import Actor, record_action
from engine.credentials import authenticate_write_key
from engine.embed_settings import read_embed_settings, revoke_sessions, set_allowed_origins
from engine.errors import InvalidInput, NotAuthenticated
from engine.storage.models import Workspace, WorkspaceType
from gateway.admin_auth import authorize_target
from gateway.deps import audit_context, in_transaction
from gateway.embed_policy import Component, normalize_origin
from gateway.embedded_auth import DEFAULT_TTL_SECONDS, mint_token
from gateway.inputs import read_json, read_query, validate

_ADMIN_KEY = re.compile(r"[0-9a-f]{64}")
WRITE_KEY_REFUSED = (
    "A write key cannot mint sessions: it is public. Authenticate with the admin API key of the "
    "workspace or of its parent (Authorization: Bearer <admin API key>)."
)


class SessionBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str
    memberId: str | None = None
    occupantId: str | None = Field(None, min_length=1, max_length=256)
    ttlSeconds: int | None = Field(None, ge=60)
    components: list[Component] | None = Field(None, min_length=1)
    resourceIds: list[str] | None = Field(None, max_length=1000)
    allowedOrigins: list[str] | None = Field(None, max_length=100)


class WorkspaceQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str | None = None


class EmbedSettingsBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str
    allowedOrigins: list[str] | None


async def create_session(request: Request) -> JSONResponse:
    raw = await read_json(request)
    body = validate(SessionBody, raw)
    settings = request.app.state.settings
    ttl = body.ttlSeconds or DEFAULT_TTL_SECONDS
    if ttl > settings.session_ttl_max_seconds:
        raise InvalidInput(
            f"body/ttlSeconds must be at most {settings.session_ttl_max_seconds}", field="body/ttlSeconds"
        )
    origins = _normalized_origins(body.allowedOrigins, "body/allowedOrigins")

    def mint(session: Session) -> str:
        workspace, key_id = _authorize_minting(request, session, raw)
        if workspace.type == WorkspaceType.PARENT:
            raise InvalidInput(
                "body/workspaceId names a parent workspace; sessions open a child or root workspace",
                field="body/workspaceId",
            )
        configured = read_embed_settings(session, workspace).allowed_origins
        for index, origin in enumerate(origins or ()):
            if configured and origin not in configured:
                raise InvalidInput(
                    f"body/allowedOrigins/{index} {origin} is not among the workspace's allowed origins",
                    field=f"body/allowedOrigins/{index}",
                )
        occupant_id = body.occupantId or body.memberId
        record_action(
            session,
            workspace_id=workspace.id,
            resource_type="EmbedSession",
            resource_id=occupant_id,
            after={
                "occupantId": occupant_id,
                "ttlSeconds": ttl,
                "components": body.components,
                "resourceIds": body.resourceIds,
                "allowedOrigins": origins,
            },
        )
        return mint_token(
            request.app.state.signer,
            workspace_id=workspace.id,
            ttl_seconds=ttl,
            key_id=key_id,
            occupant_id=occupant_id,
            components=body.components,
            resource_ids=body.resourceIds,
            allowed_origins=origins,
        )

    return JSONResponse({"token": await in_transaction(request, mint)})


async def revoke_workspace_sessions(request: Request) -> Response:
    read_query(request, WorkspaceQuery)
    raw = await read_json(request) if await request.body() else None
    await in_transaction(
        request, lambda session: revoke_sessions(session, authorize_target(request, session, raw).id)
    )
    return Response(status_code=204)


async def get_embed_settings(request: Request) -> JSONResponse:
    read_query(request, WorkspaceQuery)
    return JSONResponse(
        await in_transaction(request, lambda session: _describe(session, authorize_target(request, session)))
    )


async def put_embed_settings(request: Request) -> JSONResponse:
    raw = await read_json(request)
    body = validate(EmbedSettingsBody, raw)
    origins = _normalized_origins(body.allowedOrigins, "body/allowedOrigins")

    def write(session: Session) -> dict[str, Any]:
        workspace = authorize_target(request, session, raw)
        set_allowed_origins(session, workspace.id, origins)
        session.flush()
        return _describe(session, workspace)

    return JSONResponse(await in_transaction(request, write))


def _describe(session: Session, workspace: Workspace) -> dict[str, Any]:
    effective = read_embed_settings(session, workspace)
    revoked = effective.sessions_not_before
    return {
        "workspaceId": workspace.id,
        "allowedOrigins": list(effective.allowed_origins),
        "sessionsNotBefore": revoked.isoformat() if revoked is not None else None,
    }


def _authorize_minting(request: Request, session: Session, raw: Any) -> tuple[Workspace, str | None]:
    """The target workspace and the id of the admin key that opens it (None for a write key)."""
    header = request.headers.get("authorization", "")
    _, _, credential = header.partition(" ")
    if _ADMIN_KEY.fullmatch(credential) or not header:
        workspace = authorize_target(request, session, raw)
        actor = audit_context(request).actor
        return workspace, actor.id if actor is not None else None
    try:
        write_key_workspace = authenticate_write_key(session, header)
    except NotAuthenticated:
        raise NotAuthenticated("API key not valid") from None
    if not request.app.state.settings.allow_write_key_sessions:
        raise NotAuthenticated(WRITE_KEY_REFUSED)
    if write_key_workspace != raw.get("workspaceId"):
        raise NotAuthenticated("API key not valid")
    target = session.get(Workspace, write_key_workspace)
    assert target is not None
    audit_context(request).actor = Actor("WriteKey", None)
    return target, None


def _normalized_origins(values: list[str] | None, field: str) -> list[str] | None:
    if values is None:
        return None
    origins = []
    for index, value in enumerate(values):
        origin = normalize_origin(value)
        if origin is None:
            raise InvalidInput(
                f"{field}/{index} must be an origin such as https://app.example.com (no path)",
                field=f"{field}/{index}",
            )
        origins.append(origin)
    return origins


routes = [
    Route("/api-l/sessions", create_session, methods=["POST"], name="sessions:create"),
    Route("/api-l/sessions/", create_session, methods=["POST"], name="sessions:create/"),
    Route("/api-l/sessions", revoke_workspace_sessions, methods=["DELETE"], name="sessions:revoke"),
    Route("/api-l/sessions/", revoke_workspace_sessions, methods=["DELETE"], name="sessions:revoke/"),
    Route("/api-l/admin/embed-settings", get_embed_settings, methods=["GET"], name="embed_settings:get"),
    Route("/api-l/admin/embed-settings", put_embed_settings, methods=["PUT"], name="embed_settings:put"),
]
