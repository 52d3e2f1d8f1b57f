"""What the OpenAPI document says about each operation: the pydantic models its handler validates with
(imported from the controllers themselves, so the document and the validation cannot drift), the
success status, and what a handler reads outside a model (headers, raw bodies).

`MOUNTED` is keyed by (method, path below the mount): the same handlers answer under `/api/admin`
(admin API key), `/api` (member session) and `/api-l/embedded` (embed session token), so one entry
documents all three. The routes mounted once are in `gateway/openapi_standalone.py`.
`gateway/openapi.py` turns both into the document; a route with no entry fails
tests/gateway/test_openapi.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from engine.messaging.subscription_csv import GROUP_HEADER
from gateway.api import (
    analysis,
    broadcasts,
    component_configurations,
    computed_properties,
    content,
    data_sources,
    deliveries,
    events,
    groups,
    journeys,
    keys,
    permissions,
    provider_settings,
    resources,
    segments,
    subscription_groups,
    user_properties,
    users,
)

Security = Literal["adminApiKey", "embeddedSession", "memberSession", "writeKey", "none"]
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


@dataclass(frozen=True)
class Header:
    name: str
    description: str
    required: bool = True


@dataclass(frozen=True)
class Param:
    """A query parameter a handler reads without a model (e.g. `workspaceId` through
    `resolve_workspace_id`)."""

    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Operation:
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    status: int = 200
    returns: str = "Done."
    # The success body's media type; None when the success response has no body.
    media: str | None = JSON
    # Other success or redirect statuses the handler answers with.
    also: dict[int, str] = field(default_factory=dict)
    body_media: str = JSON
    # A body read as bytes or a form rather than through a model (webhooks, uploads).
    raw_body: dict[str, Any] | None = None
    body_required: bool = True
    headers: tuple[Header, ...] = ()
    params: tuple[Param, ...] = ()
    # None: the default errors of the operation's security (see `gateway.openapi.error_statuses`).
    errors: tuple[int, ...] | None = None
    conflict: bool = False
    # For STANDALONE entries; MOUNTED entries take the mount's.
    security: Security = "adminApiKey"


WORKSPACE_PARAM = Param(
    "workspaceId",
    {"type": "string", "format": "uuid"},
    "The workspace to act on (default: the credential's own); also accepted as the `df-workspace-id` header.",
)
EXTERNAL_ID_PARAM = Param("externalId", {"type": "string"}, "A child workspace named by its externalId.")
CSV_FILE = {
    "type": "object",
    "properties": {"file": {"type": "string", "contentMediaType": "text/csv"}},
    "required": ["file"],
}
SIGNED_BODY = {"type": "object", "description": "The provider's payload, verified against its signature."}


def describe_read(
    summary: str, query: type[BaseModel] | None, returns: str = "Done.", **more: Any
) -> Operation:
    return Operation(summary, query=query, returns=returns, **more)


def describe_write(summary: str, body: type[BaseModel], returns: str = "Done.", **more: Any) -> Operation:
    return Operation(summary, body=body, returns=returns, **more)


def describe_no_content(summary: str, **more: Any) -> Operation:
    return Operation(summary, status=204, returns="Done.", media=None, **more)


# (method, path below /api/admin, /api or /api-l/embedded) → operation. Which mounts have a route is
# up to gateway/mounts.py and each controller; the document lists what the app really routes.
MOUNTED: dict[tuple[str, str], Operation] = {
    # analysis
    ("GET", "/analysis/chart-data"): describe_read(
        "Delivery counts over time", analysis.ChartDataQuery, "Chart series.", params=()
    ),
    ("GET", "/analysis/summary"): describe_read(
        "Delivery totals", analysis.SummaryQuery, "Totals by status."
    ),
    ("GET", "/analysis/journey-stats"): describe_read(
        "A journey's per-node delivery stats", analysis.JourneyStatsQuery, "Per-node stats."
    ),
    # broadcasts
    ("GET", "/broadcasts"): describe_read("List broadcasts", broadcasts.ListQuery, "The broadcasts."),
    ("PUT", "/broadcasts"): describe_write(
        "Rename a broadcast (V1)", broadcasts.RenameBody, "The broadcast."
    ),
    ("PUT", "/broadcasts/v2"): describe_write(
        "Create or update a broadcast", broadcasts.UpsertV2Body, "The broadcast."
    ),
    ("PUT", "/broadcasts/archive"): describe_write(
        "Archive or unarchive", broadcasts.ArchiveBody, "A message."
    ),
    ("POST", "/broadcasts/start"): describe_write(
        "Start a broadcast", broadcasts.BroadcastIdBody, "A message."
    ),
    ("POST", "/broadcasts/pause"): describe_write(
        "Pause a broadcast", broadcasts.BroadcastIdBody, "A message."
    ),
    ("POST", "/broadcasts/resume"): describe_write(
        "Resume a broadcast", broadcasts.BroadcastIdBody, "A message."
    ),
    ("POST", "/broadcasts/cancel"): describe_write(
        "Cancel a broadcast", broadcasts.BroadcastIdBody, "A message."
    ),
    ("PUT", "/broadcasts/recompute-segment"): Operation(
        "Recompute a broadcast's segment now", body=broadcasts.BroadcastIdBody, status=204, media=None
    ),
    ("GET", "/broadcasts/gmail-authorization"): describe_read(
        "Whether Gmail is authorised (never, here)", broadcasts.WorkspaceQuery, "`{authorized}`."
    ),
    ("PUT", "/broadcasts/trigger"): describe_write(
        "Trigger a V1 broadcast", broadcasts.TriggerBody, "The broadcast."
    ),
    ("POST", "/broadcasts/execute"): describe_write(
        "Create and send a V1 broadcast in one call",
        broadcasts.ExecuteBody,
        "`{broadcastId, broadcastName}`.",
    ),
    # computed properties
    ("GET", "/computed-properties/periods"): describe_read(
        "When each segment and user property was last computed", computed_properties.PeriodsQuery
    ),
    ("POST", "/computed-properties/trigger-recompute"): describe_write(
        "Compute the workspace now", computed_properties.TriggerRequest, media=None
    ),
    # content (message templates)
    ("GET", "/content/templates"): describe_read("List templates", content.ListQuery, "`{templates}`."),
    ("PUT", "/content/templates"): describe_write(
        "Create or update a template", content.UpsertTemplateBody, "The template."
    ),
    ("DELETE", "/content/templates"): describe_no_content(
        "Delete a template", body=content.DeleteTemplateBody
    ),
    ("PUT", "/content/templates/reset"): describe_write(
        "Reset a template", content.ResetTemplateBody, "The template."
    ),
    ("POST", "/content/templates/render"): describe_write(
        "Render template contents", content.RenderBody, "`{contents}`."
    ),
    ("POST", "/content/templates/test"): describe_write(
        "Send a test message", content.TestSendBody, "Ok or Err."
    ),
    ("POST", "/content/templates/batch-send"): describe_write(
        "Send a template to up to 1000 users", content.BatchSendBody, "`{results}`."
    ),
    ("DELETE", "/content/templates/v2"): describe_no_content(
        "Delete a template", query=content.DeleteTemplateBody
    ),
    # deliveries
    ("GET", "/deliveries"): describe_read(
        "Search deliveries", deliveries.SearchDeliveriesQuery, "A page of deliveries."
    ),
    ("GET", "/deliveries/count"): describe_read(
        "Count deliveries", deliveries.DeliveryFilterQuery, "`{count}`."
    ),
    ("GET", "/deliveries/download"): describe_read(
        "Download deliveries as CSV", deliveries.DeliveryFilterQuery, "A CSV file.", media="text/csv"
    ),
    # events
    ("GET", "/events"): describe_read("Search events", events.GetEventsQuery, "A page of events."),
    ("GET", "/events/download"): describe_read(
        "Download events as CSV", events.DownloadEventsQuery, "A CSV file.", media="text/csv"
    ),
    ("GET", "/events/traits"): describe_read(
        "Trait keys seen", None, "`{traits}`.", params=(WORKSPACE_PARAM,)
    ),
    ("GET", "/events/properties"): describe_read(
        "Event property keys seen", None, "`{properties}`.", params=(WORKSPACE_PARAM,)
    ),
    # journeys
    ("GET", "/journeys"): describe_read("List journeys", journeys.ListQuery, "`{journeys}`."),
    ("PUT", "/journeys"): describe_write(
        "Create or update a journey", journeys.UpsertJourneyBody, "The journey."
    ),
    ("DELETE", "/journeys"): describe_no_content("Delete a journey", body=journeys.JourneyIdBody),
    ("DELETE", "/journeys/v2"): describe_no_content("Delete a journey", query=journeys.DeleteQuery),
    ("GET", "/journeys/stats"): describe_read("Journey stats", journeys.StatsQuery, "Stats by journey."),
    # resources
    ("GET", "/resources"): describe_read("Ids and names of resources, for pickers", resources.ResourcesQuery),
    # segments
    ("GET", "/segments"): describe_read("List segments", segments.ListQuery, "`{segments}`."),
    ("PUT", "/segments"): describe_write(
        "Create or update a segment", segments.UpsertSegmentBody, "The segment.", conflict=True
    ),
    ("DELETE", "/segments"): describe_no_content("Delete a segment", body=segments.SegmentIdBody),
    ("DELETE", "/segments/v2"): describe_no_content("Delete a segment", query=segments.DeleteQuery),
    ("PATCH", "/segments/status"): describe_write(
        "Set a segment's status", segments.SegmentStatusBody, "The segment."
    ),
    ("GET", "/segments/download"): describe_read(
        "Download segment assignments as CSV", segments.WorkspaceQuery, "A CSV file.", media="text/csv"
    ),
    ("POST", "/segments/upload-csv"): Operation(
        "Upload a manual segment's users as CSV",
        media=None,
        body_media=MULTIPART,
        raw_body=CSV_FILE,
        headers=(
            Header("df-segment-id", "The manual segment."),
            Header("df-manual-segment-append", "`true` to append rather than replace.", required=False),
        ),
        params=(WORKSPACE_PARAM,),
    ),
    ("POST", "/segments/manual-segment/update"): describe_write(
        "Set or append a manual segment's users", segments.ManualUpdateBody, media=None
    ),
    ("POST", "/segments/manual-segment/clear"): describe_write(
        "Empty a manual segment", segments.ManualClearBody, media=None
    ),
    ("GET", "/segments/manual-segment/status"): describe_read(
        "When a manual segment was last computed", segments.SegmentQuery, "`{lastComputedAt}`."
    ),
    # subscription groups
    ("GET", "/subscription-groups"): describe_read("List subscription groups", subscription_groups._Body),
    ("PUT", "/subscription-groups"): describe_write(
        "Create or update a subscription group", subscription_groups.UpsertBody, "The group."
    ),
    ("DELETE", "/subscription-groups"): describe_no_content(
        "Delete a subscription group", body=subscription_groups.DeleteBody
    ),
    ("PUT", "/subscription-groups/assignments"): describe_write(
        "Set users' subscriptions", subscription_groups.AssignmentsBody, media=None
    ),
    ("POST", "/subscription-groups/upload-csv"): Operation(
        "Upload subscriptions as CSV",
        media=None,
        body_media=MULTIPART,
        raw_body=CSV_FILE,
        headers=(Header(GROUP_HEADER, "The subscription group."),),
        params=(WORKSPACE_PARAM,),
    ),
    # user properties
    ("GET", "/user-properties"): describe_read(
        "List user properties", user_properties.ListQuery, "`{userProperties}`."
    ),
    ("PUT", "/user-properties"): describe_write(
        "Create or update a user property", user_properties.UpsertUserPropertyBody, "The user property."
    ),
    ("DELETE", "/user-properties"): describe_no_content(
        "Delete a user property", body=user_properties.DeleteUserPropertyBody
    ),
    ("PATCH", "/user-properties/status"): describe_write(
        "Set a user property's status", user_properties.UserPropertyStatusBody, "The user property."
    ),
    # users
    ("POST", "/users"): describe_write("List users", users.GetUsersBody, "A page of users."),
    ("POST", "/users/count"): describe_write("Count users", users.UserFilterBody, "`{userCount}`."),
    ("GET", "/users/subscriptions"): describe_read("A user's subscriptions", users.UserQuery),
    ("DELETE", "/users"): describe_no_content("Delete users and their events", body=users.DeleteUsersBody),
    ("DELETE", "/users/v2"): describe_no_content(
        "Delete users and their events", query=users.DeleteUsersBody
    ),
    # groups
    ("GET", "/groups/users"): describe_read("Users in a group", groups.GroupUsersQuery, "`{users}`."),
    ("GET", "/groups/user-groups"): describe_read("Groups of a user", groups.UserGroupsQuery, "`{groups}`."),
    # settings: providers, data sources, keys
    ("GET", "/settings/email-providers"): describe_read(
        "Email providers, secrets masked", provider_settings._Body
    ),
    ("PUT", "/settings/email-providers"): Operation(
        "Configure an email provider", body=provider_settings.UpsertProviderBody, status=201, media=None
    ),
    ("PUT", "/settings/email-providers/default"): Operation(
        "Choose the default email provider", body=provider_settings.EmailDefaultBody, status=201, media=None
    ),
    ("GET", "/settings/sms-providers"): describe_read(
        "SMS providers, secrets masked", provider_settings._Body
    ),
    ("PUT", "/settings/sms-providers"): Operation(
        "Configure an SMS provider", body=provider_settings.UpsertProviderBody, status=201, media=None
    ),
    ("PUT", "/settings/sms-providers/default"): Operation(
        "Choose the default SMS provider", body=provider_settings.SmsDefaultBody, status=201, media=None
    ),
    ("GET", "/settings/mobile-push-providers"): describe_read(
        "Mobile push providers", provider_settings._Body
    ),
    ("PUT", "/settings/mobile-push-providers"): Operation(
        "Configure a mobile push provider", body=provider_settings.UpsertProviderBody, status=201, media=None
    ),
    ("GET", "/settings/data-sources"): describe_read(
        "Configured data sources", data_sources.ListDataSourcesQuery, "`{dataSourceConfigurations}`."
    ),
    ("PUT", "/settings/data-sources"): describe_write(
        "Set the Segment source's shared secret", data_sources.UpsertDataSourceRequest, "The configuration."
    ),
    ("DELETE", "/settings/data-sources"): describe_no_content(
        "Remove a data source", query=data_sources.DeleteDataSourceQuery
    ),
    ("GET", "/settings/write-keys"): describe_read("Write keys, with their values", keys.WorkspaceQuery),
    ("PUT", "/settings/write-keys"): describe_no_content("Create a write key", body=keys.WriteKeyBody),
    ("DELETE", "/settings/write-keys"): describe_no_content("Delete a write key", body=keys.WriteKeyBody),
    ("GET", "/admin-keys"): describe_read("Admin API keys (names and ids)", keys.WorkspaceQuery),
    ("POST", "/admin-keys"): describe_write(
        "Create an admin API key (its value is shown once)", keys.AdminKeyBody, "The key.", conflict=True
    ),
    ("DELETE", "/admin-keys"): describe_read("Delete an admin API key", keys.AdminKeyQuery, media=None),
    # members
    ("GET", "/permissions"): describe_read("Members and their roles", permissions._Body, "`{memberRoles}`."),
    ("POST", "/permissions"): Operation(
        "Give a member a role", body=permissions.RoleBody, status=201, returns="The role."
    ),
    ("PUT", "/permissions"): describe_write("Change a member's role", permissions.RoleBody, "The role."),
    ("DELETE", "/permissions"): describe_no_content("Remove a member's role", body=permissions.MemberBody),
    # component configurations
    ("GET", "/component-configurations"): describe_read(
        "Component configurations", component_configurations._Body, "`{componentConfigurations}`."
    ),
    ("PUT", "/component-configurations"): describe_write(
        "Create or update a component configuration",
        component_configurations.UpsertBody,
        "The configuration.",
    ),
    ("DELETE", "/component-configurations"): describe_no_content(
        "Delete a component configuration", query=component_configurations.DeleteQuery
    ),
}
