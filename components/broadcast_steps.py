"""What each step of the broadcast editor shows, read from the engine:

- RECIPIENTS: the workspace's segments and the subscription groups of the broadcast's channel to pick
  from, and the picked segment's current member count (its computed assignments, as the segment
  editor counts them);
- CONTENT: the authored templates of the channels a broadcast sends on, and the picked one rendered
  for a sample user as the template editors render previews (an email in a sandboxed iframe);
- CONFIGURATION: the config options, each only when the Broadcast configuration shows it, the
  provider override offering only `emailProviderOverrideAllowList`;
- DELIVERIES: the broadcast's deliveries (engine.deliveries, filtered by broadcast id), paged;
- EVENTS: the events the broadcast's sends recorded (engine.event_search by broadcast id), paged.

The ClickHouse reads (member count, deliveries, events) run outside the SQL transaction.
"""

from __future__ import annotations

import json
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request

from components.broadcast_access import EDITOR_PATH, channel_of, in_reach, opens_component
from components.deliveries_table import Names, RowLinks, delivery_rows
from components.email_editor import EmailPreview, fields_of_document, render_preview
from components.screens import Screen
from components.segment_editor import count_members
from components.sms_editor import SmsPreview, render_sms_preview
from components.template_editing import SAMPLE_USER, render_context
from components.templates_table import EDITOR_PATHS
from engine import deliveries, segments
from engine.broadcasts.resources import BROADCAST_CHANNELS
from engine.component_configurations import BroadcastDefinition
from engine.event_search import EventFilter, search_events
from engine.messaging import templates
from engine.messaging.batch_send import PREVIEW_USER_ID
from engine.messaging.providers.registry import EMAIL_PROVIDERS, SMS_PROVIDERS
from engine.messaging.subscription_groups import list_subscription_groups
from engine.messaging.template_models import email_contents_type
from engine.sent_messages import SentFilter
from engine.storage.broadcast_models import Broadcast
from engine.storage.event_store import EventStore
from engine.storage.resource_models import MessageTemplate, ResourceType

PAGE_SIZE = 20
# The deliveries columns the step shows: the origin and the template are the broadcast's own.
DELIVERY_COLUMNS = [
    ("preview", "Preview"),
    ("to", "To"),
    ("userId", "User ID"),
    ("snippet", "Snippet"),
    ("status", "Status"),
    ("sentAt", "Sent At"),
    ("updatedAt", "Updated At"),
]
ERROR_HANDLING = {"PauseOnError": "Pause on error", "SkipOnError": "Skip on error"}


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    channel: str = ""


# -- RECIPIENTS --------------------------------------------------------------------------------------


@dataclass
class RecipientsStep:
    segments: list[Choice]
    groups: list[Choice]
    segment_id: str
    group_id: str
    members: int | None = None


def read_recipients(session: Session, screen: Screen, broadcast: Broadcast) -> RecipientsStep:
    found = segments.list_segments(session, screen.workspace_id, resource_type=ResourceType.DECLARATIVE)
    segment_id = broadcast.segment_id or ""
    channel = channel_of(broadcast)
    return RecipientsStep(
        segments=[
            Choice(segment.id, segment.name)
            for segment in sorted(found, key=lambda s: s.name.lower())
            if in_reach(screen, segment.id) or segment.id == segment_id
        ],
        groups=[
            Choice(group.id, group.name)
            for group in list_subscription_groups(session, screen.workspace_id)
            if group.channel.value == channel
        ],
        segment_id=segment_id,
        group_id=broadcast.subscription_group_id or "",
    )


def count_recipients(store: EventStore, workspace_id: str, step: RecipientsStep) -> None:
    """Fill in the picked segment's member count (ClickHouse)."""
    if step.segment_id:
        step.members = count_members(store, workspace_id, step.segment_id)


# -- CONTENT -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContentStep:
    templates: list[Choice]
    template_id: str
    channel: str = ""
    email: EmailPreview | None = None
    sms: SmsPreview | None = None
    webhook: str | None = None
    unpublished: bool = False
    editor_url: str | None = None


def template_channel(template: MessageTemplate) -> str:
    """A template's channel: its definition's type, else its draft's (as the broadcast upsert reads it)."""
    for document in (template.definition, template.draft):
        if isinstance(document, dict) and isinstance(document.get("type"), str):
            return str(document["type"])
    return ""


def read_content(
    request: Request,
    session: Session,
    screen: Screen,
    broadcast: Broadcast,
    configuration: BroadcastDefinition | None,
) -> ContentStep:
    allowed_types = configuration.allowedEmailContentsTypes if configuration else None
    choices = []
    for template in templates.list_templates(
        session, screen.workspace_id, resource_type=ResourceType.DECLARATIVE
    ):
        channel = template_channel(template)
        document = template.definition or template.draft or {}
        contents = email_contents_type(document)
        picked = template.id == broadcast.message_template_id
        if channel not in BROADCAST_CHANNELS and not picked:
            continue
        if (
            allowed_types is not None
            and contents is not None
            and contents not in allowed_types
            and not picked
        ):
            continue  # the configuration would refuse attaching it
        choices.append(Choice(template.id, template.name, channel))
    choices.sort(key=lambda choice: (choice.channel, choice.label.lower()))
    if not broadcast.message_template_id:
        return ContentStep(choices, "")
    template = templates.find_template(session, screen.workspace_id, broadcast.message_template_id)
    return _previewed(request, session, screen, choices, template)


def _previewed(
    request: Request, session: Session, screen: Screen, choices: list[Choice], template: MessageTemplate
) -> ContentStep:
    """The step with `template` rendered for the sample user: its published definition, else its
    draft (flagged: a broadcast sends what is published)."""
    document = template.definition or template.draft or {}
    channel = template_channel(template)
    path = EDITOR_PATHS.get(channel)
    editor_url = (
        screen.page(path, id=template.id)
        if path and opens_component(screen, "MessageTemplate") and in_reach(screen, template.id)
        else None
    )
    step = ContentStep(
        choices, template.id, channel, unpublished=template.definition is None, editor_url=editor_url
    )
    user = {"id": PREVIEW_USER_ID, **SAMPLE_USER}
    if channel == "Email":
        context = render_context(request, session, screen.workspace_id, channel, user)
        return _with(step, email=render_preview(context, fields_of_document(document)))
    if channel == "Sms":
        context = render_context(request, session, screen.workspace_id, channel, user)
        return _with(step, sms=render_sms_preview(context, str(document.get("body") or "")))
    return _with(step, webhook=json.dumps(document, indent=2, ensure_ascii=False))


def _with(step: ContentStep, **changes: Any) -> ContentStep:
    return ContentStep(**{**step.__dict__, **changes})


# -- CONFIGURATION -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigurationStep:
    """The config form: each `show_*` says whether the configuration lets the screen offer it."""

    channel: str
    show_provider: bool
    providers: list[str]
    provider: str
    show_rate_limit: bool
    rate_limit: str
    show_error_handling: bool
    error_handling: str
    error_handling_labels: dict[str, str]
    show_schedule: bool
    scheduled: bool
    scheduled_at: str
    timezone: str
    individual_timezones: bool
    timezones: list[str] = field(default_factory=list)


def provider_choices(channel: str, configuration: BroadcastDefinition | None) -> list[str]:
    """The provider overrides offered for `channel`: the email allow-list when there is one."""
    if channel == "Email":
        allow = configuration.emailProviderOverrideAllowList if configuration else None
        return [kind for kind in (allow if allow is not None else EMAIL_PROVIDERS) if kind in EMAIL_PROVIDERS]
    if channel == "Sms":
        return list(SMS_PROVIDERS)
    return []


def read_configuration(broadcast: Broadcast, configuration: BroadcastDefinition | None) -> ConfigurationStep:
    config = broadcast.config or {}
    message = config.get("message") if isinstance(config.get("message"), dict) else {}
    assert isinstance(message, dict)
    channel = channel_of(broadcast)
    providers = provider_choices(channel, configuration)
    rate_limit = config.get("rateLimit")
    return ConfigurationStep(
        channel=channel,
        show_provider=bool(providers) and not (configuration and configuration.hideOverrideSelect),
        providers=providers,
        provider=str(message.get("providerOverride") or ""),
        show_rate_limit=not (configuration and configuration.hideRateLimit),
        rate_limit="" if rate_limit is None else f"{rate_limit:g}",
        # Upstream offers error handling only when the configuration asks; the console always does.
        show_error_handling=configuration is None or bool(configuration.showErrorHandling),
        error_handling=str(config.get("errorHandling") or ""),
        error_handling_labels=ERROR_HANDLING,
        show_schedule=not (configuration and configuration.hideScheduledSelect),
        scheduled=bool(broadcast.scheduled_at),
        scheduled_at=(broadcast.scheduled_at or "").replace(" ", "T"),
        timezone=str(config.get("defaultTimezone") or ""),
        individual_timezones=bool(config.get("useIndividualTimezone")),
        timezones=time_zones(),
    )


@lru_cache(maxsize=1)
def time_zones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


# -- DELIVERIES and EVENTS ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveriesStep:
    rows: list[Any]
    columns: list[tuple[str, str]]
    count: int
    first_row: int
    next_url: str | None
    previous_url: str | None
    table_url: str | None


def read_deliveries(
    store: EventStore, screen: Screen, broadcast_id: str, template_names: dict[str, str], cursor: str | None
) -> DeliveriesStep:
    where = deliveries.DeliveryFilter(sent=SentFilter(broadcast_ids=[broadcast_id]))
    # The count is read while the page is.
    with ThreadPoolExecutor(1, thread_name_prefix="feedgate-count") as pool:
        counting = pool.submit(deliveries.count_deliveries, store, screen.workspace_id, where)
        page = deliveries.search_deliveries(store, screen.workspace_id, where, limit=PAGE_SIZE, cursor=cursor)
        count = counting.result()
    names = Names(templates=template_names)
    rows = delivery_rows(page["items"], names, RowLinks())
    offset = deliveries.decode_cursor(cursor)

    def link(page_cursor: str | None) -> str | None:
        if page_cursor is None:
            return None
        return screen.page(EDITOR_PATH, id=broadcast_id, step="DELIVERIES", cursor=page_cursor)

    table_url = (
        screen.page("/deliveries/v2", broadcastId=broadcast_id)
        if opens_component(screen, "DeliveriesTable")
        else None
    )
    return DeliveriesStep(
        rows=rows,
        columns=DELIVERY_COLUMNS,
        count=count,
        first_row=offset + 1,
        next_url=link(page.get("cursor")),
        previous_url=link(page.get("previousCursor")),
        table_url=table_url,
    )


@dataclass(frozen=True)
class EventRow:
    message_id: str
    event: str
    event_type: str
    user_id: str
    processing_time: str
    properties: str


@dataclass(frozen=True)
class EventsStep:
    events: list[EventRow]
    count: int
    first_row: int
    next_url: str | None
    previous_url: str | None


def read_events(store: EventStore, screen: Screen, broadcast_id: str, offset: int) -> EventsStep:
    where = EventFilter(workspace_ids=[screen.workspace_id], broadcast_id=broadcast_id)
    page = search_events(store, where, offset=offset, limit=PAGE_SIZE)
    events = [
        EventRow(
            message_id=str(item["messageId"]),
            event=str(item.get("event") or ""),
            event_type=str(item.get("eventType") or ""),
            user_id=str(item.get("userId") or item.get("anonymousId") or ""),
            processing_time=str(item.get("processingTime") or ""),
            properties=str(item.get("traits") or ""),
        )
        for item in page.events
    ]

    def link(at: int) -> str:
        return screen.page(EDITOR_PATH, id=broadcast_id, step="EVENTS", offset=str(at))

    return EventsStep(
        events=events,
        count=page.count,
        first_row=offset + 1,
        next_url=link(offset + PAGE_SIZE) if offset + PAGE_SIZE < page.count else None,
        previous_url=link(max(offset - PAGE_SIZE, 0)) if offset > 0 else None,
    )
