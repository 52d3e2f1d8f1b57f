"""The shapes of message template definitions (Dittofeed §7.4), as pydantic models of upstream's
TypeBox schemas, and `validate_template_definition`, which checks a document against them.

Definitions are stored as the client sent them (unknown fields kept, as TypeBox allows); the
Liquid inside them is checked when rendered, not here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.definitions import check_storable, parse_document
from engine.errors import InvalidInput

Channel = Literal["Email", "Sms", "Webhook", "MobilePush"]
CHANNELS: tuple[Channel, ...] = ("Email", "Sms", "Webhook", "MobilePush")
# The user property holding each channel's recipient when a definition names none.
DEFAULT_IDENTIFIER_KEYS: dict[str, str] = {"Email": "email", "Sms": "phone", "MobilePush": "deviceToken"}


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class EmailHeader(_Shape):
    name: str
    value: str


class _EmailBase(_Shape):
    type: Literal["Email"]
    from_: str = Field(alias="from")
    subject: str
    replyTo: str | None = None
    cc: str | None = None
    bcc: str | None = None
    name: str | None = None
    headers: list[EmailHeader] | None = None
    attachmentUserProperties: list[str] | None = None
    identifierKey: str | None = None


class CodeEmail(_EmailBase):
    emailContentsType: Literal["Code"] | None = None
    body: str


class LowCodeEmail(_EmailBase):
    emailContentsType: Literal["LowCode"]
    # A rich-text (TipTap-style) document: {type?, attrs?, content?, marks?, text?} nodes.
    body: dict[str, Any]


class SmsDefinition(_Shape):
    type: Literal["Sms"]
    body: str
    identifierKey: str | None = None


class WebhookDefinition(_Shape):
    type: Literal["Webhook"]
    identifierKey: str
    body: str


class MobilePushDefinition(_Shape):
    type: Literal["MobilePush"]
    title: str | None = None
    body: str | None = None
    imageUrl: str | None = None
    android: dict[str, Any] | None = None


def _email_variant(raw: dict[str, Any]) -> str:
    return "LowCode" if raw.get("emailContentsType") == "LowCode" else "Code"


_MODELS: dict[str, type[_Shape]] = {
    "Sms": SmsDefinition,
    "Webhook": WebhookDefinition,
    "MobilePush": MobilePushDefinition,
}


def validate_template_definition(raw: Any, *, where: str = "body/definition") -> dict[str, Any]:
    """Return `raw`, unchanged, if it is a valid template definition of any channel.

    :raises InvalidInput: naming the first offending field under `where`.
    """
    check_storable(raw, where)
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be an object", field=where)
    kind = raw.get("type")
    if kind == "Email":
        model: type[_Shape] = LowCodeEmail if _email_variant(raw) == "LowCode" else CodeEmail
    elif isinstance(kind, str) and kind in _MODELS:
        model = _MODELS[kind]
    else:
        field = f"{where}/type"
        raise InvalidInput(f"{field} must be one of {', '.join(CHANNELS)}", field=field)
    parse_document(model.model_validate, raw, where)
    return raw


def channel_of(definition: dict[str, Any]) -> str:
    return str(definition["type"])


def email_contents_type(definition: dict[str, Any]) -> str | None:
    return _email_variant(definition) if definition.get("type") == "Email" else None
