"""Sending template messages (Dittofeed §7.6 pipeline, §8.1 results).

`prepare_message` loads once what every recipient of one template send shares: the template, its
subscription group, the provider (with the parent fallback) and the secrets. `MessagePlan.send` then
handles one recipient: subscription gating, the identifier, rendering, the provider call, and a
`SendResult`. `result_row` turns a result into the internal event Dittofeed records, so deliveries and
analysis see it. Nothing here retries: a retryable result is for the caller's retry policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.blob_storage import BlobStore
from engine.errors import InvalidInput
from engine.events import EventRow, build_rows
from engine.messaging.attachments import load_attachment
from engine.messaging.compose import (
    FieldRenderError,
    compose_email,
    compose_push,
    compose_sms,
    list_unsubscribe_headers,
    render_webhook_body,
)
from engine.messaging.links import VIEW_IN_BROWSER_SECRET_NAME, as_identifier
from engine.messaging.provider_settings import ResolvedProvider, resolve_provider
from engine.messaging.providers.base import (
    Attachment,
    ProviderContext,
    ProviderDetails,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
)
from engine.messaging.providers.test_provider import TEST
from engine.messaging.providers.webhook import send_webhook
from engine.messaging.render import RenderContext
from engine.messaging.subscriptions import Action, may_send, subscription_action, subscription_actions
from engine.messaging.template_models import DEFAULT_IDENTIFIER_KEYS
from engine.messaging.templates import load_render_secrets
from engine.messaging.view_in_browser import store_email_body
from engine.storage.models import Secret, Workspace
from engine.storage.resource_models import MessageTemplate, SubscriptionGroup

SENT = "DFInternalMessageSent"
FAILURE = "DFMessageFailure"
BAD_CONFIGURATION = "DFBadWorkspaceConfiguration"
SKIPPED = "DFMessageSkipped"
WEBHOOK_SECRET_NAME = "webhook-channel"  # noqa: S105 (a name, not a secret)
# Shown to a preview in place of each webhook secret value (Dittofeed's render endpoint does the same).
MASKED_SECRET = "**********"  # noqa: S105

# Provider calls one send of many keeps in flight at once, each over its own pooled connection.
PARALLEL_SENDS = 4

ResultType = Literal["Success", "Skipped", "NonRetryableError", "RetryableError"]


@dataclass(frozen=True)
class SendResult:
    """`event` is the internal event the result records (None: retryable, nothing is recorded)."""

    event: str | None
    variant: dict[str, Any]
    error: str | None = None

    @property
    def type(self) -> ResultType:
        if self.event == SENT:
            return "Success"
        if self.event == SKIPPED:
            return "Skipped"
        return "RetryableError" if self.event is None else "NonRetryableError"


def _bad_configuration(variant_type: str, **details: Any) -> SendResult:
    return SendResult(BAD_CONFIGURATION, {"type": variant_type, **details})


def retryable(message: str) -> SendResult:
    return SendResult(None, {}, error=message)


@dataclass(frozen=True)
class Recipient:
    user_id: str
    properties: Mapping[str, Any]  # user-property name -> value
    is_anonymous: bool = False


@dataclass(frozen=True)
class SendServices:
    """What sends share within a process: provider connections, the public base URL of links, and the
    blob store that keeps sent emails for their view-in-browser links (with the key that signs them)."""

    providers: ProviderContext
    base_url: str
    blob_store: BlobStore | None = None
    view_in_browser_key: str | None = None
    # Told (provider or channel, result type) of every real send: the gateway counts them as metrics.
    observe_send: Callable[[str, str], None] | None = None


@dataclass(frozen=True)
class SendOptions:
    template_id: str
    channel: str
    subscription_group_id: str | None = None
    provider_override: str | None = None
    use_draft: bool = False  # test sends render the draft when there is one
    is_preview: bool = False  # test sends: links say so, no gating, no status callback


@dataclass
class MessagePlan:
    workspace_id: str
    options: SendOptions
    services: SendServices
    problem: SendResult | None = None
    template_id: str = ""
    definition: dict[str, Any] = field(default_factory=dict)
    group: SubscriptionGroup | None = None
    provider: ResolvedProvider | None = None
    sender: Any = None
    secrets: dict[str, str] = field(default_factory=dict)
    _actions: dict[str, Action] = field(default_factory=dict)
    _actions_loaded: frozenset[str] = frozenset()

    @property
    def identifier_key(self) -> str | None:
        key = self.definition.get("identifierKey") or DEFAULT_IDENTIFIER_KEYS.get(self.options.channel)
        return str(key) if key else None

    def send(
        self, session: Session, recipient: Recipient, message_id: str, tags: Mapping[str, str] = {}
    ) -> SendResult:
        """Send to one recipient; never raises for anything a provider or template does."""
        result = self._send_one(session, recipient, message_id, tags)
        if self.services.observe_send is not None and not self.options.is_preview:
            provider = self.provider.kind.type if self.provider is not None else self.options.channel
            self.services.observe_send(provider, result.type)
        return result

    def send_all(
        self, session: Session, jobs: Sequence[tuple[Recipient, str, Mapping[str, str]]]
    ) -> list[SendResult]:
        """`send` each (recipient, messageId, tags), results in order. Through a provider that waits on
        the network (any but Test), up to PARALLEL_SENDS at once: an SMTP server or a provider's API
        answers each message in one or more round trips, which one connection would wait for in turn.

        Subscriptions not loaded yet are loaded first, so the threads never touch the session.
        """
        if self.problem is not None or self.provider_is_local or len(jobs) < 2:
            return [self.send(session, *job) for job in jobs]
        unloaded = [
            recipient.user_id for recipient, _, _ in jobs if recipient.user_id not in self._actions_loaded
        ]
        if unloaded:
            self.load_subscriptions(session, unloaded)
        with ThreadPoolExecutor(PARALLEL_SENDS, thread_name_prefix="feedgate-send") as pool:
            return list(pool.map(lambda job: self.send(session, *job), jobs))

    @property
    def provider_is_local(self) -> bool:
        """The Test provider records and sends nothing, so its sends have nothing to overlap."""
        return self.provider is not None and self.provider.kind.type == TEST

    def _send_one(
        self, session: Session, recipient: Recipient, message_id: str, tags: Mapping[str, str]
    ) -> SendResult:
        if self.problem is not None:
            return self.problem
        if self.group is not None and not self.options.is_preview:
            skipped = self._gate(session, recipient.user_id)
            if skipped is not None:
                return skipped
        key = self.identifier_key
        to = as_identifier(recipient.properties.get(key)) if key else None
        if key is None or to is None:
            return SendResult(SKIPPED, {"type": "MissingIdentifier", "identifierKey": key})
        all_tags = {
            "workspaceId": self.workspace_id,
            "templateId": self.template_id,
            "messageId": message_id,
            "userId": recipient.user_id,
            **tags,
        }
        context = RenderContext(
            workspace_id=self.workspace_id,
            user={**recipient.properties, "id": recipient.user_id},
            subscription_group_id=self.group.id if self.group is not None else None,
            identifier_key=key,
            secrets=self.secrets,
            tags=all_tags,
            is_preview=self.options.is_preview,
            message_id=message_id,
            base_url=self.services.base_url,
        )
        try:
            return self._send(context, to, message_id, all_tags)
        except FieldRenderError as error:
            return _bad_configuration("MessageTemplateRenderError", field=error.field, error=error.error)
        except InvalidInput as error:  # an attachment that cannot be loaded
            return _bad_configuration("MessageTemplateMisconfigured", message=error.message)
        except ProviderRejected as error:
            if self.options.channel == "Webhook":
                return SendResult(FAILURE, error.details)
            return SendResult(FAILURE, {"type": self.options.channel, "provider": error.details})
        except ProviderUnavailable as error:
            return retryable(error.message)
        except ProviderMisconfigured as error:
            return _bad_configuration("MessageServiceProviderMisconfigured", message=error.message)

    def _send(self, context: RenderContext, to: str, message_id: str, tags: dict[str, str]) -> SendResult:
        channel = self.options.channel
        if channel == "Email":
            headers = {}
            if self.group is not None:
                from_address = str(self.definition.get("from") or "")
                headers = list_unsubscribe_headers(context, self.group.id, self.group.name, from_address)
            attachments = self._attachments(context.user)
            email = compose_email(
                self.definition, context, to, extra_headers=headers, attachments=attachments, tags=tags
            )
            details: ProviderDetails = self.sender.send_email(email)
            if self.services.blob_store is not None and not self.options.is_preview:
                store_email_body(self.services.blob_store, self.workspace_id, message_id, email.body)
            variant: dict[str, Any] = {
                "type": "Email",
                "from": email.from_address,
                "to": email.to,
                "subject": email.subject,
                "body": email.body,
            }
            optional = {
                "replyTo": email.reply_to,
                "cc": ",".join(email.cc) or None,
                "bcc": ",".join(email.bcc) or None,
                "name": email.name,
                "headers": dict(email.headers) or None,
            }
            variant.update({name: value for name, value in optional.items() if value is not None})
            if email.attachments:
                variant["attachments"] = [
                    {"name": a.name, "mimeType": a.mime_type} for a in email.attachments
                ]
            return SendResult(SENT, {**variant, "provider": details})
        if channel == "Sms":
            callback = None if self.options.is_preview else self._status_callback(tags)
            sms = compose_sms(self.definition, context, to, tags=tags, status_callback_url=callback)
            details = self.sender.send_sms(sms)
            return SendResult(SENT, {"type": "Sms", "to": sms.to, "body": sms.body, "provider": details})
        if channel == "MobilePush":
            push = compose_push(self.definition, context, to, tags=tags)
            details = self.sender.send_push(push)
            variant = {"type": "MobilePush", "to": to, "title": push.title, "body": push.body}
            return SendResult(SENT, {**variant, "provider": details})
        body = render_webhook_body(self.definition, context)
        return SendResult(SENT, send_webhook(body, message_id, self.services.providers, to=to))

    def load_subscriptions(self, session: Session, user_ids: Sequence[str]) -> None:
        """Read the subscription choices of many recipients at once, for the sends that follow."""
        if self.group is not None:
            loading = frozenset(user_ids)
            kept = {user: action for user, action in self._actions.items() if user not in loading}
            self._actions = kept | subscription_actions(session, self.workspace_id, self.group.id, user_ids)
            self._actions_loaded = self._actions_loaded | loading

    def _gate(self, session: Session, user_id: str) -> SendResult | None:
        """Skip a user who is not subscribed to the message's group (§7.5)."""
        assert self.group is not None
        if user_id in self._actions_loaded:
            action = self._actions.get(user_id)
        else:
            action = subscription_action(session, self.workspace_id, self.group.id, user_id)
        if may_send(self.group.type, action):
            return None
        variant = {
            "type": "SubscriptionState",
            "action": action,
            "subscriptionGroupType": self.group.type.value,
        }
        return SendResult(SKIPPED, variant)

    def _attachments(self, user: Mapping[str, Any]) -> list[Attachment]:
        """The files named by `attachmentUserProperties` that this user has (a user without one gets the
        email without it)."""
        names = self.definition.get("attachmentUserProperties") or []
        return [
            load_attachment(
                user[name], self.services.blob_store, workspace_id=self.workspace_id, property_name=name
            )
            for name in names
            if user.get(name) is not None
        ]

    def _status_callback(self, tags: Mapping[str, str]) -> str:
        query = {**tags}
        if self.group is not None:
            query["subscriptionGroupId"] = self.group.id
        return f"{self.services.base_url.rstrip('/')}/api/public/webhooks/twilio?{urlencode(query)}"


def load_webhook_secrets(session: Session, workspace_id: str, *, masked: bool) -> dict[str, str]:
    config = session.scalar(
        select(Secret.config_value).where(
            Secret.workspace_id == workspace_id, Secret.name == WEBHOOK_SECRET_NAME
        )
    )
    values = {k: str(v) for k, v in (config or {}).items() if k != "type" and isinstance(v, str)}
    return {k: MASKED_SECRET for k in values} if masked else values


def prepare_message(
    session: Session, services: SendServices, workspace_id: str, options: SendOptions
) -> MessagePlan:
    """Load what sending `options.template_id` needs; a plan whose `problem` is set sends nothing and
    answers every recipient with that DFBadWorkspaceConfiguration result."""
    plan = MessagePlan(workspace_id, options, services, template_id=options.template_id)
    workspace = session.get(Workspace, workspace_id)
    template = session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.workspace_id == workspace_id, MessageTemplate.id == options.template_id
        )
    )
    if workspace is None or template is None:
        plan.problem = _bad_configuration("MessageTemplateNotFound")
        return plan
    definition = (template.draft if options.use_draft else None) or template.definition
    if not definition:
        plan.problem = _bad_configuration(
            "MessageTemplateMisconfigured", message="the template has no definition"
        )
        return plan
    if definition.get("type") != options.channel:
        message = f"the template is a {definition.get('type')} template, not {options.channel}"
        plan.problem = _bad_configuration("MessageTemplateMisconfigured", message=message)
        return plan
    plan.definition = definition
    if options.subscription_group_id is not None:
        plan.group = session.scalar(
            select(SubscriptionGroup).where(
                SubscriptionGroup.workspace_id == workspace_id,
                SubscriptionGroup.id == options.subscription_group_id,
            )
        )
        if plan.group is None:
            plan.problem = _bad_configuration("SubscriptionGroupNotFound")
            return plan
    plan.secrets = load_render_secrets(session, workspace_id)
    if services.blob_store is not None and services.view_in_browser_key:
        plan.secrets[VIEW_IN_BROWSER_SECRET_NAME] = services.view_in_browser_key
    if options.channel == "Webhook":
        plan.secrets.update(load_webhook_secrets(session, workspace_id, masked=False))
        return plan
    plan.provider = resolve_provider(session, workspace, options.channel, options.provider_override)
    if plan.provider is None:
        plan.problem = _bad_configuration("MessageServiceProviderNotFound")
        return plan
    build = plan.provider.kind.build
    if build is None:
        message = f"sending through {plan.provider.kind.type} is not supported"
        plan.problem = _bad_configuration("MessageServiceProviderMisconfigured", message=message)
        return plan
    try:
        plan.sender = build(plan.provider.config, services.providers)
    except ProviderMisconfigured as error:
        plan.problem = _bad_configuration("MessageServiceProviderMisconfigured", message=error.message)
    return plan


def result_row(
    workspace_id: str,
    recipient: Recipient,
    message_id: str,
    result: SendResult,
    tags: Mapping[str, str],
    now: datetime,
    *,
    context: Mapping[str, Any] | None = None,
) -> EventRow:
    """The internal track event recording `result` on the recipient, with the send's messageId."""
    assert result.event is not None, "retryable results are not recorded"
    identity = "anonymousId" if recipient.is_anonymous else "userId"
    message: dict[str, Any] = {
        identity: recipient.user_id,
        "messageId": message_id,
        "event": result.event,
        "properties": {**tags, "variant": result.variant},
        "timestamp": now.isoformat().replace("+00:00", "Z"),
    }
    if context:
        message["context"] = dict(context)
    (row,) = build_rows(workspace_id, "track", message, now)
    return row
