"""The default resources every new workspace gets (Dittofeed's `bootstrapPostgres`, §1.1).

Ids that Dittofeed derives with uuidv5 in the workspace's namespace are derived the same way, so they
are stable and predictable per workspace.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy.orm import Session

from engine.credentials import DEFAULT_WRITE_KEY_NAME, get_or_create_write_key
from engine.storage.models import Secret, Workspace, WorkspaceType
from engine.storage.resource_models import (
    ChannelType,
    DefaultEmailProvider,
    DefaultSmsProvider,
    EmailProvider,
    MessageTemplate,
    ResourceType,
    Segment,
    SmsProvider,
    SubscriptionGroup,
    SubscriptionGroupType,
    UserProperty,
)

TRAIT_USER_PROPERTIES = (
    "email",
    "phone",
    "deviceToken",
    "firstName",
    "lastName",
    "language",
    "accountManager",
    "latLon",
    "timezone",
)
# Provider type -> the well-known secret name holding its configuration (isomorphic-lib constants).
EMAIL_PROVIDER_SECRETS = {
    "SendGrid": "sendgrid",
    "AmazonSes": "amazonses",
    "Resend": "resend",
    "PostMark": "postmark",
    "Smtp": "smtp",
    "Test": "EmailTestProvider",
    "MailChimp": "mailchimp",
}
SMS_PROVIDER_SECRETS = {"Twilio": "twilio-key", "SignalWire": "signalwire", "Test": "SmsTestProvider"}
SUBSCRIPTION_SECRET_NAME = "subscription-key"  # noqa: S105 (a name, not a secret)

WELCOME_TEMPLATE_BODY = """<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text>Hi {{ user.firstName | default: "there" }}, welcome!</mj-text>
        <mj-text><a href="{% unsubscribe_url %}">Unsubscribe</a></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>"""


def bootstrap_workspace(session: Session, workspace: Workspace) -> None:
    """Create the default resources of a new workspace inside the caller's transaction."""
    workspace_id = workspace.id
    namespace = uuid.UUID(workspace_id)
    session.add_all(
        [
            UserProperty(workspace_id=workspace_id, name="id", definition={"type": "Id"}),
            UserProperty(workspace_id=workspace_id, name="anonymousId", definition={"type": "AnonymousId"}),
            *(
                UserProperty(workspace_id=workspace_id, name=path, definition={"type": "Trait", "path": path})
                for path in TRAIT_USER_PROPERTIES
            ),
            Secret(workspace_id=workspace_id, name=SUBSCRIPTION_SECRET_NAME, value=secrets.token_hex(8)),
            MessageTemplate(
                id=str(uuid.uuid5(namespace, "welcome-email-template")),
                workspace_id=workspace_id,
                name="Welcome Email",
                definition={
                    "type": "Email",
                    "from": "hello@example.com",
                    "subject": "Welcome!",
                    "body": WELCOME_TEMPLATE_BODY,
                },
            ),
        ]
    )
    get_or_create_write_key(session, workspace_id, DEFAULT_WRITE_KEY_NAME)
    email_test = _add_providers(session, workspace_id, EmailProvider, EMAIL_PROVIDER_SECRETS)["Test"]
    sms_test = _add_providers(session, workspace_id, SmsProvider, SMS_PROVIDER_SECRETS)["Test"]
    # A child has no defaults of its own: it sends through its parent's until it chooses
    # (engine.messaging.provider_settings resolves that fallback).
    if workspace.type != WorkspaceType.CHILD:
        session.add(DefaultEmailProvider(workspace_id=workspace_id, email_provider_id=email_test))
        session.add(DefaultSmsProvider(workspace_id=workspace_id, sms_provider_id=sms_test))
    for seed, channel in (
        ("email-subscription-group", ChannelType.EMAIL),
        ("sms-subscription-group", ChannelType.SMS),
    ):
        add_subscription_group(
            session,
            workspace_id,
            group_id=str(uuid.uuid5(namespace, seed)),
            name=f"{workspace.name} - {channel.value.replace('Sms', 'SMS')}",
            channel=channel,
            group_type=SubscriptionGroupType.OPT_OUT,
        )
    session.flush()


def add_subscription_group(
    session: Session,
    workspace_id: str,
    *,
    group_id: str,
    name: str,
    channel: ChannelType,
    group_type: SubscriptionGroupType,
) -> SubscriptionGroup:
    """Add a subscription group with its two Internal segments (§7.5)."""
    group = SubscriptionGroup(
        id=group_id, workspace_id=workspace_id, name=name, channel=channel, type=group_type
    )
    session.add(group)
    session.flush()
    for segment_name, node in (
        (
            f"subscriptionGroup-{group_id}",
            {
                "type": "SubscriptionGroup",
                "subscriptionGroupId": group_id,
                "subscriptionGroupType": group_type,
            },
        ),
        (
            f"subscriptionGroup-unsubscribed-{group_id}",
            {"type": "SubscriptionGroupUnsubscribed", "subscriptionGroupId": group_id},
        ),
    ):
        session.add(
            Segment(
                workspace_id=workspace_id,
                name=segment_name,
                definition={"entryNode": {"id": "1", **node}, "nodes": []},
                resource_type=ResourceType.INTERNAL,
                subscription_group_id=group_id,
            )
        )
    return group


def _add_providers(
    session: Session,
    workspace_id: str,
    model: type[EmailProvider] | type[SmsProvider],
    secret_names: dict[str, str],
) -> dict[str, str]:
    ids: dict[str, str] = {}
    for provider_type, secret_name in secret_names.items():
        secret = Secret(workspace_id=workspace_id, name=secret_name, config_value={"type": provider_type})
        session.add(secret)
        session.flush()
        provider = model(workspace_id=workspace_id, type=provider_type, secret_id=secret.id)
        session.add(provider)
        session.flush()
        ids[provider_type] = provider.id
    return ids
