"""The workspace-wide definitions on the settings pages: Subscription groups (name, channel, OptIn or
OptOut; engine.messaging.subscription_groups) and Component configurations (a JSON definition checked
by engine.component_configurations, whose 400s name the field inside it).

Each page lists what exists, edits one row at a time (`?edit=<id>` fills the form) and deletes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.settings_console import (
    COMPONENT_CONFIGURATIONS,
    SUBSCRIPTION_GROUPS,
    Outcome,
    SettingsPage,
    render_section,
    section_routes,
)
from engine import component_configurations
from engine.errors import InvalidInput
from engine.messaging import subscription_groups
from engine.storage.resource_models import ChannelType, SubscriptionGroupType
from gateway.deps import in_transaction
from gateway.inputs import validate

CHANNELS: tuple[str, ...] = tuple(channel.value for channel in ChannelType)
GROUP_TYPES: tuple[str, ...] = tuple(group_type.value for group_type in SubscriptionGroupType)


class _Form(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, str_strip_whitespace=True)


class GroupForm(_Form):
    id: str = ""
    name: str = Field(min_length=1, max_length=200)
    channel: Literal["Email", "MobilePush", "Sms", "Webhook"]
    type: Literal["OptIn", "OptOut"]


class ConfigurationForm(_Form):
    id: str = ""
    name: str = Field(min_length=1, max_length=200)
    definition: str = Field(min_length=1)


class DeleteForm(_Form):
    id: str = Field(min_length=1)


@dataclass(frozen=True)
class ConfigurationRow:
    id: str
    name: str
    type: str
    definition: str


async def show_groups(request: Request, page: SettingsPage, outcome: Outcome) -> Response:
    def read(session: Session) -> list[dict[str, Any]]:
        return [
            subscription_groups.subscription_group_resource(session, group)
            for group in subscription_groups.list_subscription_groups(session, page.workspace_id)
        ]

    groups = await in_transaction(request, read)
    editing = _editing(request, outcome, groups)
    return render_section(
        request,
        page,
        "settings/subscription_groups.html",
        outcome,
        groups=groups,
        editing=editing,
        channels=CHANNELS,
        group_types=GROUP_TYPES,
    )


async def save_group(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    body = validate(GroupForm, form)
    upsert = subscription_groups.SubscriptionGroupUpsert(
        channel=ChannelType(body.channel),
        type=SubscriptionGroupType(body.type),
        id=body.id or None,
        name=body.name,
    )

    def write(session: Session) -> None:
        if upsert.id is None:
            taken = subscription_groups.list_subscription_groups(session, page.workspace_id)
            _refuse_taken(body.name, {group.name for group in taken})
        subscription_groups.upsert_subscription_group(session, page.workspace_id, upsert)

    await in_transaction(request, write)
    return Outcome(notice=f"Subscription group {body.name!r} saved.")


async def delete_group(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    group_id = validate(DeleteForm, form).id

    def write(session: Session) -> None:
        subscription_groups.delete_subscription_group(session, page.workspace_id, group_id)

    await in_transaction(request, write)
    return Outcome(notice="Subscription group deleted.")


async def show_configurations(request: Request, page: SettingsPage, outcome: Outcome) -> Response:
    def read(session: Session) -> list[ConfigurationRow]:
        return [
            ConfigurationRow(
                row.id,
                row.name,
                str(row.definition.get("type", "")) if isinstance(row.definition, dict) else "",
                json.dumps(row.definition, indent=2, ensure_ascii=False),
            )
            for row in component_configurations.list_configurations(session, page.workspace_id)
        ]

    rows = await in_transaction(request, read)
    editing = _editing(request, outcome, [row.__dict__ for row in rows])
    return render_section(
        request,
        page,
        "settings/component_configurations.html",
        outcome,
        configurations=rows,
        editing=editing,
        component_types=component_configurations.COMPONENT_TYPES,
    )


async def save_configuration(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    body = validate(ConfigurationForm, form)
    try:
        definition = json.loads(body.definition)
    except ValueError as error:
        raise InvalidInput(f"body/definition is not valid JSON: {error}", field="body/definition") from None

    def write(session: Session) -> None:
        if not body.id:
            taken = component_configurations.list_configurations(session, page.workspace_id)
            _refuse_taken(body.name, {row.name for row in taken})
        component_configurations.upsert_configuration(
            session, page.workspace_id, body.name, body.id or None, definition
        )

    await in_transaction(request, write)
    return Outcome(notice=f"Component configuration {body.name!r} saved.")


async def delete_configuration(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    configuration_id = validate(DeleteForm, form).id

    def write(session: Session) -> None:
        component_configurations.delete_configuration(session, page.workspace_id, configuration_id)

    await in_transaction(request, write)
    return Outcome(notice="Component configuration deleted.")


def _refuse_taken(name: str, taken: set[str]) -> None:
    """The form's "new" creates: the engine's upsert would update the row with that name instead."""
    if name in taken:
        raise InvalidInput(f"body/name {name!r} is taken: edit that one instead", field="body/name")


def _editing(request: Request, outcome: Outcome, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The form's values: what was just posted with a mistake, else the row `?edit=<id>` names, else
    a blank form."""
    if outcome.error and "name" in outcome.form:
        return dict(outcome.form)
    wanted = request.query_params.get("edit")
    return next((dict(row) for row in rows if wanted and row["id"] == wanted), {})


routes: list[Route] = [
    *section_routes(SUBSCRIPTION_GROUPS, show_groups, {"save": save_group, "delete": delete_group}),
    *section_routes(
        COMPONENT_CONFIGURATIONS,
        show_configurations,
        {"save": save_configuration, "delete": delete_configuration},
    ),
]
