"""The broadcasts table (`/broadcasts`), component "Broadcast": the workspace's broadcasts, newest
first, with status, segment, template, times and send progress, each V2 broadcast linking to its
editor; a "show archived" filter; archive and unarchive; and a form that creates a Draft broadcast
(engine.broadcasts.resources.upsert_broadcast_v2) and opens it in the editor.

V1 broadcasts (built by `broadcasts/execute`) are listed but have no editor: they are sent as built.
A session minted for some `resourceIds` sees only those broadcasts and creates none.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.broadcast_access import (
    COMPONENT,
    EDITOR_PATH,
    TABLE_PATH,
    BroadcastSummary,
    check_in_reach,
    check_may_write,
    describe_broadcasts,
    in_reach,
    may_create,
    may_write,
)
from components.screens import Screen, navigate, render, screen_routes
from components.template_editing import form_text, read_form, required_text
from engine import configuration_enforcement
from engine.broadcasts import resources
from engine.broadcasts.resources import BroadcastUpsert
from engine.errors import PermissionDenied
from gateway.deps import in_transaction

TRUE_VALUES = frozenset({"1", "true", "on", "yes"})


def wants_archived(request: Request) -> bool:
    return request.query_params.get("archived", "").lower() in TRUE_VALUES


async def show_table(request: Request, screen: Screen) -> Response:
    show_archived = wants_archived(request)

    def read(session: Session) -> list[BroadcastSummary]:
        found = [
            broadcast
            for broadcast in resources.list_broadcasts(session, screen.workspace_id)
            if in_reach(screen, broadcast.id) and (show_archived or not broadcast.archived)
        ]
        return describe_broadcasts(session, screen.workspace_id, found)

    rows = await in_transaction(request, read)
    return render(
        request,
        screen,
        "broadcasts/table.html",
        rows=rows,
        show_archived=show_archived,
        can_create=may_create(screen),
        can_write=may_write(screen),
        editor_path=EDITOR_PATH,
        table_path=TABLE_PATH,
    )


async def create(request: Request, screen: Screen) -> Response:
    """Create a Draft broadcast named by the form, then open its editor."""
    check_may_write(screen)
    if not may_create(screen):
        raise PermissionDenied("This session may only open its resourceIds; it cannot create broadcasts")
    form = await read_form(request)
    name = required_text(form, "name")

    def write(session: Session) -> str:
        if screen.embedded is not None:
            configuration_enforcement.check_broadcast_write(session, screen.workspace_id, {"name": name})
        # Upsert by name would open an existing broadcast of that name: a new one needs a new name.
        resources.check_name_free(session, screen.workspace_id, name, None)
        broadcast = resources.upsert_broadcast_v2(
            session, screen.workspace_id, BroadcastUpsert(name=name), now=datetime.now(UTC)
        )
        return broadcast.id

    broadcast_id = await in_transaction(request, write)
    return navigate(request, screen.page(EDITOR_PATH, id=broadcast_id))


async def archive(request: Request, screen: Screen) -> Response:
    """Archive (`archived=true`) or unarchive a broadcast, then show the table again."""
    check_may_write(screen)
    form = await read_form(request)
    broadcast_id = required_text(form, "id")
    check_in_reach(screen, {"broadcastId": broadcast_id})
    archived = form_text(form, "archived").lower() in TRUE_VALUES

    def write(session: Session) -> None:
        resources.archive_broadcast(
            session, screen.workspace_id, broadcast_id, archived, now=datetime.now(UTC)
        )

    await in_transaction(request, write)
    params = {"archived": "true"} if form_text(form, "showArchived").lower() in TRUE_VALUES else {}
    return navigate(request, screen.page(TABLE_PATH, **params))


routes: list[Route] = [
    *screen_routes(TABLE_PATH, show_table, component=COMPONENT, name="broadcasts"),
    *screen_routes(f"{TABLE_PATH}/new", create, component=COMPONENT, name="broadcasts:new", methods=["POST"]),
    *screen_routes(
        f"{TABLE_PATH}/archive", archive, component=COMPONENT, name="broadcasts:archive", methods=["POST"]
    ),
]
