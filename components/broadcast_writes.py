"""The broadcast editor's writes, each a POST of one form: the RECIPIENTS, CONTENT and CONFIGURATION
steps (`/broadcasts/v2/recipients`, `/content`, `/configuration`, through
engine.broadcasts.resources.upsert_broadcast_v2) and the lifecycle actions (`/broadcasts/v2/start`,
`/pause`, `/resume`, `/cancel`, through engine.broadcasts.lifecycle).

Each applies the API's rules (components.broadcast_access): the session's scope or the member's
role, the session's `resourceIds`, and in an embed the workspace's Broadcast configuration — a step
outside `stepsAllowList` is refused (403) and every V2 write goes through
engine.configuration_enforcement.check_broadcast_write, as `PUT broadcasts/v2` does, so a hidden
option or a provider outside the allow-list is refused even when the form never offered it. A
field the page did not render is not sent, and is left as stored.

Success reloads the editor's step (HX-Location for htmx, else a 303); a refusal is the engine's
error, shown by the screen shell as a fragment in the form's status area with its 4xx status.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.broadcast_access import (
    COMPONENT,
    EDITOR_PATH,
    channel_of,
    check_in_reach,
    check_may_write,
    check_step_allowed,
    load_v2,
    parse_step,
    screen_configuration,
)
from components.broadcast_steps import ERROR_HANDLING, template_channel
from components.screens import Screen, navigate, screen_routes
from components.template_editing import form_text, read_form, required_text
from engine import configuration_enforcement
from engine.broadcasts import lifecycle, resources
from engine.broadcasts.resources import BroadcastUpsert
from engine.errors import InvalidInput
from engine.resource_lookup import find_in_workspace
from engine.resources import UNSET
from engine.storage.broadcast_models import Broadcast, BroadcastStatus
from engine.storage.resource_models import MessageTemplate
from gateway.deps import in_transaction

# (session, workspace id, broadcast id) -> the broadcast, moved along its status machine.
Transition = Callable[[Session, str, str], Broadcast]


def step_url(screen: Screen, broadcast_id: str, step: str | None, **params: str) -> str:
    return screen.page(EDITOR_PATH, id=broadcast_id, **({"step": step} if step else {}), **params)


def write_v2(session: Session, screen: Screen, raw: dict[str, Any], upsert: BroadcastUpsert) -> Broadcast:
    """The V2 upsert as `PUT broadcasts/v2` runs it; `raw` is the body the API would have received."""
    if screen.embedded is not None:
        configuration_enforcement.check_broadcast_write(session, screen.workspace_id, raw)
    return resources.upsert_broadcast_v2(session, screen.workspace_id, upsert, now=datetime.now(UTC))


def optional_id(form: FormData, field: str) -> str | None:
    """A posted reference: its id, None when emptied, UNSET when the page did not send it."""
    if field not in form:
        return UNSET  # type: ignore[no-any-return]  # the engine's "not sent" marker
    return form_text(form, field).strip() or None


async def _editing(request: Request, screen: Screen) -> tuple[FormData, str]:
    check_may_write(screen)
    form = await read_form(request)
    broadcast_id = required_text(form, "id")
    check_in_reach(screen, {"id": broadcast_id})
    return form, broadcast_id


def _check_step(session: Session, screen: Screen, step: str) -> None:
    check_step_allowed(screen_configuration(session, screen), step)


# -- RECIPIENTS --------------------------------------------------------------------------------------


async def save_recipients(request: Request, screen: Screen) -> Response:
    """The name, the segment and the subscription group."""
    form, broadcast_id = await _editing(request, screen)
    name = required_text(form, "name")
    segment_id = optional_id(form, "segmentId")
    group_id = optional_id(form, "subscriptionGroupId")
    if isinstance(segment_id, str):
        check_in_reach(screen, {"segmentId": segment_id})

    def write(session: Session) -> str:
        _check_step(session, screen, "RECIPIENTS")
        broadcast = load_v2(session, screen.workspace_id, broadcast_id)
        raw: dict[str, Any] = {"id": broadcast.id, "name": name}
        if segment_id is not UNSET:
            raw["segmentId"] = segment_id
        if group_id is not UNSET:
            raw["subscriptionGroupId"] = group_id
        upsert = BroadcastUpsert(
            id=broadcast.id, name=name, segment_id=segment_id, subscription_group_id=group_id
        )
        return write_v2(session, screen, raw, upsert).id

    saved = await in_transaction(request, write)
    return navigate(request, step_url(screen, saved, "RECIPIENTS", saved="1"))


# -- CONTENT -----------------------------------------------------------------------------------------


async def save_content(request: Request, screen: Screen) -> Response:
    """The message template. Picking one of another channel moves a Draft to that channel: its
    config's message type and the channel's oldest subscription group, as a new broadcast gets."""
    form, broadcast_id = await _editing(request, screen)
    template_id = optional_id(form, "messageTemplateId")
    if template_id is UNSET:
        raise InvalidInput("messageTemplateId is missing", field="messageTemplateId")

    def write(session: Session) -> str:
        _check_step(session, screen, "CONTENT")
        broadcast = load_v2(session, screen.workspace_id, broadcast_id)
        raw: dict[str, Any] = {"id": broadcast.id, "messageTemplateId": template_id}
        upsert = BroadcastUpsert(id=broadcast.id, message_template_id=template_id)
        if template_id is not None:
            template = find_in_workspace(session, MessageTemplate, screen.workspace_id, template_id)
            if template is None:
                raise InvalidInput(
                    "messageTemplateId names no message template of this workspace", field="messageTemplateId"
                )
            channel = template_channel(template)
            if channel and channel != channel_of(broadcast) and broadcast.status == BroadcastStatus.DRAFT:
                config = {**(broadcast.config or {"type": "V2"}), "message": {"type": channel}}
                group = resources.oldest_group(session, screen.workspace_id, channel)
                raw.update(config=config, subscriptionGroupId=group)
                upsert = replace(upsert, config=config, subscription_group_id=group)
        return write_v2(session, screen, raw, upsert).id

    saved = await in_transaction(request, write)
    return navigate(request, step_url(screen, saved, "CONTENT", saved="1"))


# -- CONFIGURATION -----------------------------------------------------------------------------------


def _set(document: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        document.pop(key, None)
    else:
        document[key] = value


def rate_limit_of(text: str) -> float | int | None:
    """:raises InvalidInput: naming `rateLimit`, when it is not a number above 0."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput("rateLimit must be a number of messages per second above 0", field="rateLimit")
    return int(value) if value.is_integer() else value


def config_from_form(form: FormData, broadcast: Broadcast) -> tuple[dict[str, Any], Any]:
    """The broadcast's config and scheduledAt (UNSET: not sent) with the posted fields applied.

    :raises InvalidInput: naming the field.
    """
    config: dict[str, Any] = copy.deepcopy(broadcast.config or {"type": "V2"})
    stored_message = config.get("message")
    message = dict(stored_message) if isinstance(stored_message, dict) else {"type": channel_of(broadcast)}
    if "providerOverride" in form:
        _set(message, "providerOverride", form_text(form, "providerOverride").strip() or None)
    config["message"] = message
    if "rateLimit" in form:
        _set(config, "rateLimit", rate_limit_of(form_text(form, "rateLimit").strip()))
    if "errorHandling" in form:
        handling = form_text(form, "errorHandling").strip()
        if handling and handling not in ERROR_HANDLING:
            raise InvalidInput(
                f"errorHandling must be one of {', '.join(ERROR_HANDLING)}", field="errorHandling"
            )
        _set(config, "errorHandling", handling or None)
    scheduled_at: Any = UNSET
    if "schedule" in form:
        mode = form_text(form, "schedule")
        if mode not in ("now", "later"):
            raise InvalidInput("schedule must be now or later", field="schedule")
        _set(config, "defaultTimezone", form_text(form, "defaultTimezone").strip() or None)
        _set(config, "useIndividualTimezone", True if "useIndividualTimezone" in form else None)
        if mode == "later":
            scheduled_at = required_text(form, "scheduledAt")
            resources.validate_scheduled_at(scheduled_at, field="scheduledAt")
            if not config.get("defaultTimezone"):
                raise InvalidInput(
                    "defaultTimezone is needed to schedule a broadcast", field="defaultTimezone"
                )
        else:
            scheduled_at = None
    return config, scheduled_at


async def save_configuration(request: Request, screen: Screen) -> Response:
    form, broadcast_id = await _editing(request, screen)

    def write(session: Session) -> str:
        _check_step(session, screen, "CONFIGURATION")
        broadcast = load_v2(session, screen.workspace_id, broadcast_id)
        config, scheduled_at = config_from_form(form, broadcast)
        raw: dict[str, Any] = {"id": broadcast.id, "config": config}
        if scheduled_at is not UNSET:
            raw["scheduledAt"] = scheduled_at
        upsert = BroadcastUpsert(id=broadcast.id, config=config, scheduled_at=scheduled_at)
        return write_v2(session, screen, raw, upsert).id

    saved = await in_transaction(request, write)
    return navigate(request, step_url(screen, saved, "CONFIGURATION", saved="1"))


# -- lifecycle ---------------------------------------------------------------------------------------


def _start(session: Session, workspace_id: str, broadcast_id: str) -> Broadcast:
    return lifecycle.start_broadcast(session, workspace_id, broadcast_id, now=datetime.now(UTC))


def transition(change: Transition) -> Callable[[Request, Screen], Any]:
    async def handle(request: Request, screen: Screen) -> Response:
        check_may_write(screen)
        form = await read_form(request)
        broadcast_id = required_text(form, "id")
        check_in_reach(screen, {"broadcastId": broadcast_id})
        step = parse_step(form_text(form, "step"))

        def write(session: Session) -> str:
            broadcast = load_v2(session, screen.workspace_id, broadcast_id)
            return change(session, screen.workspace_id, broadcast.id).id

        moved = await in_transaction(request, write)
        return navigate(request, step_url(screen, moved, step))

    return handle


ACTIONS: dict[str, Transition] = {
    "start": _start,
    "pause": lifecycle.pause_broadcast,
    "resume": lifecycle.resume_broadcast,
    "cancel": lifecycle.cancel_broadcast,
}

routes: list[Route] = [
    *screen_routes(
        f"{EDITOR_PATH}/recipients",
        save_recipients,
        component=COMPONENT,
        name="broadcasts:recipients",
        methods=["POST"],
    ),
    *screen_routes(
        f"{EDITOR_PATH}/content",
        save_content,
        component=COMPONENT,
        name="broadcasts:content",
        methods=["POST"],
    ),
    *screen_routes(
        f"{EDITOR_PATH}/configuration",
        save_configuration,
        component=COMPONENT,
        name="broadcasts:configuration",
        methods=["POST"],
    ),
]
for _action, _change in ACTIONS.items():
    routes += screen_routes(
        f"{EDITOR_PATH}/{_action}",
        transition(_change),
        component=COMPONENT,
        name=f"broadcasts:{_action}",
        methods=["POST"],
    )
