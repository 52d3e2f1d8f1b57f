"""Server-side enforcement of component configurations on embedded requests.

Upstream enforces every restriction only in the UI (§3.4); feedgate re-applies the ones that decide
what data an embedded user sees or what a broadcast does:

- AnalysisChart (chart data and summary): `hardcodedFilters` replace, per key, what the request asked
  for (a hard-coded key is never refused, since upstream's UI merges them into its query);
  `allowedChannels` refuses a channel outside it and narrows a request that names none (hard-coded
  channels win over it); `allowedGroupBy` and `allowedFilters` refuse a group-by or a filter outside
  them (403 naming the field). Journey stats belong to the journey editor and are not restricted.
- Broadcast: a V2 write may not set an option the screen hides (`config.rateLimit` under
  `hideRateLimit`, `scheduledAt` under `hideScheduledSelect`, `config.message.providerOverride` under
  `hideOverrideSelect`, `config.errorHandling` unless `showErrorHandling`) nor pick an email provider
  outside `emailProviderOverrideAllowList`. A value the broadcast already has is not "set" by resending it,
  so an editor that writes back the whole config keeps working when the parent chose that value.
- MessageTemplate and Broadcast: `allowedEmailContentsTypes` refuses writing an email template whose
  editor type (Code / LowCode) is outside the list. The MessageTemplate list governs every template
  write; the Broadcast list governs templates a broadcast uses (attaching one, or editing one that a
  broadcast already uses).

Left to the UI: `stepsAllowList`, `hideDrawer`, `hideTemplateUserPropertiesPanel`,
`lowCodeEmailDefaultType`, column allow-lists and link templates. DeliveriesTable restricts no data,
and the AnalysisChart's hard-coded filters are not applied to `deliveries`: the server cannot tell the
chart's drill-down from the deliveries table (both call the same endpoint), and the embedded session
may read every delivery through that table anyway, so the chart's filters shape the chart, not access.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.component_configurations import (
    ALWAYS_ALLOWED_GROUP_BY,
    FILTER_KEYS,
    AnalysisChartDefinition,
    BroadcastDefinition,
    effective_configuration,
)
from engine.errors import PermissionDenied
from engine.messaging.template_models import email_contents_type
from engine.resource_lookup import find_in_workspace
from engine.resources import canonical_uuid
from engine.storage.broadcast_models import Broadcast
from engine.storage.resource_models import MessageTemplate

# -- enforcement: analysis ---------------------------------------------------------------------------


class RefusedByConfiguration(PermissionDenied):
    """An embedded request asks for what the workspace's component configuration does not allow."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field


def restrict_analysis_filters(
    chart: AnalysisChartDefinition | None,
    asked: Mapping[str, Sequence[str]],
    *,
    where: str = "querystring/filters",
    field_names: Mapping[str, str] | None = None,
) -> dict[str, list[str]]:
    """The filters an embedded chart request runs with (every key of FILTER_KEYS, [] = no filter).

    A hard-coded key replaces what was asked; any other key asked for must be in `allowedFilters`;
    channels asked for must be in `allowedChannels`, and a request naming none is narrowed to them.
    `field_names` maps a filter key to the request's own name for it (the summary's `channel`).

    :raises RefusedByConfiguration: a filter or channel outside the configuration, naming the field.
    """
    names = field_names or {}
    effective: dict[str, list[str]] = {key: list(asked.get(key, ())) for key in FILTER_KEYS}
    if chart is None:
        return effective
    hardcoded = chart.hardcodedFilters.model_dump(exclude_none=True) if chart.hardcodedFilters else {}
    for key in FILTER_KEYS:
        field = f"{where}/{names.get(key, key)}"
        if key in hardcoded:
            effective[key] = list(hardcoded[key])
            continue
        if effective[key] and chart.allowedFilters is not None and key not in chart.allowedFilters:
            raise RefusedByConfiguration(field, "is not a filter this chart allows")
    if "channels" not in hardcoded and chart.allowedChannels is not None:
        outside = [channel for channel in effective["channels"] if channel not in chart.allowedChannels]
        if outside:
            field = f"{where}/{names.get('channels', 'channels')}"
            allowed = ", ".join(chart.allowedChannels) or "none"
            raise RefusedByConfiguration(
                field, f"{outside[0]} is not an allowed channel (allowed: {allowed})"
            )
        if not effective["channels"]:
            effective["channels"] = list(chart.allowedChannels)
    return effective


def check_group_by(
    chart: AnalysisChartDefinition | None, group_by: str | None, *, field: str = "querystring/groupBy"
) -> None:
    """:raises RefusedByConfiguration: `group_by` is neither always allowed nor in `allowedGroupBy`."""
    if chart is None or chart.allowedGroupBy is None or group_by is None:
        return
    if group_by not in ALWAYS_ALLOWED_GROUP_BY and group_by not in chart.allowedGroupBy:
        raise RefusedByConfiguration(field, f"{group_by} is not a grouping this chart allows")


def summary_channel(asked: str | None, channels: Sequence[str]) -> str | None:
    """The one channel a summary computes its per-channel numbers for, once its filters are
    restricted to `channels`: the only one there is, else the asked one if it is among them."""
    if len(channels) == 1:
        return channels[0]
    if asked is not None and (not channels or asked in channels):
        return asked
    return None


# -- enforcement: broadcasts -------------------------------------------------------------------------


def refuse_hidden_broadcast_options(
    config: BroadcastDefinition | None, asked: Mapping[str, Any], stored: Mapping[str, Any] | None
) -> None:
    """Refuse a `PUT broadcasts/v2` body (`asked`) that sets what the Broadcast screen hides or
    forbids. `stored` is the broadcast as it is (`{"config", "scheduledAt"}`), None for a new one; a
    value equal to the stored one is not being set.

    :raises RefusedByConfiguration: naming the field.
    """
    if config is None:
        return
    before = stored or {}
    if "scheduledAt" in asked and config.hideScheduledSelect:
        scheduled = asked["scheduledAt"]
        if scheduled is not None and scheduled != before.get("scheduledAt"):
            raise RefusedByConfiguration("body/scheduledAt", "cannot be set: scheduling is hidden")
    new_config = asked.get("config")
    if not isinstance(new_config, dict):
        return
    old_config = before.get("config") if isinstance(before.get("config"), dict) else {}
    assert isinstance(old_config, dict)

    def sets(key: str) -> bool:
        return new_config.get(key) is not None and new_config.get(key) != old_config.get(key)

    if config.hideRateLimit and sets("rateLimit"):
        raise RefusedByConfiguration("body/config/rateLimit", "cannot be set: the rate limit is hidden")
    if not config.showErrorHandling and sets("errorHandling"):
        raise RefusedByConfiguration("body/config/errorHandling", "cannot be set: error handling is hidden")
    message = new_config.get("message")
    old_message = old_config.get("message")
    if not isinstance(message, dict):
        return
    override = message.get("providerOverride")
    previous = old_message.get("providerOverride") if isinstance(old_message, dict) else None
    if override is None or override == previous:
        return
    field = "body/config/message/providerOverride"
    if config.hideOverrideSelect:
        raise RefusedByConfiguration(field, "cannot be set: the provider override is hidden")
    allow_list = config.emailProviderOverrideAllowList
    if message.get("type") == "Email" and allow_list is not None and override not in allow_list:
        allowed = ", ".join(allow_list) or "none"
        raise RefusedByConfiguration(
            field, f"{override} is not an allowed email provider (allowed: {allowed})"
        )


def check_broadcast_write(session: Session, workspace_id: str, asked: Mapping[str, Any]) -> None:
    """Enforce the workspace's Broadcast configuration on an embedded `PUT broadcasts/v2` body: the
    hidden options, and the editor types of a template it attaches.

    :raises RefusedByConfiguration: naming the field.
    """
    config = effective_configuration(session, workspace_id, "Broadcast")
    if config is None:
        return
    broadcast = _stored_broadcast(session, workspace_id, asked)
    stored = (
        None if broadcast is None else {"config": broadcast.config, "scheduledAt": broadcast.scheduled_at}
    )
    refuse_hidden_broadcast_options(config, asked, stored)
    template_id = asked.get("messageTemplateId")
    if not isinstance(template_id, str) or config.allowedEmailContentsTypes is None:
        return
    if broadcast is not None and broadcast.message_template_id == canonical_uuid(template_id):
        return
    template = find_in_workspace(session, MessageTemplate, workspace_id, template_id)
    if template is None:
        return  # the upsert names the missing reference
    for document in (template.definition, template.draft):
        contents = email_contents_type(document) if isinstance(document, dict) else None
        if contents is not None and contents not in config.allowedEmailContentsTypes:
            raise RefusedByConfiguration(
                "body/messageTemplateId",
                f"names a {contents} email template; broadcasts allow "
                f"{', '.join(config.allowedEmailContentsTypes) or 'none'}",
            )


def _stored_broadcast(session: Session, workspace_id: str, asked: Mapping[str, Any]) -> Broadcast | None:
    broadcast_id = asked.get("id")
    if isinstance(broadcast_id, str):
        return find_in_workspace(session, Broadcast, workspace_id, broadcast_id)
    name = asked.get("name")
    if not isinstance(name, str):
        return None
    found: Broadcast | None = session.scalar(
        select(Broadcast).where(Broadcast.workspace_id == workspace_id, Broadcast.name == name)
    )
    return found


# -- enforcement: templates --------------------------------------------------------------------------


def check_email_contents_type(
    allowed: Sequence[str] | None, document: Any, *, where: str, screen: str
) -> None:
    """:raises RefusedByConfiguration: `document` is an email template of an editor type outside
    `allowed`, naming ``<where>/emailContentsType``."""
    if allowed is None or not isinstance(document, dict):
        return
    contents = email_contents_type(document)
    if contents is not None and contents not in allowed:
        raise RefusedByConfiguration(
            f"{where}/emailContentsType",
            f"{contents} is not an email editor the {screen} configuration allows "
            f"(allowed: {', '.join(allowed) or 'none'})",
        )


def check_template_write(
    session: Session,
    workspace_id: str,
    documents: Mapping[str, Any],
    *,
    template_id: str | None,
    name: str | None,
) -> None:
    """Enforce `allowedEmailContentsTypes` on an embedded template write. `documents` maps where
    each written document is in the request (``body/definition``, ``body/draft``) to the document;
    the template is found by id, else by name, to know whether a broadcast uses it.

    :raises RefusedByConfiguration: naming ``<where>/emailContentsType``.
    """
    templates_config = effective_configuration(session, workspace_id, "MessageTemplate")
    broadcast_config = effective_configuration(session, workspace_id, "Broadcast")
    broadcast_allowed = broadcast_config.allowedEmailContentsTypes if broadcast_config else None
    if broadcast_allowed is not None and not _used_by_a_broadcast(session, workspace_id, template_id, name):
        broadcast_allowed = None
    for where, document in documents.items():
        if templates_config is not None:
            check_email_contents_type(
                templates_config.allowedEmailContentsTypes, document, where=where, screen="MessageTemplate"
            )
        check_email_contents_type(broadcast_allowed, document, where=where, screen="Broadcast")


def _used_by_a_broadcast(
    session: Session, workspace_id: str, template_id: str | None, name: str | None
) -> bool:
    if template_id is not None:
        template = find_in_workspace(session, MessageTemplate, workspace_id, template_id)
    elif name is not None:
        template = session.scalar(
            select(MessageTemplate).where(
                MessageTemplate.workspace_id == workspace_id, MessageTemplate.name == name
            )
        )
    else:
        template = None
    if template is None:
        return False
    used = session.scalar(
        select(Broadcast.id)
        .where(Broadcast.workspace_id == workspace_id, Broadcast.message_template_id == template.id)
        .limit(1)
    )
    return used is not None
