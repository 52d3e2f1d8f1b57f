"""What the broadcast screens (table and editor) share: who may change broadcasts, which broadcasts a
session reaches, the editor's steps and which of them the workspace's Broadcast configuration
allows, and a broadcast described for display.

Writes follow the rules of `broadcasts` on the API: in an embed the session's scope must allow
writing `broadcasts`, its `resourceIds` must name what a write names, and the workspace's Broadcast
configuration (engine.configuration_enforcement) holds every V2 write; in the console the member
needs the Author role. The configuration shapes embedded screens only (Dittofeed §3.4): the console
shows every step and option.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from components.screens import Screen
from engine.broadcasts.lifecycle import load_broadcast
from engine.broadcasts.resources import broadcast_progress
from engine.component_configurations import BroadcastDefinition, BroadcastStep, effective_configuration
from engine.errors import InvalidInput, NotFound, PermissionDenied
from engine.resources import canonical_uuid
from engine.storage.broadcast_models import Broadcast, BroadcastStatus
from engine.storage.resource_models import MessageTemplate, Segment
from gateway.embed_policy import check_resource_ids

COMPONENT: Literal["Broadcast"] = "Broadcast"
TABLE_PATH = "/broadcasts"
EDITOR_PATH = "/broadcasts/v2"
# Dittofeed's steps, in their fixed order.
STEPS: tuple[BroadcastStep, ...] = get_args(BroadcastStep)
STEP_LABELS: dict[str, str] = {
    "RECIPIENTS": "Recipients",
    "CONTENT": "Content",
    "CONFIGURATION": "Configuration",
    "DELIVERIES": "Deliveries",
    "EVENTS": "Events",
}
# Steps about what was sent: offered once the broadcast has left Draft, as upstream does.
SENDING_STEPS = frozenset({"DELIVERIES", "EVENTS"})
# The lifecycle actions a status offers, in the order the editor shows them.
ACTIONS_BY_STATUS: dict[BroadcastStatus, tuple[str, ...]] = {
    BroadcastStatus.DRAFT: ("start",),
    BroadcastStatus.SCHEDULED: ("cancel",),
    BroadcastStatus.RUNNING: ("pause", "cancel"),
    BroadcastStatus.PAUSED: ("resume", "cancel"),
}
ACTION_LABELS = {"start": "Start", "pause": "Pause", "resume": "Resume", "cancel": "Cancel"}


# -- who may do what ---------------------------------------------------------------------------------


def check_may_write(screen: Screen) -> None:
    screen.check_write("broadcasts", "broadcasts")


def may_write(screen: Screen) -> bool:
    return screen.may_write("broadcasts")


def may_create(screen: Screen) -> bool:
    return screen.may_create("broadcasts")


def check_in_reach(screen: Screen, named: Mapping[str, Any]) -> None:
    """:raises PermissionDenied: `named` (API field names: id, segmentId, ...) names a resource outside
    the embed session's `resourceIds`."""
    if screen.embedded is not None:
        check_resource_ids(screen.embedded.resource_ids, None, named)


def in_reach(screen: Screen, resource_id: str) -> bool:
    reach = screen.embedded.resource_ids if screen.embedded is not None else None
    return reach is None or resource_id in reach


def opens_component(screen: Screen, component: str) -> bool:
    """Whether a link to another screen of `component` would open in this session."""
    components = screen.embedded.components if screen.embedded is not None else None
    return components is None or component in components


# -- the configuration and the steps -----------------------------------------------------------------


def screen_configuration(session: Session, screen: Screen) -> BroadcastDefinition | None:
    """The Broadcast configuration shaping this screen: the workspace's in an embed, none in the
    console."""
    if screen.embedded is None:
        return None
    return effective_configuration(session, screen.workspace_id, COMPONENT)


def allowed_steps(configuration: BroadcastDefinition | None) -> list[str]:
    """The steps the configuration allows, in Dittofeed's order (all without a configuration)."""
    if configuration is None or configuration.stepsAllowList is None:
        return list(STEPS)
    return [step for step in STEPS if step in configuration.stepsAllowList]


def shown_steps(configuration: BroadcastDefinition | None, status: BroadcastStatus) -> list[str]:
    """The step tabs: the allowed steps, the sending ones only once the broadcast left Draft."""
    steps = allowed_steps(configuration)
    if status == BroadcastStatus.DRAFT:
        return [step for step in steps if step not in SENDING_STEPS]
    return steps


def parse_step(value: str | None, *, field: str = "step") -> str | None:
    """:raises InvalidInput: naming `field`, when `value` is not one of the steps."""
    if value is None or value == "":
        return None
    step = value.strip().upper()
    if step not in STEPS:
        raise InvalidInput(f"{field} must be one of {', '.join(STEPS)}", field=field)
    return step


def check_step_allowed(configuration: BroadcastDefinition | None, step: str) -> None:
    """:raises PermissionDenied: the configuration's `stepsAllowList` leaves `step` out."""
    if step not in allowed_steps(configuration):
        raise PermissionDenied(f"The {step} step is not enabled for this workspace's broadcasts")


def load_v2(session: Session, workspace_id: str, broadcast_id: str) -> Broadcast:
    """:raises NotFound: no V2 broadcast of the workspace has that id (a V1 one has no editor; and an
    upsert by an unknown id would create one, where the editor only edits)."""
    canonical = canonical_uuid(broadcast_id)
    if canonical is None:
        raise NotFound("broadcast not found")
    broadcast = load_broadcast(session, workspace_id, canonical)
    if broadcast.version != "V2":
        raise NotFound(f"Broadcast {broadcast.name} is a V1 broadcast: it has no editor")
    return broadcast


# -- a broadcast, described --------------------------------------------------------------------------


@dataclass(frozen=True)
class BroadcastSummary:
    """A broadcast as the table row and the editor's header show it."""

    id: str
    name: str
    version: str
    status: str
    archived: bool
    channel: str
    segment_id: str | None
    segment_name: str | None
    template_id: str | None
    template_name: str | None
    created_at: datetime
    updated_at: datetime
    progress: dict[str, int]

    @property
    def status_enum(self) -> BroadcastStatus:
        return BroadcastStatus(self.status)

    @property
    def editable(self) -> bool:
        """Only a Draft changes whom it sends to, what and when (engine.broadcasts.resources)."""
        return self.status == BroadcastStatus.DRAFT.value

    @property
    def created_iso(self) -> str:
        return iso_text(self.created_at)

    @property
    def updated_iso(self) -> str:
        return iso_text(self.updated_at)

    @property
    def created_text(self) -> str:
        return time_text(self.created_at)

    @property
    def updated_text(self) -> str:
        return time_text(self.updated_at)


def describe_broadcasts(
    session: Session, workspace_id: str, broadcasts: list[Broadcast]
) -> list[BroadcastSummary]:
    """`broadcasts` with the names of their segments and templates and their send progress."""
    segment_ids = {b.segment_id for b in broadcasts if b.segment_id}
    template_ids = {b.message_template_id for b in broadcasts if b.message_template_id}
    segment_names = _names(session, Segment, workspace_id, segment_ids)
    template_names = _names(session, MessageTemplate, workspace_id, template_ids)
    return [
        BroadcastSummary(
            id=broadcast.id,
            name=broadcast.name,
            version=broadcast.version,
            status=broadcast.status.value,
            archived=broadcast.archived,
            channel=channel_of(broadcast),
            segment_id=broadcast.segment_id,
            segment_name=segment_names.get(broadcast.segment_id or ""),
            template_id=broadcast.message_template_id,
            template_name=template_names.get(broadcast.message_template_id or ""),
            created_at=broadcast.created_at,
            updated_at=broadcast.updated_at,
            progress=broadcast_progress(session, broadcast.id),
        )
        for broadcast in broadcasts
    ]


def channel_of(broadcast: Broadcast) -> str:
    """The channel a V2 broadcast's config names (Email when it names none)."""
    message = (broadcast.config or {}).get("message")
    channel = message.get("type") if isinstance(message, dict) else None
    return channel if isinstance(channel, str) else "Email"


def _names(
    session: Session, model: type[Segment] | type[MessageTemplate], workspace_id: str, ids: set[str]
) -> dict[str, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(model.id, model.name).where(model.workspace_id == workspace_id, model.id.in_(sorted(ids)))
    )
    return {row.id: row.name for row in rows}


def utc(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso_text(moment: datetime) -> str:
    return utc(moment).isoformat().replace("+00:00", "Z")


def time_text(moment: datetime) -> str:
    return utc(moment).strftime("%Y-%m-%d %H:%M UTC")
