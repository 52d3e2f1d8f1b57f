"""The deliveries table (Dittofeed's `/deliveries/v2`, component `DeliveriesTable`): a workspace's
sent messages with their current status, filtered, sorted and paged as `GET deliveries` does (§6.6),
each with a preview of what was sent, and a CSV download of the same filters.

The toolbar is a GET form whose htmx request swaps only `#deliveries-results`; its fields carry the
API's own names (`channels`, `statuses`, `templateIds`, `userId`, `startDate`, ...), so a host can
deep-link a filtered table, plus `origin` (`journey:<id>` or `broadcast:<id>`) for the one
journey-or-broadcast picker. An end date without a time means the whole of that day.

Embedded, the stored `DeliveriesTable` configuration shapes the table on the server: `columnAllowList`
decides which columns are rendered (in its order), and the URI templates turn user ids, templates and
origins into links into the host app. A template may only ever produce an absolute http(s) link; each
value is percent-encoded into it. The session's `resourceIds` narrow the pickers and, as on the API,
refuse a filter naming another resource. The member console shows every column and no host links.

`row_links`, `delivery_rows` and the templates under deliveries/ are what another screen needs to
show the same rows (the analysis chart's drill-down).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from components.screens import Screen, render, screen_routes
from engine import deliveries
from engine.broadcasts.resources import list_broadcasts
from engine.component_configurations import (
    DeliveriesColumn,
    DeliveriesTableDefinition,
    effective_configuration,
)
from engine.errors import InvalidInput
from engine.journeys.resources import list_journeys
from engine.resources import ResourceIndexRequest, iso_ms, resource_index
from engine.storage.resource_models import MessageTemplate, ResourceType
from gateway.api.deliveries import SearchDeliveriesQuery
from gateway.deps import in_read_transaction
from gateway.embed_policy import check_resource_ids
from gateway.inputs import validate
from gateway.query_strings import read_nested_query

PATH = "/deliveries/v2"
COMPONENT: Literal["DeliveriesTable"] = "DeliveriesTable"
# The htmx target the toolbar and the pager swap; a request aimed at it gets the fragment alone.
RESULTS_ID = "deliveries-results"
PAGE_LIMIT_MAX = 100

# Every column, in Dittofeed's default order, with its header.
COLUMNS: dict[DeliveriesColumn, str] = {
    "preview": "Preview",
    "from": "From",
    "to": "To",
    "userId": "User ID",
    "snippet": "Snippet",
    "channel": "Channel",
    "status": "Status",
    "origin": "Origin",
    "sentAt": "Sent At",
    "template": "Template",
    "updatedAt": "Updated At",
}
CHANNEL_LABELS = {"Email": "Email", "Sms": "SMS", "Webhook": "Webhook", "MobilePush": "Mobile Push"}
STATUS_LABELS = {
    "DFInternalMessageSent": "Sent",
    "DFEmailDelivered": "Delivered",
    "DFEmailOpened": "Opened",
    "DFEmailClicked": "Clicked",
    "DFEmailBounced": "Bounced",
    "DFEmailMarkedSpam": "Marked as spam",
    "DFEmailDropped": "Dropped",
    "DFSmsDelivered": "Delivered (SMS)",
    "DFSmsFailed": "Failed (SMS)",
}
SORT_LABELS = {"sentAt": "Sent At", "status": "Status", "from": "From", "to": "To"}
# The query fields the screen reads and carries into its links; anything else (the session token
# on a first load, above all) is never echoed.
_LIST_FIELDS = ("userId", "channels", "templateIds", "to", "from", "statuses", "groupId")
_TEXT_FIELDS = (
    "journeyId",
    "broadcastId",
    "startDate",
    "endDate",
    "sortBy",
    "sortDirection",
    "limit",
    "cursor",
)
_BARE_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ScreenQuery(SearchDeliveriesQuery):
    """`GET deliveries`' query, with a page no longer than a screen shows."""

    limit: int = Field(deliveries.DEFAULT_LIMIT, ge=1, le=PAGE_LIMIT_MAX)


# -- reading the toolbar ---------------------------------------------------------------------------


def read_screen_query(request: Request, workspace_id: str) -> ScreenQuery:
    """The filters, sort and cursor of the request, empty form fields left out.

    :raises InvalidInput: a value the API would refuse, or an unreadable `origin`, naming the field.
    """
    raw = read_nested_query(request)
    data: dict[str, Any] = {}
    for name in (*_LIST_FIELDS, *_TEXT_FIELDS):
        value = _without_blanks(raw.get(name))
        if value is not None:
            data[name] = value
    origin = _without_blanks(raw.get("origin"))
    if origin is not None:
        data.pop("journeyId", None)
        data.pop("broadcastId", None)
        data.update(_origin_filter(origin))
    end = data.get("endDate")
    if isinstance(end, str) and _BARE_DATE.fullmatch(end):
        data["endDate"] = f"{end}T23:59:59.999Z"
    return validate(ScreenQuery, {**data, "workspaceId": workspace_id}, where="querystring")


def _without_blanks(value: Any) -> Any:
    """`value` without empty strings (an untouched form field); None when nothing is left."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        kept = [item.strip() if isinstance(item, str) else item for item in value]
        kept = [item for item in kept if item != ""]
        return kept or None
    return value


def _origin_filter(origin: Any) -> dict[str, str]:
    kind, _, origin_id = origin.partition(":") if isinstance(origin, str) else ("", "", "")
    if kind == "journey" and origin_id:
        return {"journeyId": origin_id}
    if kind == "broadcast" and origin_id:
        return {"broadcastId": origin_id}
    raise InvalidInput(
        "querystring/origin must be journey:<id> or broadcast:<id>", field="querystring/origin"
    )


def filter_pairs(query: ScreenQuery, *, paging: bool) -> list[tuple[str, str]]:
    """The query as `(name, value)` pairs in the API's names, for the pager and the download link."""
    pairs: list[tuple[str, str]] = []
    for name in ("journeyId", "broadcastId"):
        value = getattr(query, name)
        if value:
            pairs.append((name, value))
    lists: dict[str, Sequence[str]] = {
        "userId": query.userId,
        "channels": query.channels,
        "templateIds": query.templateIds,
        "statuses": query.statuses,
        "to": query.to,
        "from": query.from_,
        "groupId": query.groupId,
    }
    pairs += [(name, value) for name, values in lists.items() for value in values]
    if query.startDate is not None:
        pairs.append(("startDate", iso_ms(query.startDate)))
    if query.endDate is not None:
        pairs.append(("endDate", iso_ms(query.endDate)))
    pairs += [("sortBy", query.sortBy), ("sortDirection", query.sortDirection)]
    if paging and query.limit != deliveries.DEFAULT_LIMIT:
        pairs.append(("limit", str(query.limit)))
    return pairs


def named_resources(query: ScreenQuery) -> dict[str, Any]:
    """The resource ids the filters name, in the fields `check_resource_ids` reads."""
    named: dict[str, Any] = {"templateIds": list(query.templateIds)}
    if query.journeyId:
        named["journeyId"] = query.journeyId
    if query.broadcastId:
        named["broadcastId"] = query.broadcastId
    return named


# -- links into the host app -----------------------------------------------------------------------


def expand_uri_template(template: str | None, values: Mapping[str, str | None]) -> str | None:
    """`template` with each `{name}` replaced by its value, percent-encoded (RFC 6570 simple
    expansion; an unknown or missing name expands to nothing). None unless the result is an
    absolute http(s) URL: a `javascript:` or relative template never makes a link."""
    if not template:
        return None
    url = _PLACEHOLDER.sub(lambda match: quote(values.get(match.group(1)) or "", safe=""), template)
    if any(ord(character) <= 0x20 or ord(character) == 0x7F for character in url):
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


@dataclass(frozen=True)
class RowLinks:
    """The configuration's link templates (none in the console)."""

    user: str | None = None
    template: str | None = None
    origin: str | None = None


def row_links(configuration: DeliveriesTableDefinition | None) -> RowLinks:
    if configuration is None:
        return RowLinks()
    return RowLinks(
        configuration.userUriTemplate, configuration.templateUriTemplate, configuration.originUriTemplate
    )


def visible_columns(allow_list: Sequence[str] | None) -> list[tuple[str, str]]:
    """(key, header) of the columns to render: the allow-list's, in its order, else every column."""
    if allow_list is None:
        return list(COLUMNS.items())
    keys = [key for key in dict.fromkeys(allow_list) if key in COLUMNS]
    return [(key, COLUMNS[key]) for key in keys]


# -- names of what the rows point at ---------------------------------------------------------------


@dataclass(frozen=True)
class Origin:
    id: str
    kind: str  # "journey", "broadcast" (V1) or "broadcastV2", as Dittofeed's `originType`
    name: str


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass
class Names:
    """The workspace's journeys, broadcasts and templates the table names, and the pickers' options."""

    journeys: dict[str, Origin] = field(default_factory=dict)
    broadcasts: dict[str, Origin] = field(default_factory=dict)
    # A V1 broadcast sends through its own journey: that journey's deliveries are the broadcast's.
    broadcast_journeys: dict[str, Origin] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)
    journey_options: list[Option] = field(default_factory=list)
    broadcast_options: list[Option] = field(default_factory=list)
    template_options: list[Option] = field(default_factory=list)

    def origin_of(self, item: Mapping[str, Any]) -> Origin | None:
        broadcast_id = _text(item.get("broadcastId"))
        if broadcast_id:
            return self.broadcasts.get(broadcast_id.lower()) or Origin(
                broadcast_id, "broadcastV2", broadcast_id
            )
        journey_id = _text(item.get("journeyId"))
        if journey_id:
            key = journey_id.lower()
            return (
                self.broadcast_journeys.get(key)
                or self.journeys.get(key)
                or Origin(journey_id, "journey", journey_id)
            )
        return None


def load_names(session: Session, workspace_id: str, resource_ids: frozenset[str] | None) -> Names:
    """The names for the rows (every template's, read while the page is searched, before its template
    ids are known) and the pickers' options, narrowed to `resource_ids` when the session has them."""
    names = Names()

    def offered(resource_id: str) -> bool:
        return resource_ids is None or resource_id in resource_ids or resource_id.lower() in resource_ids

    for journey in list_journeys(session, workspace_id):
        names.journeys[journey.id.lower()] = Origin(journey.id, "journey", journey.name)
        if journey.resource_type == ResourceType.DECLARATIVE and offered(journey.id):
            names.journey_options.append(Option(f"journey:{journey.id}", journey.name))
    for broadcast in list_broadcasts(session, workspace_id):
        kind = "broadcastV2" if broadcast.version == "V2" else "broadcast"
        origin = Origin(broadcast.id, kind, broadcast.name)
        names.broadcasts[broadcast.id.lower()] = origin
        if kind == "broadcast" and broadcast.journey_id:
            names.broadcast_journeys[broadcast.journey_id.lower()] = origin
        if offered(broadcast.id):
            names.broadcast_options.append(Option(f"broadcast:{broadcast.id}", broadcast.name))
    names.journey_options.sort(key=lambda option: option.label.lower())
    names.broadcast_options.sort(key=lambda option: option.label.lower())
    index = resource_index(session, workspace_id, ResourceIndexRequest(message_templates=True))
    names.template_options = [
        Option(entry["id"], entry["name"]) for entry in index["messageTemplates"] if offered(entry["id"])
    ]
    rows = session.execute(
        select(MessageTemplate.id, MessageTemplate.name).where(MessageTemplate.workspace_id == workspace_id)
    )
    names.templates = {row.id: row.name for row in rows}
    return names


# -- the rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """What the message said, by channel: an email's header and HTML body (shown in a sandboxed
    iframe), an SMS or push text, a webhook's request and response."""

    channel: str
    subject: str = ""
    reply_to: str = ""
    body: str = ""
    title: str = ""
    detail: str = ""


@dataclass(frozen=True)
class DeliveryRow:
    message_id: str
    user_id: str
    user_href: str | None
    is_anonymous: bool
    channel: str
    channel_label: str
    status: str
    status_label: str
    sender: str
    to: str
    snippet: str
    origin_name: str
    origin_href: str | None
    template_id: str
    template_name: str
    template_href: str | None
    sent_at: str
    sent_at_text: str
    updated_at: str
    updated_at_text: str
    preview: Preview


def delivery_rows(items: Sequence[Mapping[str, Any]], names: Names, links: RowLinks) -> list[DeliveryRow]:
    return [_row(item, names, links) for item in items]


def _row(item: Mapping[str, Any], names: Names, links: RowLinks) -> DeliveryRow:
    variant = item.get("variant")
    variant = variant if isinstance(variant, dict) else {}
    channel = _text(variant.get("type"))
    user_id = _text(item.get("userId"))
    message_id = _text(item.get("originMessageId"))
    template_id = _text(item.get("templateId"))
    template_name = names.templates.get(template_id, template_id)
    origin = names.origin_of(item)
    values: dict[str, str | None] = {
        "userId": user_id,
        "messageId": message_id,
        "templateId": template_id,
        "templateName": template_name,
        "channel": channel.lower(),
        "originId": origin.id if origin else None,
        "originType": origin.kind if origin else None,
        "originName": origin.name if origin else None,
    }
    status = _text(item.get("status"))
    sent_at, updated_at = _text(item.get("sentAt")), _text(item.get("updatedAt"))
    return DeliveryRow(
        message_id=message_id,
        user_id=user_id,
        user_href=expand_uri_template(links.user, values),
        is_anonymous=item.get("isAnonymous") is True,
        channel=channel,
        channel_label=CHANNEL_LABELS.get(channel, channel),
        status=status,
        status_label=STATUS_LABELS.get(status, status),
        sender=_text(variant.get("from")),
        to=_text(variant.get("to")),
        snippet=_snippet(channel, variant),
        origin_name=origin.name if origin else "",
        origin_href=expand_uri_template(links.origin, values) if origin else None,
        template_id=template_id,
        template_name=template_name,
        template_href=expand_uri_template(links.template, values) if template_id else None,
        sent_at=sent_at,
        sent_at_text=_time_text(sent_at),
        updated_at=updated_at,
        updated_at_text=_time_text(updated_at),
        preview=_preview(channel, variant),
    )


def _snippet(channel: str, variant: Mapping[str, Any]) -> str:
    """Dittofeed's snippet: an email's subject, an SMS's text; a push's title (ours)."""
    if channel == "Email":
        return _text(variant.get("subject"))
    if channel == "Sms":
        return _text(variant.get("body"))
    if channel == "MobilePush":
        return _text(variant.get("title")) or _text(variant.get("body"))
    return ""


def _preview(channel: str, variant: Mapping[str, Any]) -> Preview:
    if channel == "Email":
        return Preview(
            channel,
            subject=_text(variant.get("subject")),
            reply_to=_text(variant.get("replyTo")),
            body=_text(variant.get("body")),
        )
    if channel == "Sms":
        return Preview(channel, body=_text(variant.get("body")))
    if channel == "MobilePush":
        return Preview(channel, title=_text(variant.get("title")), body=_text(variant.get("body")))
    if channel == "Webhook":
        exchange = {"request": variant.get("request"), "response": variant.get("response")}
        return Preview(channel, detail=_json_text(exchange))
    return Preview(channel, detail=_json_text(variant) if variant else "")


def _json_text(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _time_text(iso: str) -> str:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- the screen -------------------------------------------------------------------------------------


async def show_deliveries(request: Request, screen: Screen) -> Response:
    query = read_screen_query(request, screen.workspace_id)
    resource_ids = screen.embedded.resource_ids if screen.embedded else None
    check_resource_ids(resource_ids, named_resources(query), None)

    def load(session: Session) -> tuple[DeliveriesTableDefinition | None, Names]:
        # The configuration shapes embedded screens (Dittofeed §3.4); the console shows everything.
        configuration = (
            effective_configuration(session, screen.workspace_id, COMPONENT) if screen.embedded else None
        )
        return configuration, load_names(session, screen.workspace_id, resource_ids)

    # The page (ClickHouse) and the names (SQL) are read at the same time.
    page, (configuration, names) = await asyncio.gather(
        run_in_threadpool(
            deliveries.search_deliveries,
            request.app.state.event_store,
            screen.workspace_id,
            query.delivery_filter(),
            sort=query.sort(),
            limit=query.limit,
            cursor=query.cursor,
        ),
        in_read_transaction(request, load),
    )
    items: list[dict[str, Any]] = page["items"]
    columns = visible_columns(configuration.columnAllowList if configuration else None)
    offset = deliveries.decode_cursor(query.cursor)
    context: dict[str, Any] = {
        "names": names,
        "columns": columns,
        "column_keys": [key for key, _ in columns],
        "rows": delivery_rows(items, names, row_links(configuration)),
        "first_row": offset + 1,
        "page_url": _page_url(screen, []),
        "first_url": _page_url(screen, filter_pairs(query, paging=True)) if offset > 0 else None,
        "next_url": _cursor_url(screen, query, page.get("cursor")),
        "previous_url": _cursor_url(screen, query, page.get("previousCursor")),
        "download_url": _download_url(screen, query),
        "download_name": deliveries.download_file_name(datetime.now(UTC)),
        "selected": _selected(query),
        "results_id": RESULTS_ID,
        "channel_labels": CHANNEL_LABELS,
        "status_labels": STATUS_LABELS,
        "sort_labels": SORT_LABELS,
    }
    template = "deliveries/results.html" if _wants_results(request) else "deliveries/page.html"
    return render(request, screen, template, **context)


def _wants_results(request: Request) -> bool:
    """The toolbar's and the pager's htmx requests get the results alone; a boosted navigation or
    an htmx history restore gets the whole page."""
    return (
        request.headers.get("hx-target") == RESULTS_ID and "hx-history-restore-request" not in request.headers
    )


def _page_url(screen: Screen, pairs: list[tuple[str, str]]) -> str:
    return f"{screen.page_base}{PATH}?{urlencode([('workspaceId', screen.workspace_id), *pairs])}"


def _cursor_url(screen: Screen, query: ScreenQuery, cursor: str | None) -> str | None:
    if cursor is None:
        return None
    return _page_url(screen, [*filter_pairs(query, paging=True), ("cursor", cursor)])


def _download_url(screen: Screen, query: ScreenQuery) -> str:
    """`GET deliveries/download` of this shell's API mount, with the same filters and order."""
    pairs = [("workspaceId", screen.workspace_id), *filter_pairs(query, paging=False)]
    return f"{screen.api_base}/deliveries/download?{urlencode(pairs)}"


def _selected(query: ScreenQuery) -> dict[str, str]:
    """The toolbar's current values (a picker shows one value of a list filter)."""
    origin = ""
    if query.journeyId:
        origin = f"journey:{query.journeyId}"
    elif query.broadcastId:
        origin = f"broadcast:{query.broadcastId}"
    return {
        "channels": query.channels[0] if query.channels else "",
        "statuses": query.statuses[0] if query.statuses else "",
        "templateIds": query.templateIds[0] if query.templateIds else "",
        "origin": origin,
        "userId": query.userId[0] if query.userId else "",
        "startDate": query.startDate.date().isoformat() if query.startDate else "",
        "endDate": query.endDate.date().isoformat() if query.endDate else "",
        "sortBy": query.sortBy,
        "sortDirection": query.sortDirection,
    }


routes = screen_routes(PATH, show_deliveries, component=COMPONENT, name="deliveries_table")
