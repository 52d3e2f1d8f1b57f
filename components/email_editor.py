"""The email template editor (`/templates/email?id=<id>` and `/templates/email/<id>`): sender,
subject, reply-to and body, in Code mode (an MJML or HTML textarea) or LowCode mode (a list of
blocks, components.email_blocks), with a live preview the engine renders for a sample or stored user.

The preview is shown in `<iframe sandbox srcdoc>` without `allow-scripts`: the rendered HTML is the
template author's, and an attribute-escaped srcdoc in a sandboxed frame cannot run it against this
page. A template that does not render is shown as the engine's error message, never a 500.

Save writes the draft; publish writes the definition and clears the draft, as the API does. The
editor type is the template's own (chosen when it was created); the posted mode only shapes previews.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.email_blocks import (
    NEW_BLOCK_KINDS,
    Block,
    apply_operation,
    blocks_from_document,
    blocks_from_form,
    document_from_blocks,
)
from components.screens import Screen, render, screen_routes
from components.template_editing import (
    COMPONENT,
    SAMPLE_USER,
    SAMPLE_USER_JSON,
    EditedTemplate,
    allowed_email_contents_types,
    check_may_read,
    check_template_in_reach,
    email_type_refused,
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
from engine.messaging.emailo import emailo_to_mjml
from engine.messaging.render import RenderContext, render_email_body, render_liquid
from engine.messaging.template_models import email_contents_type
from gateway.deps import in_transaction

Mode = Literal["Code", "LowCode"]
BLOCK_LABELS = {
    "heading": "Heading",
    "paragraph": "Paragraph",
    "button": "Button",
    "image": "Image",
    "divider": "Divider",
    "other": "Other content",
}


@dataclass(frozen=True)
class EmailFields:
    """What the editor edits of an email definition."""

    mode: Mode
    sender: str
    subject: str
    reply_to: str
    code: str = ""
    blocks: list[Block] = field(default_factory=list)

    @property
    def body(self) -> str | dict[str, Any]:
        return document_from_blocks(self.blocks) if self.mode == "LowCode" else self.code


@dataclass(frozen=True)
class EmailPreview:
    sender: str = ""
    subject: str = ""
    reply_to: str = ""
    html: str = ""
    error: str | None = None


def fields_of_document(document: dict[str, Any]) -> EmailFields:
    mode: Mode = "LowCode" if email_contents_type(document) == "LowCode" else "Code"
    body = document.get("body")
    return EmailFields(
        mode=mode,
        sender=str(document.get("from") or ""),
        subject=str(document.get("subject") or ""),
        reply_to=str(document.get("replyTo") or ""),
        code=body if isinstance(body, str) else "",
        blocks=blocks_from_document(body) if mode == "LowCode" else [],
    )


def fields_from_form(form: FormData, mode: Mode, *, complete: bool = False) -> EmailFields:
    """The posted fields; with `complete` (a save) each must be there, else a missing one is empty.

    :raises InvalidInput: naming the field, when a block is malformed or a field is missing.
    """
    missing = None if complete else ""
    return EmailFields(
        mode=mode,
        sender=form_text(form, "from", missing),
        subject=form_text(form, "subject", missing),
        reply_to=form_text(form, "replyTo", missing),
        code=form_text(form, "body", missing) if mode == "Code" else "",
        blocks=blocks_from_form(form, complete=complete) if mode == "LowCode" else [],
    )


def posted_mode(form: FormData) -> Mode:
    return "LowCode" if form_text(form, "emailContentsType") == "LowCode" else "Code"


def document_of(base: dict[str, Any], fields: EmailFields) -> dict[str, Any]:
    """`base` (the stored document: cc, headers and the like stay) with the edited fields."""
    return {
        **base,
        "type": "Email",
        "from": fields.sender,
        "subject": fields.subject,
        "replyTo": fields.reply_to,
        "emailContentsType": fields.mode,
        "body": fields.body,
    }


def render_preview(context: RenderContext, fields: EmailFields) -> EmailPreview:
    """Every field rendered as a send renders it; the first one that fails is the preview's error."""
    label = "From"
    try:
        sender = render_liquid(fields.sender, context)
        label = "Subject"
        subject = render_liquid(fields.subject, context)
        label = "Reply-to"
        reply_to = render_liquid(fields.reply_to, context)
        label = "Body"
        body = fields.body
        html = render_email_body(emailo_to_mjml(body) if isinstance(body, dict) else body, context)
    except InvalidInput as error:  # RenderError, or a malformed LowCode document
        return EmailPreview(error=f"{label}: {error.message}")
    return EmailPreview(sender=sender, subject=subject, reply_to=reply_to, html=html)


def _preview_for_form(
    request: Request, session: Session, screen: Screen, form: FormData, fields: EmailFields
) -> EmailPreview:
    try:
        user = preview_user(session, screen, form)
    except InvalidInput as error:
        return EmailPreview(error=error.message)
    context = render_context(request, session, screen.workspace_id, "Email", user)
    return render_preview(context, fields)


def _blocks_context(screen: Screen, blocks: list[Block]) -> dict[str, Any]:
    return {
        "blocks": blocks,
        "block_labels": BLOCK_LABELS,
        "new_block_kinds": NEW_BLOCK_KINDS,
        "blocks_url": screen.page("/templates/email/blocks"),
        "blocks_error": None,
    }


# -- handlers ----------------------------------------------------------------------------------------


async def show(request: Request, screen: Screen) -> Response:
    template_id = requested_template_id(request)
    check_template_in_reach(screen, template_id)

    def read(session: Session) -> tuple[EditedTemplate, EmailFields, list[str] | None, EmailPreview]:
        edited = open_template(session, screen.workspace_id, template_id, "Email")
        fields = fields_of_document(edited.document)
        user = {"id": PREVIEW_USER_ID, **SAMPLE_USER}
        context = render_context(request, session, screen.workspace_id, "Email", user)
        return edited, fields, allowed_email_contents_types(session, screen), render_preview(context, fields)

    edited, fields, allowed, preview = await in_transaction(request, read)
    refused = email_type_refused(allowed, edited.document)
    return render(
        request,
        screen,
        "message_templates/email_editor.html",
        edited=edited,
        fields=fields,
        preview=preview,
        allowed=allowed,
        refused=refused,
        writable=screen.can_write and not refused,
        sample_json=SAMPLE_USER_JSON,
        message=None,
        **_blocks_context(screen, fields.blocks),
    )


async def preview(request: Request, screen: Screen) -> Response:
    check_may_read(screen, "content")
    form = await read_form(request)
    mode = posted_mode(form)
    try:
        fields = fields_from_form(form, mode)
    except InvalidInput as error:
        return render(
            request,
            screen,
            "message_templates/_email_preview.html",
            preview=EmailPreview(error=error.message),
        )
    shown = await in_transaction(
        request, lambda session: _preview_for_form(request, session, screen, form, fields)
    )
    return render(request, screen, "message_templates/_email_preview.html", preview=shown)


async def edit_blocks(request: Request, screen: Screen) -> Response:
    """Apply one block operation (`op`) to the posted blocks; answer the blocks and, out of band,
    the preview of the result."""
    check_may_read(screen, "content")
    form = await read_form(request)
    fields = fields_from_form(form, "LowCode")
    try:
        blocks = apply_operation(fields.blocks, form_text(form, "op"))
    except InvalidInput as error:
        # Answer the blocks as they were: the swap must not leave the form without them.
        context = {**_blocks_context(screen, fields.blocks), "blocks_error": error.message}
        return render(
            request,
            screen,
            "message_templates/_email_blocks_update.html",
            status=400,
            preview=None,
            **context,
        )
    edited = EmailFields("LowCode", fields.sender, fields.subject, fields.reply_to, blocks=blocks)
    shown = await in_transaction(
        request, lambda session: _preview_for_form(request, session, screen, form, edited)
    )
    return render(
        request,
        screen,
        "message_templates/_email_blocks_update.html",
        preview=shown,
        **_blocks_context(screen, blocks),
    )


async def save_draft(request: Request, screen: Screen) -> Response:
    return await save_from_form(request, screen, "Email", _edited_document, publish=False)


async def publish(request: Request, screen: Screen) -> Response:
    return await save_from_form(request, screen, "Email", _edited_document, publish=True)


def _edited_document(form: FormData) -> Callable[[EditedTemplate], dict[str, Any]]:
    def build(edited: EditedTemplate) -> dict[str, Any]:
        # The template's own editor type decides how the body is read, whatever the form says.
        fields = fields_from_form(form, fields_of_document(edited.document).mode, complete=True)
        return document_of(edited.document, fields)

    return build


_PAGE = "/templates/email"
routes: list[Route] = [
    *screen_routes(_PAGE, show, component=COMPONENT, name="templates:email"),
    *screen_routes(
        f"{_PAGE}/preview", preview, component=COMPONENT, name="templates:email:preview", methods=["POST"]
    ),
    *screen_routes(
        f"{_PAGE}/blocks", edit_blocks, component=COMPONENT, name="templates:email:blocks", methods=["POST"]
    ),
    *screen_routes(
        f"{_PAGE}/save", save_draft, component=COMPONENT, name="templates:email:save", methods=["POST"]
    ),
    *screen_routes(
        f"{_PAGE}/publish", publish, component=COMPONENT, name="templates:email:publish", methods=["POST"]
    ),
    # Last: the id segment would otherwise also match the action paths above.
    *screen_routes(f"{_PAGE}/{{id}}", show, component=COMPONENT, name="templates:email:by_id"),
]
