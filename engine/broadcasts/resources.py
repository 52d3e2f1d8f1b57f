"""Broadcasts as resources (Dittofeed §6.5): the V2 upsert with upstream's typed refusals, rename,
archive, listing, and the wire forms of V1 and V2 broadcasts (`engine.broadcasts.execute` builds V1
broadcasts).

What a broadcast's status means, and moving it, is `engine.broadcasts.lifecycle`'s; sending is
`engine.broadcasts.execution`'s. Here a broadcast is only described, so everything a worker later
relies on is checked before it is stored: the references exist in the same workspace, the template,
the subscription group and the config name one channel, and the config is well formed.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.broadcasts.lifecycle import load_broadcast
from engine.broadcasts.schedule import parse_local
from engine.definitions import check_storable, parse_document
from engine.errors import InvalidInput
from engine.messaging.ledger import count_states
from engine.messaging.providers.registry import EMAIL_PROVIDERS, SMS_PROVIDERS
from engine.resource_lookup import NameTaken, find_in_workspace, parse_resource_id
from engine.resources import UNSET, canonical_uuid, epoch_ms
from engine.storage.broadcast_models import Broadcast, BroadcastStatus
from engine.storage.resource_models import (
    MessageTemplate,
    Segment,
    SubscriptionGroup,
)
from engine.storage.send_models import SendState

MAX_BATCH_SIZE = 1000
# The channels a broadcast can send on (upstream: "Mobile push is not supported yet").
BROADCAST_CHANNELS = ("Email", "Sms", "Webhook")
# What V1 broadcasts built by `execute_broadcast` may send (upstream: Email only; feedgate adds SMS).
EXECUTE_CHANNELS = ("Email", "Sms")
# A naive local date and time, as the dashboard writes it ("2026-11-22 09:00") or ISO-like with `T`.
_SCHEDULED_AT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?")
# The fields only a Draft broadcast may change: they decide who gets what, and when.
_DRAFT_ONLY = ("segmentId", "messageTemplateId", "subscriptionGroupId", "config", "scheduledAt")


class BroadcastRefused(InvalidInput):
    """Upstream's typed 400 of `PUT broadcasts/v2`: `{type, message}`, `field` naming the culprit."""

    def __init__(self, error_type: str, message: str, field: str) -> None:
        super().__init__(message, field=field, body={"type": error_type, "message": message})


@dataclass(frozen=True)
class BroadcastUpsert:
    """A `PUT broadcasts/v2` body. UNSET means "not sent"; for the three ids and `scheduled_at`, None
    means "clear it". `config` is the client's document, validated here and stored as sent."""

    id: str | None = None
    name: str | None = None
    segment_id: str | None = UNSET
    message_template_id: str | None = UNSET
    subscription_group_id: str | None = UNSET
    config: Any = UNSET
    scheduled_at: str | None = UNSET


# -- the V2 config -----------------------------------------------------------------------------------


class _Shape(BaseModel):
    # Unknown properties are allowed (upstream's TypeBox schemas allow them) and kept as sent.
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


class _MessageSid(_Shape):
    type: Literal["MessageSid"]
    messagingServiceSid: str


class _PhoneNumber(_Shape):
    type: Literal["PhoneNumber"]
    phone: str


class _EmailMessage(_Shape):
    type: Literal["Email"]
    providerOverride: str | None = None


class _SmsMessage(_Shape):
    type: Literal["Sms"]
    providerOverride: str | None = None
    senderOverride: Annotated[_MessageSid | _PhoneNumber, Field(discriminator="type")] | None = None


class _WebhookMessage(_Shape):
    type: Literal["Webhook"]


class _MobilePushMessage(_Shape):
    type: Literal["MobilePush"]


class _V2Config(_Shape):
    type: Literal["V2"]
    message: Annotated[
        _EmailMessage | _SmsMessage | _WebhookMessage | _MobilePushMessage, Field(discriminator="type")
    ]
    # Accepted as given: a rate limit that is not positive cancels the broadcast when it starts, as
    # upstream's workflow does (engine.broadcasts.lifecycle).
    rateLimit: float | None = None
    batchSize: int | None = Field(default=None, ge=1, le=MAX_BATCH_SIZE)
    defaultTimezone: str | None = None
    useIndividualTimezone: bool | None = None
    errorHandling: Literal["PauseOnError", "SkipOnError"] | None = None


def validate_broadcast_config(raw: Any, *, where: str = "body/config") -> dict[str, Any]:
    """Return `raw`, unchanged, if it is a valid `BroadcastV2Config` feedgate can send.

    :raises InvalidInput: naming the first offending field under `where`; a MobilePush message is
        upstream's ConstraintViolation.
    """
    check_storable(raw, where)
    config = parse_document(_V2Config.model_validate, raw, where)
    message = config.message
    if isinstance(message, _MobilePushMessage):
        raise BroadcastRefused(
            "ConstraintViolation", "Mobile push is not supported yet", f"{where}/message/type"
        )
    known = {_EmailMessage: EMAIL_PROVIDERS, _SmsMessage: SMS_PROVIDERS}.get(type(message), {})
    override = message.providerOverride if isinstance(message, _EmailMessage | _SmsMessage) else None
    if override is not None and override not in known:
        field = f"{where}/message/providerOverride"
        raise InvalidInput(
            f"{field} must be one of {', '.join(known)} for {message.type} messages", field=field
        )
    if config.defaultTimezone is not None and config.defaultTimezone not in _time_zones():
        field = f"{where}/defaultTimezone"
        raise InvalidInput(f"{field} must be an IANA time zone, like Europe/Paris", field=field)
    return raw  # type: ignore[no-any-return]  # validated above as an object


def validate_scheduled_at(raw: str, *, field: str = "body/scheduledAt") -> str:
    """Return `raw` if it is a naive local date and time ("2026-11-22 09:00", "2026-11-22T09:00:30").

    It has no offset on purpose: it is read in the broadcast's timezone(s) when the broadcast starts.
    :raises InvalidInput: naming `field`.
    """
    try:
        if _SCHEDULED_AT.fullmatch(raw) is None:
            raise ValueError
        parse_local(raw)  # how the worker reads it
    except ValueError:
        message = f"{field} must be a local date and time without an offset, like 2026-11-22 09:00"
        raise InvalidInput(message, field=field) from None
    return raw


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


# -- reading -----------------------------------------------------------------------------------------


def list_broadcasts(session: Session, workspace_id: str, *, ids: Sequence[str] = ()) -> list[Broadcast]:
    """The workspace's broadcasts, V1 and V2, newest first."""
    query = select(Broadcast).where(Broadcast.workspace_id == workspace_id)
    if ids:
        query = query.where(Broadcast.id.in_([canonical_uuid(i) or i for i in ids]))
    return list(session.scalars(query.order_by(Broadcast.created_at.desc(), Broadcast.id.desc())))


def broadcast_resource(session: Session, broadcast: Broadcast) -> dict[str, Any]:
    """The broadcast as Dittofeed's `BroadcastResourceV2` or `BroadcastResource` (V1), by version.

    Both carry a read-only `progress` object, a feedgate extension: the broadcast's messages in the
    send ledger by state, `{total, sent, failed, skipped, pending, cancelled}` (`pending` counts the
    ones being sent too). Upstream clients ignore it.
    """
    if broadcast.version == "V1":
        return v1_resource(session, broadcast)
    resource: dict[str, Any] = {
        "id": broadcast.id,
        "workspaceId": broadcast.workspace_id,
        "name": broadcast.name,
        "status": broadcast.status.value,
        "config": broadcast.config,
        "archived": broadcast.archived,
        "createdAt": epoch_ms(broadcast.created_at),
        "updatedAt": epoch_ms(broadcast.updated_at),
        "version": "V2",
    }
    for key, value in (
        ("segmentId", broadcast.segment_id),
        ("messageTemplateId", broadcast.message_template_id),
        ("subscriptionGroupId", broadcast.subscription_group_id),
        ("scheduledAt", broadcast.scheduled_at),
    ):
        if value is not None:
            resource[key] = value
    resource["progress"] = broadcast_progress(session, broadcast.id)
    return resource


def v1_resource(session: Session, broadcast: Broadcast) -> dict[str, Any]:
    """The V1 field set (`PUT broadcasts` answers it for every broadcast). A V2 broadcast keeps its own
    status and version here; upstream would call it NotStarted and V1, which misreports it."""
    resource: dict[str, Any] = {
        "workspaceId": broadcast.workspace_id,
        "id": broadcast.id,
        "name": broadcast.name,
        "status": broadcast.status.value,
        "archived": broadcast.archived,
        "createdAt": epoch_ms(broadcast.created_at),
        "updatedAt": epoch_ms(broadcast.updated_at),
        "version": broadcast.version,
    }
    for key, value in (
        ("segmentId", broadcast.segment_id),
        ("journeyId", broadcast.journey_id),
        ("messageTemplateId", broadcast.message_template_id),
    ):
        if value is not None:
            resource[key] = value
    if broadcast.triggered_at is not None:
        resource["triggeredAt"] = epoch_ms(broadcast.triggered_at)
    resource["progress"] = broadcast_progress(session, broadcast.id)
    return resource


def broadcast_progress(session: Session, broadcast_id: str) -> dict[str, int]:
    """The broadcast's messages in the send ledger, by state."""
    counts = count_states(session, broadcast_id)
    return {
        "total": sum(counts.values()),
        "sent": counts.get(SendState.SENT, 0),
        "failed": counts.get(SendState.FAILED, 0),
        "skipped": counts.get(SendState.SKIPPED, 0),
        "pending": counts.get(SendState.PENDING, 0) + counts.get(SendState.SENDING, 0),
        "cancelled": counts.get(SendState.CANCELLED, 0),
    }


# -- writing -----------------------------------------------------------------------------------------


def upsert_broadcast_v2(
    session: Session, workspace_id: str, upsert: BroadcastUpsert, *, now: datetime
) -> Broadcast:
    """Create or update a V2 broadcast: by `id` when one is given, else by name.

    On create a name is required, the subscription group defaults to the workspace's oldest group of
    the broadcast's channel, and the config to `{"type": "V2", "message": {"type": <channel>}}`. Fields
    not sent are left as they are. Only a Draft broadcast may change what it sends, to whom and when.

    :raises ResourceIdError: `id` is not a UUID (IdError).
    :raises BroadcastRefused: `id` names another workspace's broadcast (IdError); no name to create
        with (MissingRequiredFields); a reference that names nothing of the workspace, channels that
        disagree, MobilePush, a V1 broadcast, or a change to a broadcast that is no longer a Draft
        (ConstraintViolation).
    :raises NameTaken: the name is another broadcast's (UniqueConstraintViolation).
    :raises InvalidInput: a malformed config or scheduledAt, naming the field.
    """
    check_storable(upsert.name, "body/name")
    broadcast_id = parse_resource_id(upsert.id, "broadcast")
    existing = _find_for_upsert(session, workspace_id, broadcast_id, upsert.name)
    if existing is not None and existing.version != "V2":
        raise BroadcastRefused(
            "ConstraintViolation", "This is a V1 broadcast: PUT broadcasts renames it", "id"
        )
    if existing is None and not upsert.name:
        raise BroadcastRefused(
            "MissingRequiredFields", "Name is required when creating a new broadcast", "name"
        )
    _reference(session, workspace_id, Segment, upsert.segment_id, "segmentId", "segment")
    template = _reference(
        session, workspace_id, MessageTemplate, upsert.message_template_id, "messageTemplateId", "template"
    )
    group = _reference(
        session,
        workspace_id,
        SubscriptionGroup,
        upsert.subscription_group_id,
        "subscriptionGroupId",
        "subscription group",
    )
    config = upsert.config
    if config is not UNSET:
        config = validate_broadcast_config(config)
    if upsert.scheduled_at not in (UNSET, None):
        validate_scheduled_at(upsert.scheduled_at)
    if existing is not None:
        _check_draft_only(existing, upsert, config)
    # The broadcast as it will be once written: every channel it names must be the same one.
    effective_template = template if template is not UNSET else _stored(session, MessageTemplate, existing)
    effective_group = group if group is not UNSET else _stored(session, SubscriptionGroup, existing)
    effective_config = config if config is not UNSET else (existing.config if existing else None)
    channel = _one_channel(effective_template, effective_group, effective_config)
    if existing is None:
        return _create(session, workspace_id, broadcast_id, upsert, channel, config, now)
    _update(session, existing, upsert, config, now)
    flush_broadcast(session)
    return existing


def rename_broadcast(
    session: Session, workspace_id: str, broadcast_id: str, name: str | None, *, now: datetime
) -> Broadcast:
    """`PUT broadcasts`: set the name (None leaves it).

    :raises NotFound: no such broadcast. :raises NameTaken: another broadcast has the name.
    """
    check_storable(name, "body/name")
    broadcast = _load(session, workspace_id, broadcast_id)
    if name is not None and name != broadcast.name:
        check_name_free(session, workspace_id, name, broadcast.id)
        broadcast.name = name
        broadcast.updated_at = now
        flush_broadcast(session)
    return broadcast


def archive_broadcast(
    session: Session, workspace_id: str, broadcast_id: str, archived: bool, *, now: datetime
) -> Broadcast:
    """Archive (or unarchive) a broadcast; archiving hides it in the dashboard and stops nothing.

    :raises NotFound: no such broadcast.
    """
    broadcast = _load(session, workspace_id, broadcast_id)
    if broadcast.archived != archived:
        broadcast.archived = archived
        broadcast.updated_at = now
    return broadcast


# -- helpers -----------------------------------------------------------------------------------------


def _load(session: Session, workspace_id: str, broadcast_id: str) -> Broadcast:
    return load_broadcast(session, workspace_id, canonical_uuid(broadcast_id) or broadcast_id)


def _find_for_upsert(
    session: Session, workspace_id: str, broadcast_id: str | None, name: str | None
) -> Broadcast | None:
    if broadcast_id is not None:
        found = session.get(Broadcast, broadcast_id)
        if found is not None and found.workspace_id != workspace_id:
            raise BroadcastRefused("IdError", "The broadcast id is in use; choose another", "id")
        return found
    if not name:
        return None
    named: Broadcast | None = session.scalar(
        select(Broadcast).where(Broadcast.workspace_id == workspace_id, Broadcast.name == name)
    )
    return named


def _reference(
    session: Session,
    workspace_id: str,
    model: type[Segment] | type[MessageTemplate] | type[SubscriptionGroup],
    value: str | None,
    field: str,
    noun: str,
) -> Any:
    """The row `value` names (None to clear, UNSET if not sent).

    :raises BroadcastRefused: it names nothing of the workspace."""
    if value is UNSET or value is None:
        return value
    found = find_in_workspace(session, model, workspace_id, value)
    if found is None:
        raise BroadcastRefused("ConstraintViolation", f"{field} names no {noun} of this workspace", field)
    return found


def _stored(
    session: Session, model: type[MessageTemplate] | type[SubscriptionGroup], existing: Broadcast | None
) -> Any:
    """What the broadcast refers to now, of `model` (None for a new broadcast)."""
    if existing is None:
        return None
    stored_id = existing.message_template_id if model is MessageTemplate else existing.subscription_group_id
    return find_in_workspace(session, model, existing.workspace_id, stored_id) if stored_id else None


def _template_channel(template: MessageTemplate) -> str | None:
    # A template's channel is its definition's type, else its draft's (§6.1).
    for document in (template.definition, template.draft):
        if isinstance(document, dict) and isinstance(document.get("type"), str):
            return str(document["type"])
    return None


def _one_channel(
    template: MessageTemplate | None, group: SubscriptionGroup | None, config: dict[str, Any] | None
) -> str:
    """The one channel the template, the group and the config name (Email when none names one).

    :raises BroadcastRefused: they name different channels, or MobilePush."""
    named: list[tuple[str, str]] = []
    if template is not None and (channel := _template_channel(template)) is not None:
        named.append(("messageTemplateId", channel))
    if group is not None:
        named.append(("subscriptionGroupId", group.channel.value))
    if config is not None:
        named.append(("config/message/type", str(config["message"]["type"])))
    if len({channel for _, channel in named}) > 1:
        fields = ", ".join(f"{field} ({channel})" for field, channel in named)
        raise BroadcastRefused(
            "ConstraintViolation",
            f"The message template, subscription group and broadcast config must all be the same "
            f"channel type: {fields}",
            ", ".join(field for field, _ in named),
        )
    channel = named[0][1] if named else "Email"
    if channel not in BROADCAST_CHANNELS:
        field = named[0][0]
        raise BroadcastRefused("ConstraintViolation", f"Mobile push is not supported yet ({field})", field)
    return channel


def _check_draft_only(broadcast: Broadcast, upsert: BroadcastUpsert, config: Any) -> None:
    if broadcast.status == BroadcastStatus.DRAFT:
        return
    sent = {
        "segmentId": (upsert.segment_id, broadcast.segment_id),
        "messageTemplateId": (upsert.message_template_id, broadcast.message_template_id),
        "subscriptionGroupId": (upsert.subscription_group_id, broadcast.subscription_group_id),
        "config": (config, broadcast.config),
        "scheduledAt": (upsert.scheduled_at, broadcast.scheduled_at),
    }
    for field in _DRAFT_ONLY:
        new, old = sent[field]
        if new is UNSET:
            continue
        if field.endswith("Id") and new is not None:
            new = canonical_uuid(new)
        if new != old:
            raise BroadcastRefused(
                "ConstraintViolation",
                f"{field} cannot change: the broadcast is {broadcast.status.value}, and only a Draft "
                "broadcast can be edited",
                field,
            )


def _create(
    session: Session,
    workspace_id: str,
    broadcast_id: str | None,
    upsert: BroadcastUpsert,
    channel: str,
    config: Any,
    now: datetime,
) -> Broadcast:
    assert upsert.name is not None
    check_name_free(session, workspace_id, upsert.name, broadcast_id)
    group_id = upsert.subscription_group_id
    if group_id is UNSET or group_id is None:
        group_id = oldest_group(session, workspace_id, channel)
    broadcast = Broadcast(
        workspace_id=workspace_id,
        name=upsert.name,
        version="V2",
        status=BroadcastStatus.DRAFT,
        segment_id=_id_or_none(upsert.segment_id),
        message_template_id=_id_or_none(upsert.message_template_id),
        subscription_group_id=canonical_uuid(group_id) if group_id else None,
        config=config if config is not UNSET else {"type": "V2", "message": {"type": channel}},
        scheduled_at=None if upsert.scheduled_at is UNSET else upsert.scheduled_at,
        archived=False,
        created_at=now,
        updated_at=now,
    )
    if broadcast_id is not None:
        broadcast.id = broadcast_id
    session.add(broadcast)
    flush_broadcast(session)
    return broadcast


def _update(
    session: Session, broadcast: Broadcast, upsert: BroadcastUpsert, config: Any, now: datetime
) -> None:
    if upsert.name and upsert.name != broadcast.name:
        check_name_free(session, broadcast.workspace_id, upsert.name, broadcast.id)
        broadcast.name = upsert.name
    if upsert.segment_id is not UNSET:
        broadcast.segment_id = _id_or_none(upsert.segment_id)
    if upsert.message_template_id is not UNSET:
        broadcast.message_template_id = _id_or_none(upsert.message_template_id)
    if upsert.subscription_group_id is not UNSET:
        broadcast.subscription_group_id = _id_or_none(upsert.subscription_group_id)
    if config is not UNSET:
        broadcast.config = config
    if upsert.scheduled_at is not UNSET:
        broadcast.scheduled_at = upsert.scheduled_at
    broadcast.updated_at = now


def _id_or_none(value: str | None) -> str | None:
    """A sent reference in canonical form; None when cleared or not sent. `_reference` found the row,
    so the value is a UUID."""
    return canonical_uuid(value) if value is not UNSET and value else None


def oldest_group(session: Session, workspace_id: str, channel: str) -> str | None:
    group_id: str | None = session.scalar(
        select(SubscriptionGroup.id)
        .where(SubscriptionGroup.workspace_id == workspace_id, SubscriptionGroup.channel == channel)
        .order_by(SubscriptionGroup.created_at, SubscriptionGroup.id)
        .limit(1)
    )
    return group_id


def check_name_free(session: Session, workspace_id: str, name: str, own_id: str | None) -> None:
    """:raises NameTaken: another broadcast of the workspace has `name`."""
    query = select(Broadcast.id).where(Broadcast.workspace_id == workspace_id, Broadcast.name == name)
    if own_id is not None:
        query = query.where(Broadcast.id != own_id)
    if session.scalar(query.limit(1)) is not None:
        raise NameTaken(message="The broadcast name must be unique")


def flush_broadcast(session: Session) -> None:
    # A concurrent writer took the name or the id between the check and the write.
    try:
        session.flush()
    except IntegrityError:
        raise NameTaken(message="The broadcast name must be unique") from None
