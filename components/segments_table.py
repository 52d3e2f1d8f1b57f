"""The segments table screen (`/segments`), component "Segment": every Declarative segment of the
workspace with its member count, last update and status, each linking to the segment editor, and a
link to create a new one. Internal segments (those of subscription groups and V1 broadcasts) are
hidden, as upstream's table hides them; a session limited to `resourceIds` sees only those.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.screens import Screen, render, screen_routes
from components.segment_editor import COMPONENT, EDITOR_PATH, may_create
from engine import segments
from engine.definitions import is_manual
from engine.resources import iso_ms
from engine.storage.event_store import EventStore
from engine.storage.resource_models import ResourceType
from gateway.deps import in_transaction


@dataclass
class SegmentRow:
    id: str
    name: str
    status: str
    manual: bool
    updated_at: str
    members: int = 0


async def show_table(request: Request, screen: Screen) -> Response:
    def read(session: Session) -> list[SegmentRow]:
        found = segments.list_segments(session, screen.workspace_id, resource_type=ResourceType.DECLARATIVE)
        allowed = screen.embedded.resource_ids if screen.embedded is not None else None
        return [
            SegmentRow(
                id=segment.id,
                name=segment.name,
                status=segment.status.value,
                manual=is_manual(segment.definition),
                updated_at=iso_ms(segment.updated_at),
            )
            for segment in found
            if allowed is None or segment.id in allowed
        ]

    rows = await in_transaction(request, read)
    store: EventStore = request.app.state.event_store
    members = await run_in_threadpool(
        segments.count_segment_members, store, screen.workspace_id, [row.id for row in rows]
    )
    for row in rows:
        row.members = members[row.id]
    return render(
        request,
        screen,
        "segments/table.html",
        rows=rows,
        can_create=may_create(screen),
        editor_path=EDITOR_PATH,
    )


routes: list[Route] = screen_routes("/segments", show_table, component=COMPONENT, name="segments_table")
