"""The message templates table (`/templates`): every authored template of the workspace with its
channel, last update and publication state, newest first, and a form that creates an email or SMS
template and opens its editor.

A new template starts with the channel's default definition (engine.messaging.templates), as
`content/templates/reset` does. In an embed, the MessageTemplate configuration shapes new email
templates: exactly one `allowedEmailContentsTypes` entry decides the editor type, and
`lowCodeEmailDefaultType` Empty starts a LowCode body empty instead of with the informative example.
A session minted for some `resourceIds` sees only those templates and creates none (it could not
open what it created).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.screens import Screen, navigate, render, screen_routes
from components.template_editing import (
    COMPONENT,
    PUBLICATION_LABELS,
    Publication,
    allowed_email_contents_types,
    check_may_write,
    form_text,
    publication_of,
    read_form,
    required_text,
)
from engine import configuration_enforcement
from engine.component_configurations import effective_configuration
from engine.errors import InvalidInput, PermissionDenied
from engine.messaging import templates
from engine.resource_lookup import NameTaken
from engine.storage.resource_models import MessageTemplate, ResourceType
from gateway.deps import in_transaction

EMAIL_CONTENTS_TYPES = ("Code", "LowCode")
# Channel -> the editor path of this screen family (webhook and push templates have none here).
EDITOR_PATHS = {"Email": "/templates/email", "Sms": "/templates/sms"}
CHANNEL_LABELS = {"Email": "Email", "Sms": "SMS", "Webhook": "Webhook", "MobilePush": "Mobile push"}
EMPTY_LOW_CODE_BODY: dict[str, Any] = {"type": "doc", "content": [{"type": "paragraph"}]}


@dataclass(frozen=True)
class TemplateRow:
    id: str
    name: str
    channel: str
    updated_at: datetime
    publication: Publication
    editor_url: str | None

    @property
    def channel_label(self) -> str:
        return CHANNEL_LABELS.get(self.channel, self.channel)

    @property
    def publication_label(self) -> str:
        return PUBLICATION_LABELS[self.publication]

    @property
    def updated_iso(self) -> str:
        return _utc(self.updated_at).isoformat().replace("+00:00", "Z")

    @property
    def updated_text(self) -> str:
        return _utc(self.updated_at).strftime("%Y-%m-%d %H:%M UTC")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def template_rows(session: Session, screen: Screen) -> list[TemplateRow]:
    """The workspace's authored (Declarative) templates within the session's reach, newest first."""
    reach = screen.embedded.resource_ids if screen.embedded is not None else None
    found = templates.list_templates(session, screen.workspace_id, resource_type=ResourceType.DECLARATIVE)
    rows = []
    for template in found:
        if reach is not None and template.id not in reach:
            continue
        document = template.definition or template.draft
        channel = str(document["type"]) if document else ""
        path = EDITOR_PATHS.get(channel)
        rows.append(
            TemplateRow(
                id=template.id,
                name=template.name,
                channel=channel,
                updated_at=template.updated_at,
                publication=publication_of(template),
                editor_url=screen.page(f"{path}/{template.id}") if path else None,
            )
        )
    return sorted(rows, key=lambda row: _utc(row.updated_at), reverse=True)


def new_email_contents_type(allowed: list[str] | None, asked: str) -> str:
    """The editor type of a new email template: the only allowed one, else the one asked for.

    :raises InvalidInput: naming `emailContentsType`, when the asked type is not Code or LowCode.
    """
    if allowed is not None and len(allowed) == 1:
        return allowed[0]
    if asked not in EMAIL_CONTENTS_TYPES:
        raise InvalidInput("emailContentsType must be Code or LowCode", field="emailContentsType")
    return asked


def create_template(
    session: Session, screen: Screen, name: str, channel: str, asked_contents_type: str
) -> MessageTemplate:
    """:raises NameTaken: another template has the name.
    :raises RefusedByConfiguration: the embed's configuration does not allow the email editor type."""
    taken = session.scalar(
        select(MessageTemplate.id).where(
            MessageTemplate.workspace_id == screen.workspace_id, MessageTemplate.name == name
        )
    )
    if taken is not None:
        raise NameTaken(message=f"name {name} is already another template's; names are unique")
    contents_type = None
    if channel == "Email":
        contents_type = new_email_contents_type(
            allowed_email_contents_types(session, screen), asked_contents_type
        )
    definition = templates.default_definition(session, screen.workspace_id, channel, contents_type)
    if contents_type == "LowCode" and screen.embedded is not None:
        config = effective_configuration(session, screen.workspace_id, "MessageTemplate")
        if config is not None and config.lowCodeEmailDefaultType == "Empty":
            definition = {**definition, "body": EMPTY_LOW_CODE_BODY}
    if screen.embedded is not None:
        configuration_enforcement.check_template_write(
            session, screen.workspace_id, {"body/definition": definition}, template_id=None, name=name
        )
    return templates.upsert_template(
        session, screen.workspace_id, templates.TemplateUpsert(name=name, definition=definition)
    )


# -- handlers ----------------------------------------------------------------------------------------


async def show(request: Request, screen: Screen) -> Response:
    def read(session: Session) -> tuple[list[TemplateRow], list[str] | None]:
        return template_rows(session, screen), allowed_email_contents_types(session, screen)

    rows, allowed = await in_transaction(request, read)
    email_types = list(EMAIL_CONTENTS_TYPES) if allowed is None else allowed
    return render(
        request,
        screen,
        "message_templates/table.html",
        rows=rows,
        email_types=email_types,
        can_create=screen.can_write and (screen.embedded is None or screen.embedded.resource_ids is None),
    )


async def create(request: Request, screen: Screen) -> Response:
    """Create the template, then open its editor (in place for htmx, by a redirect otherwise)."""
    check_may_write(screen)
    if screen.embedded is not None and screen.embedded.resource_ids is not None:
        raise PermissionDenied("This session may only open its resourceIds; it cannot create templates")
    form = await read_form(request)
    name = required_text(form, "name")
    channel = form_text(form, "channel")
    if channel not in EDITOR_PATHS:
        raise InvalidInput("channel must be Email or Sms", field="channel")
    asked = form_text(form, "emailContentsType", "Code")

    def write(session: Session) -> str:
        return create_template(session, screen, name, channel, asked).id

    template_id = await in_transaction(request, write)
    return navigate(request, screen.page(f"{EDITOR_PATHS[channel]}/{template_id}"))


routes: list[Route] = [
    *screen_routes("/templates", show, component=COMPONENT, name="templates"),
    *screen_routes("/templates/new", create, component=COMPONENT, name="templates:new", methods=["POST"]),
]
