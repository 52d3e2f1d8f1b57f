"""`GET /api-l/admin/audit-log`: a workspace's audit log, for the holder of its admin API key.

The key's workspace is the viewer: it reads its own entries and its children's, newest first, a page
at a time (`nextCursor`). `workspaceId` (or `externalId`) narrows to one of those workspaces, by
`authorize_target`'s rule, so naming a parent or a sibling is refused like on every admin route; a
paused or tombstoned child's log stays readable.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.audit import MAX_PAGE, list_audit_entries
from engine.resources import iso_ms
from engine.storage.gateway_models import AuditEntry
from gateway.admin_auth import authenticate_admin, authorize_target
from gateway.deps import in_transaction
from gateway.inputs import read_query, resolve_workspace_id
from gateway.query_strings import DateText


class AuditLogQuery(BaseModel):
    # Query values are text: lax mode reads `limit=50` as a number.
    model_config = ConfigDict(extra="ignore")

    # workspaceId is read by `resolve_workspace_id` (query or df-workspace-id header).
    externalId: str | None = None
    actorType: Literal["Member", "AdminApiKey", "EmbedOccupant", "Anonymous"] | None = None
    actorId: str | None = None
    action: str | None = None
    resourceType: str | None = None
    resourceId: str | None = None
    since: DateText | None = None
    until: DateText | None = None
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,18}$")
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)


async def read_audit_log(request: Request) -> JSONResponse:
    query = read_query(request, AuditLogQuery)
    # A malformed or conflicting workspaceId is a 400 before the key is looked at.
    narrowed = resolve_workspace_id(request) is not None or query.externalId is not None

    def read(session: Session) -> dict[str, Any]:
        viewer = authenticate_admin(request, session)
        target = authorize_target(request, session, allow_inactive=True) if narrowed else None
        page = list_audit_entries(
            session,
            viewer.id,
            workspace_id=target.id if target is not None else None,
            actor_type=query.actorType,
            actor_id=query.actorId,
            action=query.action,
            resource_type=query.resourceType,
            resource_id=query.resourceId,
            since=query.since,
            until=query.until,
            cursor=query.cursor,
            limit=query.limit,
        )
        return {
            "entries": [audit_entry_resource(entry) for entry in page.entries],
            "nextCursor": page.next_cursor,
        }

    return JSONResponse(await in_transaction(request, read))


def audit_entry_resource(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "workspaceId": entry.workspace_id,
        "actorType": entry.actor_type,
        "actorId": entry.actor_id,
        "action": entry.action,
        "resourceType": entry.resource_type,
        "resourceId": entry.resource_id,
        "before": entry.before,
        "after": entry.after,
        "ip": entry.ip,
        "createdAt": iso_ms(entry.created_at),
    }


routes = [Route("/api-l/admin/audit-log", read_audit_log, methods=["GET"], name="admin:audit_log:list")]
