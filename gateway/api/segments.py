"""`segments`: list, upsert, status, delete, manual-segment updates and CSV files (Dittofeed §6.2).

The same handlers serve every mount of Dittofeed's segments controller; a mount supplies only how a
request is authorised to its target workspace. `routes` is the admin mount (admin API key,
`/api/admin/segments`); `segment_routes` builds the others (`/api/segments`, `/api-l/embedded/segments`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import manual_segments, segment_files, segments
from engine.audit import record_action
from engine.definitions import validate_segment_definition
from engine.errors import InvalidInput
from engine.resources import iso_ms
from engine.storage.resource_models import ComputedPropertyStatus, ResourceType
from gateway.admin_auth import authorize_target
from gateway.api.attachments import csv_attachment
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_json, read_query, read_uploaded_file, validate

Status = Literal["NotStarted", "Running", "Paused"]
# Values of `df-manual-segment-append` that mean "append" rather than "replace".
APPEND_VALUES = frozenset({"1", "true", "yes", "append"})


class _Body(BaseModel):
    # Upstream's TypeBox bodies allow unknown properties; they are ignored.
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str


class UpsertSegmentBody(_Body):
    name: str
    id: str | None = None
    # Validated by engine.definitions, which names fields inside it precisely.
    definition: Any = None
    subscriptionGroupId: str | None = None
    resourceType: Literal["Declarative", "Internal"] | None = None
    status: Status | None = None
    createOnly: bool = False


class SegmentStatusBody(_Body):
    id: str
    status: Status


class SegmentIdBody(_Body):
    id: str


class ManualUpdateBody(_Body):
    segmentId: str
    userIds: list[str] = Field(default_factory=list)
    append: bool = False
    # Accepted for compatibility: the events are always durable before the answer, and the compute
    # loop picks the new membership up on its next period.
    sync: bool = False


class ManualClearBody(_Body):
    segmentId: str


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    ids: list[str] = []
    resourceType: Literal["Declarative", "Internal"] | None = None


class WorkspaceQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str


class SegmentQuery(WorkspaceQuery):
    segmentId: str


class DeleteQuery(WorkspaceQuery):
    id: str


def segment_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The segments handlers under `prefix`, each request authorised by `authorize`."""

    async def list_all(request: Request) -> JSONResponse:
        query = read_query(request, ListQuery, arrays=frozenset({"ids"}))
        kind = ResourceType(query.resourceType) if query.resourceType else None

        def read(session: Session) -> list[dict[str, Any]]:
            workspace = authorize(request, session, None)
            found = segments.list_segments(session, workspace.id, ids=query.ids, resource_type=kind)
            return [segments.segment_resource(segment) for segment in found]

        return JSONResponse({"segments": await in_transaction(request, read)})

    async def upsert(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(UpsertSegmentBody, raw)
        definition = None
        if body.definition is not None:
            definition = validate_segment_definition(raw["definition"])
        upsert = segments.SegmentUpsert(
            name=body.name,
            id=body.id,
            definition=definition,
            subscription_group_id=body.subscriptionGroupId,
            resource_type=ResourceType(body.resourceType) if body.resourceType else None,
            status=ComputedPropertyStatus(body.status) if body.status else None,
            create_only=body.createOnly,
        )

        def write(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            return segments.segment_resource(segments.upsert_segment(session, workspace.id, upsert))

        return JSONResponse(await in_transaction(request, write))

    async def set_status(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(SegmentStatusBody, raw)

        def write(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            status = ComputedPropertyStatus(body.status)
            return segments.segment_resource(
                segments.set_segment_status(session, workspace.id, body.id, status)
            )

        return JSONResponse(await in_transaction(request, write))

    async def delete(request: Request) -> Response:
        raw = await read_json(request)
        return await _delete(request, validate(SegmentIdBody, raw).id, raw)

    async def delete_by_query(request: Request) -> Response:
        return await _delete(request, read_query(request, DeleteQuery).id, None)

    async def _delete(request: Request, segment_id: str, raw: Any) -> Response:
        def remove(session: Session) -> None:
            workspace = authorize(request, session, raw)
            segments.delete_segment(session, request.app.state.event_store, workspace.id, segment_id)

        await in_transaction(request, remove)
        return Response(status_code=204)

    async def manual_update(request: Request) -> Response:
        raw = await read_json(request)
        body = validate(ManualUpdateBody, raw)
        for index, user_id in enumerate(body.userIds):
            if not user_id:
                raise InvalidInput(f"body/userIds/{index} must not be empty", field=f"body/userIds/{index}")

        def write(session: Session) -> str:
            workspace = authorize(request, session, raw)
            manual_segments.update_manual_segment(
                session,
                request.app.state.event_writer.accept,
                workspace.id,
                body.segmentId,
                body.userIds,
                append=body.append,
            )
            after = {"userIds": body.userIds, "append": body.append}
            record_action(
                session,
                workspace_id=workspace.id,
                resource_type="Segment",
                resource_id=body.segmentId,
                after=after,
            )
            return workspace.id

        await _recompute(request, await in_transaction(request, write), body.segmentId)
        return Response(status_code=200)

    async def manual_clear(request: Request) -> Response:
        raw = await read_json(request)
        body = validate(ManualClearBody, raw)

        def write(session: Session) -> str:
            workspace = authorize(request, session, raw)
            writer = request.app.state.event_writer.accept
            manual_segments.clear_manual_segment(session, writer, workspace.id, body.segmentId)
            record_action(
                session, workspace_id=workspace.id, resource_type="Segment", resource_id=body.segmentId
            )
            return workspace.id

        await _recompute(request, await in_transaction(request, write), body.segmentId)
        return Response(status_code=200)

    async def manual_status(request: Request) -> JSONResponse:
        query = read_query(request, SegmentQuery)

        def read(session: Session) -> datetime | None:
            workspace = authorize(request, session, None)
            return manual_segments.last_computed_at(
                session, request.app.state.event_store, workspace.id, query.segmentId
            )

        computed = await in_transaction(request, read)
        return JSONResponse({"lastComputedAt": iso_ms(computed) if computed else None})

    async def upload_csv(request: Request) -> Response:
        segment_id = request.headers.get("df-segment-id")
        if not segment_id:
            raise InvalidInput("headers must have required property 'df-segment-id'", field="df-segment-id")
        append = request.headers.get("df-manual-segment-append", "").lower() in APPEND_VALUES
        data = await read_uploaded_file(request)
        # Refused after the segment is checked, as upstream orders its answers.
        problem: segment_files.CsvUploadError | None = None
        users: list[segment_files.UploadedUser] = []
        try:
            users = segment_files.parse_users_csv(data)
        except segment_files.CsvUploadError as error:
            problem = error

        def write(session: Session) -> str:
            workspace = authorize(request, session, None)
            manual_segments.find_manual_segment(session, workspace.id, segment_id)
            if problem is not None:
                raise problem
            now = datetime.now(UTC)
            identified = manual_segments.identify_rows(workspace.id, [(u.id, u.traits) for u in users], now)
            manual_segments.update_manual_segment(
                session,
                request.app.state.event_writer.accept,
                workspace.id,
                segment_id,
                [user.id for user in users],
                append=append,
                now=now,
                extra_rows=identified,
            )
            return workspace.id

        await _recompute(request, await in_transaction(request, write), segment_id)
        return Response(status_code=200)

    async def download(request: Request) -> Response:
        read_query(request, WorkspaceQuery)

        def read(session: Session) -> str:
            workspace = authorize(request, session, None)
            return segment_files.segment_assignments_csv(session, request.app.state.event_store, workspace.id)

        content = await in_transaction(request, read)
        file_name = segment_files.download_file_name(datetime.now(UTC))
        return csv_attachment(content, file_name)

    return [
        Route(prefix, list_all, methods=["GET"], name=f"{name}:list"),
        Route(f"{prefix}/", list_all, methods=["GET"], name=f"{name}:list/"),
        Route(prefix, upsert, methods=["PUT"], name=f"{name}:upsert"),
        Route(f"{prefix}/", upsert, methods=["PUT"], name=f"{name}:upsert/"),
        Route(prefix, delete, methods=["DELETE"], name=f"{name}:delete"),
        Route(f"{prefix}/", delete, methods=["DELETE"], name=f"{name}:delete/"),
        Route(f"{prefix}/v2", delete_by_query, methods=["DELETE"], name=f"{name}:delete_v2"),
        Route(f"{prefix}/status", set_status, methods=["PATCH"], name=f"{name}:status"),
        Route(f"{prefix}/download", download, methods=["GET"], name=f"{name}:download"),
        Route(f"{prefix}/upload-csv", upload_csv, methods=["POST"], name=f"{name}:upload_csv"),
        Route(
            f"{prefix}/manual-segment/update", manual_update, methods=["POST"], name=f"{name}:manual_update"
        ),
        Route(f"{prefix}/manual-segment/clear", manual_clear, methods=["POST"], name=f"{name}:manual_clear"),
        Route(
            f"{prefix}/manual-segment/status", manual_status, methods=["GET"], name=f"{name}:manual_status"
        ),
    ]


routes = segment_routes("/api/admin/segments", authorize_target, name="admin:segments")


async def _recompute(request: Request, workspace_id: str, segment_id: str) -> None:
    """Membership follows a manual update at once, as upstream's update workflow does."""
    await run_in_threadpool(request.app.state.compute.compute, workspace_id, {segment_id})
