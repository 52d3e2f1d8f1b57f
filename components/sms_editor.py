"""The SMS template editor (`/templates/sms?id=<id>` and `/templates/sms/<id>`): the body, the message
the engine renders from it for a sample or stored user, and what that message costs (characters,
encoding, segments: components.sms_segments), refreshed as the body is typed.

Save writes the draft; publish writes the definition and clears the draft, as the API does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.screens import Screen, render, screen_routes
from components.sms_segments import SmsSize, measure_sms
from components.template_editing import (
    COMPONENT,
    SAMPLE_USER,
    SAMPLE_USER_JSON,
    EditedTemplate,
    check_may_read,
    check_template_in_reach,
    form_text,
    open_template,
    preview_user,
    read_form,
    render_context,
    requested_template_id,
    save_from_form,
)
from engine.errors import InvalidInput
from engine.messaging.batch_send import PREVIEW_USER_ID
from engine.messaging.render import RenderContext, render_liquid
from gateway.deps import in_transaction


@dataclass(frozen=True)
class SmsPreview:
    """The rendered message (None when it does not render) and the size of what is measured: the
    rendered message, else the template text itself."""

    text: str | None
    size: SmsSize
    error: str | None = None

    @property
    def measures_template(self) -> bool:
        return self.text is None


def render_sms_preview(context: RenderContext, body: str) -> SmsPreview:
    try:
        text = render_liquid(body, context)
    except InvalidInput as error:
        return SmsPreview(text=None, size=measure_sms(body), error=f"Body: {error.message}")
    return SmsPreview(text=text, size=measure_sms(text))


def _preview_for_form(request: Request, session: Session, screen: Screen, form: FormData) -> SmsPreview:
    body = form_text(form, "body")
    try:
        user = preview_user(session, screen, form)
    except InvalidInput as error:
        return SmsPreview(text=None, size=measure_sms(body), error=error.message)
    return render_sms_preview(render_context(request, session, screen.workspace_id, "Sms", user), body)


def document_of(base: dict[str, Any], body: str) -> dict[str, Any]:
    """`base` (the stored document: identifierKey and the like stay) with the edited body."""
    return {**base, "type": "Sms", "body": body}


async def show(request: Request, screen: Screen) -> Response:
    template_id = requested_template_id(request)
    check_template_in_reach(screen, template_id)

    def read(session: Session) -> tuple[EditedTemplate, SmsPreview]:
        edited = open_template(session, screen.workspace_id, template_id, "Sms")
        user = {"id": PREVIEW_USER_ID, **SAMPLE_USER}
        context = render_context(request, session, screen.workspace_id, "Sms", user)
        return edited, render_sms_preview(context, str(edited.document.get("body") or ""))

    edited, shown = await in_transaction(request, read)
    return render(
        request,
        screen,
        "message_templates/sms_editor.html",
        edited=edited,
        body=str(edited.document.get("body") or ""),
        preview=shown,
        writable=screen.can_write,
        sample_json=SAMPLE_USER_JSON,
        message=None,
    )


async def preview(request: Request, screen: Screen) -> Response:
    check_may_read(screen, "content")
    form = await read_form(request)
    shown = await in_transaction(request, lambda session: _preview_for_form(request, session, screen, form))
    return render(request, screen, "message_templates/_sms_preview.html", preview=shown)


async def save_draft(request: Request, screen: Screen) -> Response:
    return await save_from_form(request, screen, "Sms", _edited_document, publish=False)


async def publish(request: Request, screen: Screen) -> Response:
    return await save_from_form(request, screen, "Sms", _edited_document, publish=True)


def _edited_document(form: FormData) -> Callable[[EditedTemplate], dict[str, Any]]:
    body = form_text(form, "body", None)
    return lambda edited: document_of(edited.document, body)


_PAGE = "/templates/sms"
routes: list[Route] = [
    *screen_routes(_PAGE, show, component=COMPONENT, name="templates:sms"),
    *screen_routes(
        f"{_PAGE}/preview", preview, component=COMPONENT, name="templates:sms:preview", methods=["POST"]
    ),
    *screen_routes(
        f"{_PAGE}/save", save_draft, component=COMPONENT, name="templates:sms:save", methods=["POST"]
    ),
    *screen_routes(
        f"{_PAGE}/publish", publish, component=COMPONENT, name="templates:sms:publish", methods=["POST"]
    ),
    # Last: the id segment would otherwise also match the action paths above.
    *screen_routes(f"{_PAGE}/{{id}}", show, component=COMPONENT, name="templates:sms:by_id"),
]
