"""The journey editor screen (`/journeys/v2?id=…`), component "Journey": the journey drawn as a
vertical flow from its entry, every node with a form for its fields and per-node delivery stats, and
the journey's own controls (name, canRunMultiple, publish, discard the draft, start, pause, resume).

Every edit posts one form and answers with the whole editor again. Node edits (components.
journey_tree_edits) are saved at once into the journey's `draft`; publishing makes the draft the
definition, which engine.journeys validates (its refusal is shown at the node and field it names,
and nothing is saved); status changes go through the same upsert, so its transition rules hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components import journey_tree_edits as edits
from components.journey_editing import (
    COMPONENT,
    EDITOR_PATH,
    NODE_LABELS,
    TABLE_PATH,
    Choices,
    Fields,
    NodeStats,
    check_write,
    describe_duration,
    field_text,
    find_journey,
    flow,
    locate_error,
    may_write,
    read_choices,
    read_form,
    read_node_stats,
    split_duration,
    unreachable,
    working_copy,
)
from components.screens import Screen, render, screen_routes
from engine.errors import InvalidInput
from engine.journeys import resources as journeys
from engine.resources import iso_ms
from engine.storage.journey_models import Journey, JourneyStatus
from engine.storage.models import utcnow
from gateway.deps import in_transaction

# Status buttons: the status each posts and its label, by the journey's current status.
STATUS_ACTIONS = {
    JourneyStatus.NOT_STARTED: [("Running", "Start")],
    JourneyStatus.RUNNING: [("Paused", "Pause")],
    JourneyStatus.PAUSED: [("Running", "Resume")],
    JourneyStatus.BROADCAST: [],
}
WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


@dataclass(frozen=True)
class Problem:
    """The last refusal and what it is about: a node id, "settings", "status" or "journey"."""

    target: str
    field: str | None
    message: str


@dataclass
class Editor:
    """The editor section: the journey, its working copy and the last outcome."""

    journey_id: str
    name: str
    status: str
    can_run_multiple: bool
    updated_at: str
    has_definition: bool
    definition: edits.Definition
    unpublished: bool
    foreign_draft: bool
    stats: dict[str, NodeStats] = field(default_factory=dict)
    problem: Problem | None = None
    notice: str | None = None

    def error_for(self, target: str) -> Problem | None:
        return self.problem if self.problem is not None and self.problem.target == target else None


def editor_of(journey: Journey) -> Editor:
    copy = working_copy(journey)
    return Editor(
        journey_id=journey.id,
        name=journey.name,
        status=journey.status.value,
        can_run_multiple=journey.can_run_multiple,
        updated_at=iso_ms(journey.updated_at),
        has_definition=journey.definition is not None,
        definition=copy.definition,
        unpublished=copy.unpublished,
        foreign_draft=copy.foreign_draft,
    )


# -- handlers ----------------------------------------------------------------------------------------


async def show_editor(request: Request, screen: Screen) -> Response:
    journey_id = request.query_params.get("id", "")

    def read(session: Session) -> tuple[Journey, Choices]:
        return find_journey(session, screen, journey_id), read_choices(session, screen.workspace_id)

    journey, choices = await in_transaction(request, read)
    editor = editor_of(journey)
    return await _respond(request, screen, editor, journey, choices, full=True)


Change = Callable[[Session, Journey, edits.Definition, Fields, Choices], str]


async def edit_nodes(request: Request, screen: Screen) -> Response:
    """Add, change or remove a node or a branch; the result is saved as the draft."""

    def change(
        session: Session, journey: Journey, working: edits.Definition, fields: Fields, c: Choices
    ) -> str:
        action, node_id = field_text(fields, "action"), field_text(fields, "nodeId")
        if action == "add":
            slot, kind = field_text(fields, "slot"), field_text(fields, "type")
            edited, _ = edits.add_node(working, node_id, slot, kind)
            notice = f"{NODE_LABELS.get(kind, kind)} added."
        elif action == "update":
            edited, notice = (
                edits.update_node(working, node_id, fields, c.template_channels),
                "Saved as draft.",
            )
        elif action == "remove":
            edited, notice = edits.remove_node(working, node_id), "Node removed."
        elif action == "add-branch":
            edited, notice = edits.add_branch(working, node_id), "Branch added."
        elif action == "remove-branch":
            edited, notice = (
                edits.remove_branch(working, node_id, _index(fields, "branch")),
                "Branch removed.",
            )
        else:
            raise InvalidInput(
                "action must be add, update, remove, add-branch or remove-branch", field="action"
            )
        _save_draft(session, screen, journey, edited)
        return notice

    fields = await read_form(request)
    target = field_text(fields, "nodeId") or "journey"
    return await _act(request, screen, fields, change, target=target)


async def edit_entry(request: Request, screen: Screen) -> Response:
    def change(
        session: Session, journey: Journey, working: edits.Definition, fields: Fields, _: Choices
    ) -> str:
        _save_draft(session, screen, journey, edits.update_entry(working, fields))
        return "Entry saved as draft."

    fields = await read_form(request)
    return await _act(request, screen, fields, change, target="entry")


async def save_settings(request: Request, screen: Screen) -> Response:
    def change(session: Session, journey: Journey, _: edits.Definition, fields: Fields, __: Choices) -> str:
        name = field_text(fields, "name").strip()
        if not name:
            raise InvalidInput("name must not be empty", field="name")
        can_run_multiple = field_text(fields, "canRunMultiple") in ("true", "on")
        journeys.upsert_journey(
            session, screen.workspace_id, id=journey.id, name=name, can_run_multiple=can_run_multiple
        )
        return "Settings saved."

    return await _act(request, screen, await read_form(request), change, target="settings")


async def publish(request: Request, screen: Screen) -> Response:
    def change(session: Session, journey: Journey, working: edits.Definition, _: Fields, __: Choices) -> str:
        journeys.upsert_journey(session, screen.workspace_id, id=journey.id, definition=working)
        return "Published."

    return await _act(request, screen, await read_form(request), change, target="publish")


async def discard(request: Request, screen: Screen) -> Response:
    def change(session: Session, journey: Journey, _: edits.Definition, __: Fields, ___: Choices) -> str:
        journeys.upsert_journey(session, screen.workspace_id, id=journey.id, draft=None)
        return "Draft discarded."

    return await _act(request, screen, await read_form(request), change, target="publish")


async def change_status(request: Request, screen: Screen) -> Response:
    now = utcnow()
    started: list[str] = []

    def change(session: Session, journey: Journey, _: edits.Definition, fields: Fields, __: Choices) -> str:
        wanted = field_text(fields, "status")
        if wanted not in ("Running", "Paused"):
            raise InvalidInput("status must be Running or Paused", field="status")
        journeys.upsert_journey(
            session, screen.workspace_id, id=journey.id, status=JourneyStatus(wanted), now=now
        )
        manual = journeys.started_manual_segment(session, journey, started_at=now)
        if manual is not None:
            started.append(manual)
        return {"Running": "Journey running.", "Paused": "Journey paused."}[wanted]

    response = await _act(request, screen, await read_form(request), change, target="status")
    if started:
        # As the API does: the Manual entry segment's present members enter now.
        await run_in_threadpool(request.app.state.compute.compute, screen.workspace_id, set(started))
    return response


# -- the shared path of every edit -------------------------------------------------------------------


async def _act(request: Request, screen: Screen, fields: Fields, change: Change, *, target: str) -> Response:
    """Apply `change` to the journey the form names and answer with the editor; a refusal is
    answered with the editor as stored (nothing of the change saved) and the message at its target."""
    check_write(screen)
    journey_id = field_text(fields, "id")

    def write(session: Session) -> tuple[Journey, Choices, str]:
        journey = find_journey(session, screen, journey_id)
        choices = read_choices(session, screen.workspace_id)
        notice = change(session, journey, working_copy(journey).definition, fields, choices)
        return journey, choices, notice

    try:
        journey, choices, notice = await in_transaction(request, write)
    except InvalidInput as error:
        journey, choices = await in_transaction(
            request,
            lambda session: (
                find_journey(session, screen, journey_id),
                read_choices(session, screen.workspace_id),
            ),
        )
        editor = editor_of(journey)
        editor.problem = _problem(editor.definition, target, error)
        return await _respond(request, screen, editor, journey, choices, status=400)
    editor = editor_of(journey)
    editor.notice = notice
    return await _respond(request, screen, editor, journey, choices)


def _problem(definition: edits.Definition, target: str, error: InvalidInput) -> Problem:
    """Where to show `error`: the node and field an engine refusal names, else the form that posted."""
    field = error.field
    if target == "publish":
        located = locate_error(definition, field)
        if located is not None:
            return Problem(located[0], located[1], error.message)
        return Problem("journey", field, error.message)
    if target == "entry":
        target = str(definition["entryNode"].get("type"))
    elif target == "settings" and field == "body/name":
        field = "name"
    elif target == "status" and field == "body/status":
        field = "status"
    return Problem(target, field, error.message)


def _save_draft(session: Session, screen: Screen, journey: Journey, definition: edits.Definition) -> None:
    journeys.upsert_journey(session, screen.workspace_id, id=journey.id, draft=definition)


def _index(fields: Fields, name: str) -> int:
    text = field_text(fields, name)
    if not text.isdigit():
        raise InvalidInput(f"{name} must be a branch number", field=name)
    return int(text)


async def _respond(
    request: Request,
    screen: Screen,
    editor: Editor,
    journey: Journey,
    choices: Choices,
    *,
    status: int = 200,
    full: bool = False,
) -> Response:
    """The editor section for htmx; the whole page for the first load and for forms posted without it."""
    store = request.app.state.event_store
    stats = await run_in_threadpool(read_node_stats, store, screen.workspace_id, [journey])
    editor.stats = stats.get(journey.id, {})
    whole = full or "hx-request" not in request.headers
    template = "journeys/editor.html" if whole else "journeys/_editor.html"
    return render(request, screen, template, status=status, **_context(screen, editor, choices))


def _context(screen: Screen, editor: Editor, choices: Choices) -> dict[str, Any]:
    return {
        "editor": editor,
        "choices": choices,
        "flow": flow(editor.definition),
        "unreachable": unreachable(editor.definition),
        "node_labels": NODE_LABELS,
        "split_duration": split_duration,
        "describe_duration": describe_duration,
        "edits": edits,
        "writable": may_write(screen),
        "status_actions": STATUS_ACTIONS[JourneyStatus(editor.status)],
        "weekdays": WEEKDAYS,
        "definition_json": json.dumps(editor.definition, indent=2, ensure_ascii=False),
        "table_url": screen.page(TABLE_PATH),
        "urls": {
            name: screen.page(f"{EDITOR_PATH}/{name}")
            for name in ("nodes", "entry", "settings", "publish", "discard", "status")
        },
    }


def _post(path: str, handler: Callable[[Request, Screen], Any], name: str) -> list[Route]:
    return screen_routes(f"{EDITOR_PATH}/{path}", handler, component=COMPONENT, name=name, methods=["POST"])


routes: list[Route] = [
    *screen_routes(EDITOR_PATH, show_editor, component=COMPONENT, name="journey_editor"),
    *_post("nodes", edit_nodes, "journey_nodes"),
    *_post("entry", edit_entry, "journey_entry"),
    *_post("settings", save_settings, "journey_settings"),
    *_post("publish", publish, "journey_publish"),
    *_post("discard", discard, "journey_discard"),
    *_post("status", change_status, "journey_status"),
]
