"""The journeys table screen (`/journeys`), component "Journey": every authored journey of the
workspace with its status, entry (segment or event), last update and what its message nodes sent,
each linking to the journey editor; a form that creates a journey (a draft entering by a segment
still to choose) and opens it in the editor; and deletion.

Internal journeys (those of V1 broadcasts) are hidden, as upstream's table hides them; a session
minted for some `resourceIds` sees only those journeys and creates none.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.journey_editing import (
    COMPONENT,
    EDITOR_PATH,
    TABLE_PATH,
    check_write,
    entry_summary,
    field_text,
    find_journey,
    journeys_in_reach,
    may_create,
    may_write,
    read_choices,
    read_form,
    read_node_stats,
    working_copy,
)
from components.journey_tree_edits import new_definition
from components.screens import Screen, navigate, render, screen_routes
from engine.errors import InvalidInput, NotFound, PermissionDenied
from engine.journeys import resources as journeys
from engine.resources import iso_ms
from engine.storage.event_store import EventStore
from engine.storage.journey_models import Journey
from gateway.deps import in_transaction


@dataclass
class JourneyRow:
    id: str
    name: str
    status: str
    updated_at: str
    entry_kind: str
    entry_name: str
    unpublished: bool
    sent: int = 0
    delivered: int = 0
    opened: int = 0


async def show_table(request: Request, screen: Screen) -> Response:
    return await _table(request, screen)


async def create(request: Request, screen: Screen) -> Response:
    """Create a journey (its draft enters by a segment still to choose) and open it in the editor."""
    check_write(screen)
    if not may_create(screen):
        raise PermissionDenied("This session may only open its resourceIds; it cannot create journeys")
    fields = await read_form(request)
    name = field_text(fields, "name").strip()

    def write(session: Session) -> str:
        if not name:
            raise InvalidInput("name must not be empty", field="name")
        # The upsert finds by name: without this check it would take over the other journey.
        taken = session.scalar(
            select(Journey.id).where(Journey.workspace_id == screen.workspace_id, Journey.name == name)
        )
        if taken is not None:
            raise InvalidInput(f"name {name} is already another journey's; names are unique", field="name")
        journey = journeys.upsert_journey(session, screen.workspace_id, name=name, draft=new_definition())
        return journey.id

    try:
        journey_id = await in_transaction(request, write)
    except InvalidInput as error:
        problem = error.message if error.field in ("name", "body/name") else f"{error.field}: {error.message}"
        if "hx-request" in request.headers:
            return render(
                request, screen, "journeys/_new_form.html", status=400, new_name=name, new_error=problem
            )
        return await _table(request, screen, new_name=name, new_error=problem, status=400)
    return navigate(request, screen.page(EDITOR_PATH, id=journey_id))


async def delete(request: Request, screen: Screen) -> Response:
    check_write(screen)
    fields = await read_form(request)
    journey_id = field_text(fields, "id")

    def remove(session: Session) -> None:
        journey = find_journey(session, screen, journey_id)
        if not journeys.delete_journey(session, screen.workspace_id, journey.id):
            raise NotFound("Journey not found")

    await in_transaction(request, remove)
    return navigate(request, screen.page(TABLE_PATH))


async def _table(
    request: Request, screen: Screen, *, new_name: str = "", new_error: str | None = None, status: int = 200
) -> Response:
    def read(session: Session) -> tuple[list[JourneyRow], list[Journey]]:
        names = read_choices(session, screen.workspace_id).segment_names
        found = journeys_in_reach(session, screen)
        rows = []
        for journey in found:
            copy = working_copy(journey)
            shown = journey.definition if journey.definition is not None else copy.definition
            kind, what = entry_summary(shown, names)
            rows.append(
                JourneyRow(
                    id=journey.id,
                    name=journey.name,
                    status=journey.status.value,
                    updated_at=iso_ms(journey.updated_at),
                    entry_kind=kind,
                    entry_name=what,
                    unpublished=copy.unpublished,
                )
            )
        return rows, found

    rows, found = await in_transaction(request, read)
    store: EventStore = request.app.state.event_store
    every_stats = await run_in_threadpool(read_node_stats, store, screen.workspace_id, found)
    for row, journey in zip(rows, found, strict=True):
        stats = every_stats.get(journey.id, {})
        row.sent = sum(node.sent for node in stats.values())
        row.delivered = sum(node.delivered for node in stats.values())
        row.opened = sum(node.opened for node in stats.values())
    rows.sort(key=lambda row: row.updated_at, reverse=True)
    return render(
        request,
        screen,
        "journeys/table.html",
        status=status,
        rows=rows,
        can_create=may_create(screen),
        can_delete=may_write(screen),
        editor_path=EDITOR_PATH,
        new_name=new_name,
        new_error=new_error,
    )


routes: list[Route] = [
    *screen_routes(TABLE_PATH, show_table, component=COMPONENT, name="journeys_table"),
    *screen_routes(f"{TABLE_PATH}/new", create, component=COMPONENT, name="journeys:new", methods=["POST"]),
    *screen_routes(
        f"{TABLE_PATH}/delete", delete, component=COMPONENT, name="journeys:delete", methods=["POST"]
    ),
]
