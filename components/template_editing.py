"""What the template screens (table, email editor, SMS editor) share: reading their forms, opening one
template of a channel within the session's reach, who a preview renders for, and the guarded write.

Writes apply the same rules as `content/templates` on the API: in an embed the session's scope must
allow writing `content` and the workspace's MessageTemplate/Broadcast configurations must allow the
email editor type (engine.configuration_enforcement); in the console the member needs the Author role.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from components.screens import Screen, render
from engine import configuration_enforcement
from engine.component_configurations import effective_configuration
from engine.errors import InvalidInput, NotFound
from engine.messaging import templates
from engine.messaging.batch_send import PREVIEW_USER_ID
from engine.messaging.recipients import load_user_properties
from engine.messaging.render import RenderContext
from engine.messaging.template_models import (
    DEFAULT_IDENTIFIER_KEYS,
    email_contents_type,
    validate_template_definition,
)
from engine.storage.resource_models import MessageTemplate
from gateway.deps import in_transaction
from gateway.embed_policy import check_resource_ids, check_scope

COMPONENT = "MessageTemplate"
# Enough for the largest block list the email editor accepts (each block is a handful of fields).
MAX_FORM_FIELDS = 4_000
# Who a preview renders for until the editor names a stored user or edits these.
SAMPLE_USER: dict[str, Any] = {
    "email": "test@example.com",
    "phone": "+15555550123",
    "firstName": "Jane",
    "lastName": "Doe",
}
SAMPLE_USER_JSON = json.dumps(SAMPLE_USER, indent=2)

Publication = Literal["published", "changed", "unpublished"]
PUBLICATION_LABELS: dict[Publication, str] = {
    "published": "Published",
    "changed": "Published · draft changes",
    "unpublished": "Draft · not published",
}


@dataclass(frozen=True)
class EditedTemplate:
    """A template as an editor opens it: the draft when there is one, else the published definition."""

    id: str
    name: str
    document: dict[str, Any]
    publication: Publication

    @property
    def publication_label(self) -> str:
        return PUBLICATION_LABELS[self.publication]


# -- forms -------------------------------------------------------------------------------------------


async def read_form(request: Request) -> FormData:
    """The posted form (htmx posts url-encoded fields)."""
    return await request.form(max_fields=MAX_FORM_FIELDS)


def form_text(form: FormData, field: str, default: str | None = "") -> str:
    """The field's text; a missing field is `default`, or refused when that is None (a save must not
    take a field the page failed to send for an emptied one).

    :raises InvalidInput: naming `field`, when it was sent as a file, or is missing without a default.
    """
    value = form.get(field, default)
    if value is None:
        raise InvalidInput(f"{field} is missing", field=field)
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text", field=field)
    return value


def required_text(form: FormData, field: str) -> str:
    """:raises InvalidInput: naming `field`, when it is missing or blank."""
    value = form_text(form, field).strip()
    if not value:
        raise InvalidInput(f"{field} must not be empty", field=field)
    return value


# -- reach and permission ----------------------------------------------------------------------------


def requested_template_id(request: Request) -> str:
    """The template an editor page opens: `/templates/<channel>/<id>` or `?id=`.

    :raises InvalidInput: naming `id`, when neither is given.
    """
    template_id = request.path_params.get("id") or request.query_params.get("id")
    if not template_id:
        raise InvalidInput("id must name a message template", field="id")
    return str(template_id)


def check_template_in_reach(screen: Screen, template_id: str) -> None:
    """:raises PermissionDenied: the embed session was minted for other resources."""
    if screen.embedded is not None:
        check_resource_ids(screen.embedded.resource_ids, {"id": template_id}, None)


def check_may_write(screen: Screen) -> None:
    screen.check_write("content", "templates")


def check_may_read(screen: Screen, group: str) -> None:
    """:raises PermissionDenied: the embed session's scope does not allow reading `group`."""
    if screen.embedded is not None:
        check_scope(screen.embedded.components, group, "read")


def allowed_email_contents_types(session: Session, screen: Screen) -> list[str] | None:
    """The email editor types the embed's MessageTemplate configuration allows; None = all (and
    always in the console, which no component configuration shapes)."""
    if screen.embedded is None:
        return None
    config = effective_configuration(session, screen.workspace_id, "MessageTemplate")
    return (
        None
        if config is None or config.allowedEmailContentsTypes is None
        else list(config.allowedEmailContentsTypes)
    )


# -- reading -----------------------------------------------------------------------------------------


def publication_of(template: MessageTemplate) -> Publication:
    if template.definition is None:
        return "unpublished"
    return "published" if template.draft is None else "changed"


def open_template(session: Session, workspace_id: str, template_id: str, channel: str) -> EditedTemplate:
    """:raises NotFound: no such template in the workspace, or it is not of `channel`."""
    template = templates.find_template(session, workspace_id, template_id)
    document = template.draft or template.definition
    if document is None or document.get("type") != channel:
        kind = document.get("type") if document else "an empty"
        raise NotFound(f"Message template {template.name} is {kind} template, not {channel}")
    return EditedTemplate(template.id, template.name, document, publication_of(template))


def preview_user(session: Session, screen: Screen, form: FormData) -> dict[str, Any]:
    """The user a preview renders for: a stored user's properties when `previewUserId` names one,
    else the sample properties (JSON) the editor shows.

    :raises InvalidInput: naming the field, when the user has no stored properties or the JSON is
        not an object.
    """
    user_id = form_text(form, "previewUserId").strip()
    if user_id:
        check_may_read(screen, "users")
        stored = load_user_properties(session, screen.workspace_id, [user_id]).get(user_id)
        if stored is None:
            raise InvalidInput(
                f"previewUserId {user_id} has no stored user properties", field="previewUserId"
            )
        return stored
    raw = form_text(form, "sampleProperties", SAMPLE_USER_JSON)
    try:
        sample = json.loads(raw) if raw.strip() else {}
    except ValueError as error:
        raise InvalidInput(f"sampleProperties is not valid JSON: {error}", field="sampleProperties") from None
    if not isinstance(sample, dict):
        raise InvalidInput("sampleProperties must be a JSON object", field="sampleProperties")
    return {"id": PREVIEW_USER_ID, **sample}


def render_context(
    request: Request, session: Session, workspace_id: str, channel: str, user: dict[str, Any]
) -> RenderContext:
    """A preview's render context, as `content/templates/render` builds it."""
    return RenderContext(
        workspace_id=workspace_id,
        user=user,
        identifier_key=DEFAULT_IDENTIFIER_KEYS.get(channel),
        secrets=templates.load_render_secrets(session, workspace_id),
        is_preview=True,
        base_url=request.app.state.settings.dashboard_url,
    )


# -- writing -----------------------------------------------------------------------------------------


def save_template(
    session: Session,
    screen: Screen,
    edited: EditedTemplate,
    name: str,
    document: dict[str, Any],
    *,
    publish: bool,
) -> EditedTemplate:
    """Write `document` as the draft, or publish it (the definition, draft cleared), as the API does.

    :raises InvalidInput: naming the field, when the document or name is not valid.
    :raises RefusedByConfiguration: the embed's configuration does not allow the email editor type.
    """
    where = "body/definition" if publish else "body/draft"
    validate_template_definition(document, where=where)
    if screen.embedded is not None:
        configuration_enforcement.check_template_write(
            session, screen.workspace_id, {where: document}, template_id=edited.id, name=name
        )
    upsert = (
        templates.TemplateUpsert(name=name, id=edited.id, definition=document, draft=None)
        if publish
        else templates.TemplateUpsert(name=name, id=edited.id, draft=document)
    )
    template = templates.upsert_template(session, screen.workspace_id, upsert)
    saved = template.draft or template.definition
    assert saved is not None
    return EditedTemplate(template.id, template.name, saved, publication_of(template))


def saved_message(*, publish: bool) -> str:
    """What the editor says after a save; the time shows that a repeated click did save again."""
    return f"{'Published' if publish else 'Draft saved'} at {datetime.now(UTC):%H:%M:%S} UTC"


def email_type_refused(allowed: list[str] | None, document: dict[str, Any]) -> bool:
    """Whether saving `document` would be refused by the allowed email editor types."""
    contents = email_contents_type(document)
    return allowed is not None and contents is not None and contents not in allowed


# Reads an editor's posted form (before any SQL) into what turns a stored template into the edited one.
DocumentFromForm = Callable[[FormData], Callable[[EditedTemplate], dict[str, Any]]]


async def save_from_form(
    request: Request, screen: Screen, channel: str, edited_document: DocumentFromForm, *, publish: bool
) -> Response:
    """An editor's save or publish: the form's template, name and document written as a draft or
    published, answered with the save-status fragment."""
    check_may_write(screen)
    form = await read_form(request)
    template_id = required_text(form, "id")
    check_template_in_reach(screen, template_id)
    name = required_text(form, "name")
    document_for = edited_document(form)

    def write(session: Session) -> EditedTemplate:
        edited = open_template(session, screen.workspace_id, template_id, channel)
        return save_template(session, screen, edited, name, document_for(edited), publish=publish)

    saved = await in_transaction(request, write)
    return render(
        request,
        screen,
        "message_templates/_save_status.html",
        edited=saved,
        message=saved_message(publish=publish),
    )
