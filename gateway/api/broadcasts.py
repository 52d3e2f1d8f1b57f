"""`broadcasts`: list, upsert (V2), rename, archive, start/pause/resume/cancel, recompute the segment,
trigger and execute V1 broadcasts (Dittofeed §6.5).

The same handlers serve every mount of upstream's broadcasts controller; a mount supplies only how a
request is authorised to its target workspace. `routes` is the admin mount (admin API key,
`/api/admin/broadcasts`); `broadcast_routes` builds the others.

On an embedded request `PUT broadcasts/v2` is held to the workspace's Broadcast configuration
(engine.configuration_enforcement: no hidden option set, no email provider or template editor type
outside the allowed ones).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import configuration_enforcement
from engine.broadcasts import lifecycle, resources
from engine.broadcasts.resources import BroadcastUpsert
from engine.broadcasts.v1 import execute_broadcast
from engine.errors import InvalidInput
from engine.resources import UNSET, canonical_uuid
from engine.storage.broadcast_models import Broadcast
from gateway.admin_auth import authorize_target
from gateway.deps import Authorize, in_transaction
from gateway.embedded_auth import embedded_session
from gateway.inputs import read_json, read_query, validate

# A lifecycle call: (session, workspace id, broadcast id) → the broadcast.
Transition = Callable[[Session, str, str], Broadcast]


class _Body(BaseModel):
    # Upstream's TypeBox bodies allow unknown properties; they are ignored.
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str


class UpsertV2Body(_Body):
    id: str | None = None
    name: str | None = Field(default=None, min_length=1)
    segmentId: str | None = None
    messageTemplateId: str | None = None
    subscriptionGroupId: str | None = None
    # Validated by engine.broadcasts.resources, which names fields inside it precisely.
    config: Any = None
    scheduledAt: str | None = None


class RenameBody(_Body):
    id: str
    name: str | None = Field(default=None, min_length=1)


class ArchiveBody(_Body):
    broadcastId: str
    archived: bool = True


class BroadcastIdBody(_Body):
    broadcastId: str


class TriggerBody(_Body):
    id: str


class ExecuteBody(_Body):
    broadcastName: str = Field(min_length=1)
    # Validated by the engine (segment and template definitions), which names fields inside them.
    segmentDefinition: Any
    messageTemplateDefinition: Any
    subscriptionGroupId: str | None = None


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    ids: list[str] = []


class WorkspaceQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str


def broadcast_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The broadcasts handlers under `prefix`, each request authorised by `authorize`."""

    async def list_all(request: Request) -> JSONResponse:
        query = read_query(request, ListQuery, arrays=frozenset({"ids"}))

        def read(session: Session) -> list[dict[str, Any]]:
            workspace = authorize(request, session, None)
            found = resources.list_broadcasts(session, workspace.id, ids=query.ids)
            return [resources.broadcast_resource(session, broadcast) for broadcast in found]

        return JSONResponse(await in_transaction(request, read))

    async def upsert_v2(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(UpsertV2Body, raw)
        if "config" in raw and raw["config"] is None:
            raise InvalidInput("body/config must be an object", field="body/config")
        upsert = BroadcastUpsert(
            id=body.id,
            name=body.name,
            segment_id=body.segmentId if "segmentId" in raw else UNSET,
            message_template_id=body.messageTemplateId if "messageTemplateId" in raw else UNSET,
            subscription_group_id=body.subscriptionGroupId if "subscriptionGroupId" in raw else UNSET,
            config=raw.get("config", UNSET),
            scheduled_at=body.scheduledAt if "scheduledAt" in raw else UNSET,
        )

        def write(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            if embedded_session(request) is not None:
                configuration_enforcement.check_broadcast_write(session, workspace.id, raw)
            broadcast = resources.upsert_broadcast_v2(session, workspace.id, upsert, now=datetime.now(UTC))
            return resources.broadcast_resource(session, broadcast)

        return JSONResponse(await in_transaction(request, write))

    async def rename(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(RenameBody, raw)

        def write(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            broadcast = resources.rename_broadcast(
                session, workspace.id, body.id, body.name, now=datetime.now(UTC)
            )
            return resources.v1_resource(session, broadcast)

        return JSONResponse(await in_transaction(request, write))

    async def archive(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(ArchiveBody, raw)

        def write(session: Session) -> None:
            workspace = authorize(request, session, raw)
            resources.archive_broadcast(
                session, workspace.id, body.broadcastId, body.archived, now=datetime.now(UTC)
            )

        await in_transaction(request, write)
        return JSONResponse({"message": "Broadcast archived" if body.archived else "Broadcast unarchived"})

    def transition(change: Transition, message: str) -> Callable[[Request], Any]:
        async def handle(request: Request) -> JSONResponse:
            raw = await read_json(request)
            body = validate(BroadcastIdBody, raw)

            def write(session: Session) -> None:
                workspace = authorize(request, session, raw)
                change(session, workspace.id, _canonical(body.broadcastId))

            await in_transaction(request, write)
            return JSONResponse({"message": message})

        return handle

    def start(session: Session, workspace_id: str, broadcast_id: str) -> Broadcast:
        return lifecycle.start_broadcast(session, workspace_id, broadcast_id, now=datetime.now(UTC))

    async def recompute_segment(request: Request) -> Response:
        raw = await read_json(request)
        body = validate(BroadcastIdBody, raw)

        def read(session: Session) -> tuple[str, str]:
            workspace = authorize(request, session, raw)
            broadcast = lifecycle.load_broadcast(session, workspace.id, _canonical(body.broadcastId))
            if broadcast.segment_id is None:
                raise InvalidInput("the broadcast has no segment", field="body/broadcastId")
            return workspace.id, broadcast.segment_id

        workspace_id, segment_id = await in_transaction(request, read)
        await run_in_threadpool(request.app.state.compute.compute, workspace_id, {segment_id})
        return Response(status_code=204)

    async def gmail_authorization(request: Request) -> JSONResponse:
        read_query(request, WorkspaceQuery)
        await in_transaction(request, lambda session: authorize(request, session, None))
        # feedgate sends no Gmail: no occupant has ever authorised it.
        return JSONResponse({"authorized": False})

    async def trigger(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(TriggerBody, raw)

        def write(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            broadcast = lifecycle.trigger_v1_broadcast(
                session, workspace.id, _canonical(body.id), now=datetime.now(UTC)
            )
            return resources.v1_resource(session, broadcast)

        return JSONResponse(await in_transaction(request, write))

    async def execute(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(ExecuteBody, raw)

        def write(session: Session) -> str:
            workspace = authorize(request, session, raw)
            return execute_broadcast(
                session,
                workspace.id,
                body.broadcastName,
                raw["segmentDefinition"],
                raw["messageTemplateDefinition"],
                body.subscriptionGroupId,
                now=datetime.now(UTC),
            )

        broadcast_id = await in_transaction(request, write)
        return JSONResponse({"broadcastId": broadcast_id, "broadcastName": body.broadcastName})

    return [
        Route(prefix, list_all, methods=["GET"], name=f"{name}:list"),
        Route(f"{prefix}/", list_all, methods=["GET"], name=f"{name}:list/"),
        Route(prefix, rename, methods=["PUT"], name=f"{name}:rename"),
        Route(f"{prefix}/", rename, methods=["PUT"], name=f"{name}:rename/"),
        Route(f"{prefix}/v2", upsert_v2, methods=["PUT"], name=f"{name}:upsert_v2"),
        Route(f"{prefix}/archive", archive, methods=["PUT"], name=f"{name}:archive"),
        Route(
            f"{prefix}/start", transition(start, "Broadcast started"), methods=["POST"], name=f"{name}:start"
        ),
        Route(
            f"{prefix}/pause",
            transition(lifecycle.pause_broadcast, "Broadcast paused"),
            methods=["POST"],
            name=f"{name}:pause",
        ),
        Route(
            f"{prefix}/resume",
            transition(lifecycle.resume_broadcast, "Broadcast resumed"),
            methods=["POST"],
            name=f"{name}:resume",
        ),
        Route(
            f"{prefix}/cancel",
            transition(lifecycle.cancel_broadcast, "Broadcast cancelled"),
            methods=["POST"],
            name=f"{name}:cancel",
        ),
        Route(
            f"{prefix}/recompute-segment",
            recompute_segment,
            methods=["PUT"],
            name=f"{name}:recompute_segment",
        ),
        Route(
            f"{prefix}/gmail-authorization",
            gmail_authorization,
            methods=["GET"],
            name=f"{name}:gmail_authorization",
        ),
        Route(f"{prefix}/trigger", trigger, methods=["PUT"], name=f"{name}:trigger"),
        Route(f"{prefix}/execute", execute, methods=["POST"], name=f"{name}:execute"),
    ]


routes = broadcast_routes("/api/admin/broadcasts", authorize_target, name="admin:broadcasts")


def _canonical(broadcast_id: str) -> str:
    # Ids are stored lowercase; a client may send any UUID spelling.
    return canonical_uuid(broadcast_id) or broadcast_id
