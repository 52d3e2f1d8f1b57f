"""Message templates as resources (Dittofeed §6.1): listing, the upsert with upstream's semantics
(published `definition` and `draft`), reset to a channel's default, and deletion, in the wire form of
`MessageTemplateResource`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.bootstrap import SUBSCRIPTION_SECRET_NAME
from engine.definitions import check_storable
from engine.errors import InvalidInput, NotFound
from engine.messaging.template_models import DEFAULT_IDENTIFIER_KEYS, email_contents_type
from engine.resource_lookup import NameTaken, find_for_upsert, find_in_workspace, parse_resource_id
from engine.resources import UNSET, canonical_uuid, epoch_ms
from engine.storage.models import Secret
from engine.storage.resource_models import DefaultEmailProvider, MessageTemplate, ResourceType, UserProperty


class InvalidIdentifierKey(InvalidInput):
    def __init__(self, key: str) -> None:
        message = f"identifierKey {key!r} names no user property of the workspace"
        super().__init__(
            message,
            field="identifierKey",
            body={"type": "InvalidIdentifierKey", "message": message, "identifierKey": key},
        )


@dataclass(frozen=True)
class TemplateUpsert:
    """A validated `PUT content/templates` body; None means "not sent", except `draft` (UNSET)."""

    name: str
    id: str | None = None
    definition: dict[str, Any] | None = None
    draft: dict[str, Any] | None = UNSET
    resource_type: ResourceType | None = None


def template_resource(template: MessageTemplate) -> dict[str, Any]:
    """The template as Dittofeed's `MessageTemplateResource`."""
    resource: dict[str, Any] = {
        "workspaceId": template.workspace_id,
        "id": template.id,
        "name": template.name,
        "updatedAt": epoch_ms(template.updated_at),
    }
    shown = template.definition or template.draft
    if shown is not None:
        resource["type"] = shown["type"]
    if template.definition is not None:
        resource["definition"] = template.definition
    if template.draft is not None:
        resource["draft"] = template.draft
    return resource


def list_templates(
    session: Session, workspace_id: str, *, ids: Sequence[str] = (), resource_type: ResourceType | None = None
) -> list[MessageTemplate]:
    query = select(MessageTemplate).where(MessageTemplate.workspace_id == workspace_id)
    if ids:
        query = query.where(MessageTemplate.id.in_([canonical_uuid(i) or i for i in ids]))
    if resource_type is not None:
        query = query.where(MessageTemplate.resource_type == resource_type)
    return list(session.scalars(query.order_by(MessageTemplate.created_at, MessageTemplate.name)))


def upsert_template(session: Session, workspace_id: str, upsert: TemplateUpsert) -> MessageTemplate:
    """Create or update by `id` when given, else by name; fields not sent are left as they are.

    :raises ResourceIdError: `id` is not a UUID.
    :raises NameTaken: the name is another template's, or the id another workspace's.
    :raises InvalidIdentifierKey: an Email/SMS definition names a user property that does not exist.
    """
    check_storable(upsert.name, "body/name")
    template_id = parse_resource_id(upsert.id, "message template")
    for document in (upsert.definition, upsert.draft):
        if isinstance(document, dict):
            _check_identifier_key(session, workspace_id, document)
    template = find_for_upsert(session, MessageTemplate, workspace_id, template_id, upsert.name)
    if template is None:
        template = MessageTemplate(workspace_id=workspace_id, name=upsert.name)
        if template_id is not None:
            template.id = template_id
        session.add(template)
    template.name = upsert.name
    if upsert.definition is not None:
        previous = template.definition
        template.definition = upsert.definition
        # A draft of another channel or contents type no longer fits the published template.
        if previous is not None and _shape(previous) != _shape(upsert.definition):
            template.draft = None
    if upsert.draft is not UNSET:
        template.draft = upsert.draft
    if upsert.resource_type is not None:
        template.resource_type = upsert.resource_type
    try:
        session.flush()
    except IntegrityError:
        raise NameTaken() from None
    return template


def reset_template(
    session: Session, workspace_id: str, name: str, channel: str, contents_type: str | None
) -> MessageTemplate:
    """Upsert by name with the channel's default definition (`PUT content/templates/reset`)."""
    definition = default_definition(session, workspace_id, channel, contents_type)
    return upsert_template(session, workspace_id, TemplateUpsert(name=name, definition=definition))


def delete_template(session: Session, workspace_id: str, template_id: str) -> None:
    """:raises NotFound: no such template in the workspace."""
    session.delete(find_template(session, workspace_id, template_id))
    session.flush()


def find_template(session: Session, workspace_id: str, template_id: str) -> MessageTemplate:
    """:raises NotFound: no such template in the workspace."""
    template = find_in_workspace(session, MessageTemplate, workspace_id, template_id)
    if template is None:
        raise NotFound("Message template not found")
    return template


_DEFAULT_EMAIL_BODY = """<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>Hi {{ user.firstName | default: 'there' }},</mj-text>
        <mj-text>Thanks for being with us.</mj-text>
        <mj-text font-size="11px" color="#777">{% unsubscribe_link %}</mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""

_DEFAULT_LOW_CODE_BODY: dict[str, Any] = {
    "type": "doc",
    "content": [
        {
            "type": "paragraph",
            "content": [{"type": "text", "text": "Hi {{ user.firstName | default: 'there' }},"}],
        },
        {"type": "paragraph", "content": [{"type": "text", "text": "Thanks for being with us."}]},
        {"type": "paragraph", "content": [{"type": "unsubscribeLink", "attrs": {"linkText": "Unsubscribe"}}]},
    ],
}

_DEFAULT_WEBHOOK_BODY = """{
  "config": {
    "url": "https://httpbin.org/post",
    "method": "POST",
    "headers": {"Content-Type": "application/json"},
    "data": {"email": "{{ user.email }}"}
  },
  "secret": {}
}"""


def default_definition(
    session: Session, workspace_id: str, channel: str, contents_type: str | None
) -> dict[str, Any]:
    """The definition a new template of `channel` starts with (upstream's defaults).

    :raises InvalidInput: the channel has no default (MobilePush, which upstream answers with a 500).
    """
    if channel == "Email":
        provider = session.scalar(
            select(DefaultEmailProvider).where(DefaultEmailProvider.workspace_id == workspace_id)
        )
        sender = (provider.from_address if provider else None) or (
            '{{ user.accountManager | default: "hello@company.com"}}'
        )
        definition: dict[str, Any] = {
            "type": "Email",
            "from": sender,
            "subject": "Hi {{ user.firstName | default: 'there'}}!",
            "replyTo": "",
        }
        if contents_type == "LowCode":
            return {**definition, "emailContentsType": "LowCode", "body": _DEFAULT_LOW_CODE_BODY}
        return {**definition, "emailContentsType": "Code", "body": _DEFAULT_EMAIL_BODY}
    if channel == "Sms":
        return {"type": "Sms", "body": "Example message to {{ user.phone }}"}
    if channel == "Webhook":
        return {"type": "Webhook", "identifierKey": "email", "body": _DEFAULT_WEBHOOK_BODY}
    raise InvalidInput(f"body/type {channel} templates have no default definition", field="body/type")


def load_render_secrets(session: Session, workspace_id: str) -> dict[str, str]:
    """The workspace secrets templates may use: the subscription key the link tags sign with."""
    value = session.scalar(
        select(Secret.value).where(
            Secret.workspace_id == workspace_id, Secret.name == SUBSCRIPTION_SECRET_NAME
        )
    )
    return {SUBSCRIPTION_SECRET_NAME: value} if value else {}


def _shape(definition: dict[str, Any]) -> tuple[Any, Any]:
    return definition.get("type"), email_contents_type(definition)


def _check_identifier_key(session: Session, workspace_id: str, definition: dict[str, Any]) -> None:
    if definition.get("type") not in ("Email", "Sms"):
        return
    key = definition.get("identifierKey") or DEFAULT_IDENTIFIER_KEYS[definition["type"]]
    exists = session.scalar(
        select(UserProperty.id).where(UserProperty.workspace_id == workspace_id, UserProperty.name == key)
    )
    if exists is None:
        raise InvalidIdentifierKey(key)
