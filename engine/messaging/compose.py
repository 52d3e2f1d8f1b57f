"""Turning a template definition and one recipient's render context into the message a provider sends
(Dittofeed §7.6): every Liquid field rendered, email bodies compiled from MJML (LowCode documents
converted to MJML first), and the List-Unsubscribe headers of RFC 2369 / RFC 8058.

A field that fails to render raises FieldRenderError naming the field, which the send pipeline records
as MessageTemplateRenderError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.messaging.emailo import emailo_to_mjml
from engine.messaging.links import unsubscribe_url
from engine.messaging.providers.base import Attachment, EmailMessage, PushMessage, SmsMessage
from engine.messaging.render import RenderContext, RenderError, render_email_body, render_liquid


class FieldRenderError(Exception):
    def __init__(self, field: str, error: str) -> None:
        super().__init__(f"{field}: {error}")
        self.field = field
        self.error = error


def _render(field: str, source: Any, context: RenderContext, *, html: bool = False) -> str:
    if source is None:
        return ""
    if not isinstance(source, str):
        raise FieldRenderError(field, "must be a string")
    try:
        return render_liquid(source, context, html=html)
    except RenderError as error:
        raise FieldRenderError(field, error.message) from None


def render_email_source(definition: Mapping[str, Any], context: RenderContext) -> str:
    """The email body as HTML: LowCode documents become MJML, then Liquid, then MJML to HTML."""
    body = definition.get("body")
    if definition.get("emailContentsType") == "LowCode":
        try:
            body = emailo_to_mjml(body) if isinstance(body, dict) else body
        except RenderError as error:
            raise FieldRenderError("body", error.message) from None
    if not isinstance(body, str):
        raise FieldRenderError("body", "must be a string")
    try:
        return render_email_body(body, context)
    except RenderError as error:
        raise FieldRenderError("body", error.message) from None


def _addresses(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def list_unsubscribe_headers(
    context: RenderContext, group_id: str, group_name: str, from_address: str
) -> dict[str, str]:
    """List-Unsubscribe (with RFC 8058 one-click) and List-ID, when the message can carry a link."""
    url = unsubscribe_url(context)
    if not url:
        return {}
    domain = from_address.rpartition("@")[2].strip(" >") or "feedgate.invalid"
    # A List-ID phrase may not hold characters that end or escape it.
    phrase = (
        group_name.replace('"', "").replace("<", "").replace(">", "").replace("\r", "").replace("\n", " ")
    )
    return {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-ID": f'"{phrase}" <{group_id}.{domain}>',
    }


def compose_email(
    definition: Mapping[str, Any],
    context: RenderContext,
    to: str,
    *,
    extra_headers: Mapping[str, str] = {},
    attachments: Sequence[Attachment] = (),
    tags: Mapping[str, str] = {},
) -> EmailMessage:
    headers = {
        str(header.get("name")): _render(f"headers.{header.get('name')}", header.get("value"), context)
        for header in definition.get("headers") or []
        if isinstance(header, dict)
    }
    reply_to = _render("replyTo", definition.get("replyTo"), context).strip()
    name = _render("name", definition.get("name"), context).strip()
    return EmailMessage(
        from_address=_render("from", definition.get("from"), context).strip(),
        to=to,
        subject=_render("subject", definition.get("subject"), context),
        body=render_email_source(definition, context),
        reply_to=reply_to or None,
        cc=_addresses(_render("cc", definition.get("cc"), context)),
        bcc=_addresses(_render("bcc", definition.get("bcc"), context)),
        name=name or None,
        headers={**headers, **extra_headers},
        attachments=tuple(attachments),
        tags=tags,
    )


def compose_sms(
    definition: Mapping[str, Any],
    context: RenderContext,
    to: str,
    *,
    tags: Mapping[str, str] = {},
    status_callback_url: str | None = None,
) -> SmsMessage:
    body = _render("body", definition.get("body"), context)
    return SmsMessage(to=to, body=body, tags=tags, status_callback_url=status_callback_url)


def compose_push(
    definition: Mapping[str, Any],
    context: RenderContext,
    device_token: str,
    *,
    tags: Mapping[str, str] = {},
) -> PushMessage:
    return PushMessage(
        device_token=device_token,
        title=_render("title", definition.get("title"), context) or None,
        body=_render("body", definition.get("body"), context) or None,
        image_url=_render("imageUrl", definition.get("imageUrl"), context) or None,
        android=definition.get("android"),
        tags=tags,
    )


def render_webhook_body(definition: Mapping[str, Any], context: RenderContext) -> str:
    return _render("body", definition.get("body"), context)
