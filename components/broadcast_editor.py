"""The broadcast editor (`/broadcasts/v2?id=<id>&step=<STEP>`, upstream's `dfbs=<STEP>` too),
component "Broadcast": the broadcast's name, status and progress, its lifecycle actions (start,
pause, resume, cancel, as its status offers them), and one step at a time behind keyboard-reachable
tabs — RECIPIENTS, CONTENT, CONFIGURATION, DELIVERIES, EVENTS (components.broadcast_steps).

Embedded, the workspace's Broadcast configuration shapes the page on the server: a step outside
`stepsAllowList` gets no tab and opening it is a 403; hidden options are not rendered. DELIVERIES
and EVENTS get tabs once the broadcast has left Draft, as upstream's editor does. The forms post to
components.broadcast_writes, whose routes `routes` includes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components import broadcast_steps, broadcast_writes
from components.broadcast_access import (
    ACTION_LABELS,
    ACTIONS_BY_STATUS,
    COMPONENT,
    EDITOR_PATH,
    STEP_LABELS,
    TABLE_PATH,
    BroadcastSummary,
    check_in_reach,
    check_step_allowed,
    describe_broadcasts,
    load_v2,
    may_write,
    parse_step,
    screen_configuration,
    shown_steps,
)
from components.screens import Screen, render, screen_routes
from engine import segments
from engine.errors import InvalidInput
from engine.storage.event_store import EventStore
from gateway.deps import in_transaction


@dataclass
class Opened:
    """What the SQL transaction read for the page; the ClickHouse reads follow it."""

    summary: BroadcastSummary
    steps: list[str]
    step: str | None
    data: Any = None


def requested_id(request: Request) -> str:
    """:raises InvalidInput: naming `id`, when the page names no broadcast."""
    broadcast_id = request.query_params.get("id", "").strip()
    if not broadcast_id:
        raise InvalidInput("id must name a broadcast", field="id")
    return broadcast_id


def requested_offset(request: Request) -> int:
    """:raises InvalidInput: naming `offset`, when it is not a non-negative integer."""
    raw = request.query_params.get("offset", "0").strip() or "0"
    if not raw.isdigit():
        raise InvalidInput("offset must be a non-negative integer", field="offset")
    return int(raw)


async def show_editor(request: Request, screen: Screen) -> Response:
    broadcast_id = requested_id(request)
    check_in_reach(screen, {"id": broadcast_id})
    asked = parse_step(request.query_params.get("step") or request.query_params.get("dfbs"))
    # An unreadable cursor starts from the first page, as `GET deliveries` does.
    cursor = request.query_params.get("cursor") or None
    offset = requested_offset(request)

    def read(session: Session) -> Opened:
        broadcast = load_v2(session, screen.workspace_id, broadcast_id)
        configuration = screen_configuration(session, screen)
        steps = shown_steps(configuration, broadcast.status)
        step = asked or (steps[0] if steps else None)
        if step is not None:
            check_step_allowed(configuration, step)
        [summary] = describe_broadcasts(session, screen.workspace_id, [broadcast])
        opened = Opened(summary, steps, step)
        if step == "RECIPIENTS":
            opened.data = broadcast_steps.read_recipients(session, screen, broadcast)
        elif step == "CONTENT":
            opened.data = broadcast_steps.read_content(request, session, screen, broadcast, configuration)
        elif step == "CONFIGURATION":
            opened.data = broadcast_steps.read_configuration(broadcast, configuration)
        return opened

    opened = await in_transaction(request, read)
    store: EventStore = request.app.state.event_store
    summary = opened.summary
    if opened.step == "RECIPIENTS":
        await run_in_threadpool(broadcast_steps.count_recipients, store, screen.workspace_id, opened.data)
    elif opened.step == "DELIVERIES":
        names = {summary.template_id: summary.template_name or ""} if summary.template_id else {}
        opened.data = await run_in_threadpool(
            broadcast_steps.read_deliveries, store, screen, summary.id, names, cursor
        )
    elif opened.step == "EVENTS":
        opened.data = await run_in_threadpool(broadcast_steps.read_events, store, screen, summary.id, offset)
    writable = may_write(screen)
    return render(
        request,
        screen,
        "broadcasts/editor.html",
        broadcast=summary,
        steps=opened.steps,
        step=opened.step,
        step_labels=STEP_LABELS,
        data=opened.data,
        writable=writable,
        editable=writable and summary.editable,
        actions=ACTIONS_BY_STATUS.get(summary.status_enum, ()) if writable else (),
        action_labels=ACTION_LABELS,
        editor_path=EDITOR_PATH,
        table_path=TABLE_PATH,
        saved=request.query_params.get("saved") == "1",
    )


async def show_members(request: Request, screen: Screen) -> Response:
    """The member count of the segment the RECIPIENTS select now names (before it is saved)."""
    segment_id = request.query_params.get("segmentId", "").strip()
    step = broadcast_steps.RecipientsStep([], [], segment_id, "")
    if segment_id:
        check_in_reach(screen, {"segmentId": segment_id})
        await in_transaction(
            request, lambda session: segments.find_segment(session, screen.workspace_id, segment_id)
        )
        store: EventStore = request.app.state.event_store
        await run_in_threadpool(broadcast_steps.count_recipients, store, screen.workspace_id, step)
    return render(request, screen, "broadcasts/_members.html", data=step)


routes: list[Route] = [
    *screen_routes(EDITOR_PATH, show_editor, component=COMPONENT, name="broadcasts:editor"),
    *screen_routes(f"{EDITOR_PATH}/members", show_members, component=COMPONENT, name="broadcasts:members"),
    *broadcast_writes.routes,
]
