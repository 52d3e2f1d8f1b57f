"""The segment editor screen (`/segments/v1?id=…`, no id for a new segment), component "Segment".

A name and a definition builder: the definition is a tree of fieldsets (components.segment_form)
re-rendered by htmx from the posted form state on every "add", "remove" or type change, or a JSON
textarea as the alternative editor. Saving validates with engine.definitions (its 400 messages are
shown next to the form, the offending node marked), upserts through engine.segments, then recomputes
that one segment and shows its member count, as does the "count" button.

Writes follow the API's rules: in the embed shell the session's components must grant `segments`
write (and `computed-properties` write for a recompute) and its `resourceIds` must name the segment;
in the console the member must be an Author. Segments have no component configuration to enforce.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components import segment_form, segment_tree_edits
from components.screens import Screen, render, screen_routes
from components.segment_form import NodeForm, Unrepresentable
from engine import segments
from engine.audit import Actor
from engine.definitions import validate_segment_definition
from engine.errors import InvalidInput, PermissionDenied
from engine.event_search import list_event_property_keys, list_trait_keys
from engine.messaging.subscription_groups import list_subscription_groups
from engine.messaging.templates import list_templates
from engine.resource_lookup import find_in_workspace
from engine.resources import iso_ms
from engine.storage.event_store import EventStore
from engine.storage.resource_models import Segment
from gateway.deps import audit_context, in_transaction
from gateway.embed_policy import check_resource_ids

COMPONENT = "Segment"
EDITOR_PATH = "/segments/v1"
Mode = Literal["form", "json"]
# Generous: a large definition posts a few fields per node; the body limit bounds the request anyway.
MAX_FORM_FIELDS = 50_000


@dataclass
class Editor:
    """What the editor section shows: the segment, the builder's state and the last outcome."""

    segment_id: str
    name: str
    is_new: bool
    mode: Mode
    tree: NodeForm | None
    json_text: str = ""
    status: str | None = None
    updated_at: str | None = None
    members: int | None = None
    # The last refusal: the engine's message and the field it names.
    error: str | None = None
    error_field: str | None = None
    name_error: str | None = None
    notice: str | None = None
    # Why the form view is not offered.
    note: str | None = None

    def refuse(self, error: InvalidInput) -> None:
        """Show `error` next to what it is about: the name, a node of the tree, or the builder."""
        if error.field in ("name", "body/name"):
            self.name_error = error.message
            return
        self.error, self.error_field = error.message, error.field
        node = segment_form.node_at(self.tree, error.field) if self.tree is not None else None
        if node is not None:
            node.error = error.message


@dataclass(frozen=True)
class Choices:
    """What the builder's selects offer: the workspace's templates and subscription groups."""

    templates: list[tuple[str, str]]
    groups: list[tuple[str, str]]


# -- access ------------------------------------------------------------------------------------------


def check_write(screen: Screen, group: str = "segments") -> None:
    screen.check_write(group, "segments")


def may_write(screen: Screen, group: str = "segments") -> bool:
    return screen.may_write(group)


def check_named(screen: Screen, segment_id: str) -> None:
    """:raises PermissionDenied: the session's `resourceIds` do not name this segment."""
    if screen.embedded is not None:
        check_resource_ids(screen.embedded.resource_ids, None, {"id": segment_id})


def may_create(screen: Screen) -> bool:
    return screen.may_create("segments")


def count_members(store: EventStore, workspace_id: str, segment_id: str) -> int:
    """The segment's current members, from its computed assignments."""
    return segments.count_segment_members(store, workspace_id, [segment_id])[segment_id]


# -- handlers ----------------------------------------------------------------------------------------


async def show_editor(request: Request, screen: Screen) -> Response:
    segment_id = request.query_params.get("id")

    def read(session: Session) -> tuple[Editor, Choices]:
        if segment_id is None:
            if not may_create(screen):
                raise PermissionDenied("This session may not create segments")
            definition = segment_tree_edits.new_definition()
            editor = _editor_for(segment_form.new_node_id(), "", definition, is_new=True)
        else:
            check_named(screen, segment_id)
            segment = segments.find_segment(session, screen.workspace_id, segment_id)
            editor = _editor_for(segment.id, segment.name, segment.definition, is_new=False)
            _describe(editor, segment)
        return editor, _choices(session, screen.workspace_id)

    editor, choices = await in_transaction(request, read)
    store: EventStore = request.app.state.event_store
    if not editor.is_new:
        editor.members = await run_in_threadpool(count_members, store, screen.workspace_id, editor.segment_id)
    trait_keys = await run_in_threadpool(list_trait_keys, store, [screen.workspace_id])
    # The Performed node's pickers offer the product's own events; Email nodes cover feedgate's.
    event_keys = await run_in_threadpool(
        partial(list_event_property_keys, include_internal=False), store, [screen.workspace_id]
    )
    return render(
        request,
        screen,
        "segments/editor.html",
        **_context(screen, editor, choices),
        trait_keys=trait_keys,
        event_names=sorted(event_keys),
        property_keys=sorted({key for keys in event_keys.values() for key in keys}),
    )


async def update_builder(request: Request, screen: Screen) -> Response:
    """Apply one builder action to the posted state and render the builder again."""
    fields = await _read_form(request)
    form = dict(fields)
    action = form.get("action", "")
    editor = _posted_editor(form, fields)
    try:
        if action == "mode:json" and editor.tree is not None:
            editor.json_text = _pretty(segment_form.definition_from_tree(editor.tree))
            editor.mode, editor.tree = "json", None
        elif action == "mode:form" and editor.mode == "json":
            editor.tree = _tree_of(_parse_json(editor.json_text))
            editor.mode = "form"
        elif action.startswith("mode:"):
            pass
        elif editor.tree is not None and action:
            segment_tree_edits.apply_action(editor.tree, action)
    except InvalidInput as error:
        editor.refuse(error)
        return await _render_part(request, screen, "segments/_builder.html", editor, status=400)
    return await _render_part(request, screen, "segments/_builder.html", editor)


async def save(request: Request, screen: Screen) -> Response:
    check_write(screen)
    fields = await _read_form(request)
    form = dict(fields)
    editor = _posted_editor(form, fields)
    if not editor.segment_id:
        raise InvalidInput("id is required", field="id")
    check_named(screen, editor.segment_id)
    if screen.embedded is not None:
        audit_context(request).actor = Actor("EmbedOccupant", screen.embedded.occupant_id)

    def write(session: Session) -> tuple[Segment, bool]:
        existing = find_in_workspace(session, Segment, screen.workspace_id, editor.segment_id)
        stored = existing.definition if existing is not None else None
        upsert = segments.SegmentUpsert(
            name=editor.name,
            id=editor.segment_id,
            # Only a real change moves definitionUpdatedAt (and restarts the computation).
            definition=stored if segment_form.same_definition(definition, stored) else definition,
        )
        return segments.upsert_segment(session, screen.workspace_id, upsert), existing is None

    try:
        if not editor.name.strip():
            raise InvalidInput("name must not be empty", field="name")
        raw = (
            segment_form.definition_from_tree(editor.tree)
            if editor.tree is not None
            else _parse_json(editor.json_text)
        )
        definition = validate_segment_definition(raw)
        saved, created = await in_transaction(request, write)
    except InvalidInput as error:
        editor.refuse(error)
        if not editor.is_new:
            store = request.app.state.event_store
            editor.members = await run_in_threadpool(
                count_members, store, screen.workspace_id, editor.segment_id
            )
        return await _render_part(request, screen, "segments/_editor.html", editor, status=400)
    editor = _editor_for(saved.id, saved.name, saved.definition, is_new=False, mode=editor.mode)
    _describe(editor, saved)
    editor.members = await _recompute(request, screen, saved.id)
    editor.notice = "Saved."
    response = await _render_part(request, screen, "segments/_editor.html", editor)
    if created:
        response.headers["HX-Push-Url"] = screen.page(EDITOR_PATH, id=saved.id)
    return response


async def recount(request: Request, screen: Screen) -> Response:
    """Recompute the segment now and show how many users are in it."""
    fields = await _read_form(request)
    segment_id = dict(fields).get("id", "")
    check_write(screen, "computed-properties")
    check_named(screen, segment_id)

    def read(session: Session) -> str:
        return segments.find_segment(session, screen.workspace_id, segment_id).id

    found = await in_transaction(request, read)
    members = await _recompute(request, screen, found)
    return render(
        request,
        screen,
        "segments/_count.html",
        segment_id=found,
        members=members,
        can_count=True,
        fresh=True,
        count_url=screen.page(f"{EDITOR_PATH}/count"),
    )


# -- state -------------------------------------------------------------------------------------------


def _editor_for(segment_id: str, name: str, definition: Any, *, is_new: bool, mode: Mode = "form") -> Editor:
    """The editor for a stored (or new) definition: the form view when the form can show it exactly."""
    editor = Editor(segment_id=segment_id, name=name, is_new=is_new, mode=mode, tree=None)
    if mode == "form":
        try:
            editor.tree = segment_form.tree_from_definition(definition)
        except Unrepresentable:
            editor.mode = "json"
            editor.note = "This definition has parts the form cannot show; edit it as JSON."
    if editor.mode == "json":
        editor.json_text = _pretty(definition)
    return editor


def _describe(editor: Editor, segment: Segment) -> None:
    editor.status = segment.status.value
    editor.updated_at = iso_ms(segment.updated_at)


def _posted_editor(form: dict[str, str], fields: list[tuple[str, str]]) -> Editor:
    """The editor as the browser posted it: the builder's tree, or the JSON text."""
    mode: Mode = "json" if form.get("mode") == "json" else "form"
    return Editor(
        segment_id=form.get("id", ""),
        name=form.get("name", ""),
        # Only what the page shows: the save itself looks the id up.
        is_new=form.get("isNew") == "true",
        mode=mode,
        tree=segment_form.tree_from_fields(fields) if mode == "form" else None,
        json_text=form.get("definitionJson", ""),
    )


def _tree_of(definition: Any) -> NodeForm:
    try:
        return segment_form.tree_from_definition(definition)
    except Unrepresentable:
        raise InvalidInput(
            "body/definition has parts the form cannot show; keep editing it as JSON", field="body/definition"
        ) from None


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        message = (
            f"body/definition is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        )
        raise InvalidInput(message, field="body/definition") from None


def _pretty(definition: Any) -> str:
    return json.dumps(definition, indent=2, ensure_ascii=False)


def _choices(session: Session, workspace_id: str) -> Choices:
    return Choices(
        templates=[(t.id, t.name) for t in list_templates(session, workspace_id)],
        groups=[(g.id, g.name) for g in list_subscription_groups(session, workspace_id)],
    )


def _context(screen: Screen, editor: Editor, choices: Choices) -> dict[str, Any]:
    if editor.tree is not None:
        segment_tree_edits.assign_names(editor.tree)
    return {
        "editor": editor,
        "choices": choices,
        "segment_id": editor.segment_id,
        "members": editor.members,
        "sf": segment_form,
        "writable": may_write(screen),
        "can_count": may_write(screen, "computed-properties"),
        "fresh": False,
        "builder_url": screen.page(f"{EDITOR_PATH}/builder"),
        "save_url": screen.page(f"{EDITOR_PATH}/save"),
        "count_url": screen.page(f"{EDITOR_PATH}/count"),
        "table_url": screen.page("/segments"),
    }


async def _render_part(
    request: Request, screen: Screen, template: str, editor: Editor, *, status: int = 200
) -> Response:
    choices = await in_transaction(request, lambda session: _choices(session, screen.workspace_id))
    context = _context(screen, editor, choices)
    return render(request, screen, template, status=status, **context)


async def _recompute(request: Request, screen: Screen, segment_id: str) -> int:
    """Compute just this segment now (as the API's manual-segment updates do), then count it."""
    await run_in_threadpool(request.app.state.compute.compute, screen.workspace_id, {segment_id})
    return await run_in_threadpool(
        count_members, request.app.state.event_store, screen.workspace_id, segment_id
    )


async def _read_form(request: Request) -> list[tuple[str, str]]:
    limit = request.app.state.settings.api_body_limit
    try:
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=limit)
    except HTTPException as error:
        raise InvalidInput(f"body {error.detail}", field="body") from None
    return [(name, value) for name, value in form.multi_items() if isinstance(value, str)]


routes: list[Route] = [
    *screen_routes(EDITOR_PATH, show_editor, component=COMPONENT, name="segment_editor"),
    *screen_routes(
        f"{EDITOR_PATH}/builder",
        update_builder,
        component=COMPONENT,
        name="segment_builder",
        methods=["POST"],
    ),
    *screen_routes(f"{EDITOR_PATH}/save", save, component=COMPONENT, name="segment_save", methods=["POST"]),
    *screen_routes(
        f"{EDITOR_PATH}/count", recount, component=COMPONENT, name="segment_count", methods=["POST"]
    ),
]
