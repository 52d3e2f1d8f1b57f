"""Segment-shaped events: the request schemas of the public apps API and their expansion into rows
of `user_events_v2` (Dittofeed §5.1).

The stored `message_raw` is the client's object with `type` added, `traits`/`properties` defaulted to
`{}` and `timestamp` defaulted to the submission time; unknown fields are kept. A group call expands
into the two internal assignment events (and an identify of the group when it has traits), all
sharing the request's messageId.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.errors import InvalidInput

EVENT_COLUMNS = ("message_raw", "workspace_id", "message_id", "processing_time", "server_time")
EVENT_COLUMN_TYPES = ("String", "String", "String", "DateTime64(3, 'UTC')", "DateTime64(3, 'UTC')")


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    messageId: str = Field(min_length=1)
    userId: str | None = None
    anonymousId: str | None = None
    timestamp: str | None = None
    context: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _has_identity(self) -> _Message:
        if not self.userId and not self.anonymousId:
            raise ValueError("must have required property 'userId' or 'anonymousId'")
        return self


class IdentifyMessage(_Message):
    traits: dict[str, Any] | None = None


class TrackMessage(_Message):
    event: str = Field(min_length=1)
    properties: dict[str, Any] | None = None
    files: list[dict[str, Any]] | None = None


class PageMessage(_Message):
    name: str | None = None
    properties: dict[str, Any] | None = None


class ScreenMessage(PageMessage):
    pass


class GroupMessage(_Message):
    groupId: str = Field(min_length=1)
    assigned: bool = True
    traits: dict[str, Any] | None = None


class IdentifyItem(IdentifyMessage):
    type: Literal["identify"]


class TrackItem(TrackMessage):
    type: Literal["track"]


class PageItem(PageMessage):
    type: Literal["page"]


class ScreenItem(ScreenMessage):
    type: Literal["screen"]


class GroupItem(GroupMessage):
    type: Literal["group"]


BatchItem = Annotated[
    IdentifyItem | TrackItem | PageItem | ScreenItem | GroupItem, Field(discriminator="type")
]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    batch: list[BatchItem]
    context: dict[str, Any] | None = None


MESSAGE_MODELS: dict[str, type[_Message]] = {
    "identify": IdentifyMessage,
    "track": TrackMessage,
    "page": PageMessage,
    "screen": ScreenMessage,
    "group": GroupMessage,
}


class EventRow(NamedTuple):
    """One row for `user_events_v2`; `key` identifies it for deduplication.

    A named tuple rather than a frozen dataclass: ingest builds one per event, and a tuple is built
    several times faster."""

    workspace_id: str
    message_id: str
    message_raw: str
    server_time: datetime
    key: tuple[str, str, str, str, str]

    def values(self, processing_time: datetime) -> list[Any]:
        return [self.message_raw, self.workspace_id, self.message_id, processing_time, self.server_time]


def build_rows(
    workspace_id: str, event_type: str, raw: dict[str, Any], received_at: datetime
) -> list[EventRow]:
    """Turn one validated message (the client's dict) into the rows it stores."""
    message = {k: v for k, v in raw.items() if k != "files"}
    message["type"] = event_type
    message.setdefault("timestamp", _timestamp_text(received_at))
    if event_type == "group":
        return _expand_group(workspace_id, message, received_at)
    if event_type == "identify":
        message["traits"] = message.get("traits") or {}
    else:
        message["properties"] = message.get("properties") or {}
    return [_row(workspace_id, message, received_at)]


def verbatim_row(
    workspace_id: str, message_raw: str, message: dict[str, Any], received_at: datetime
) -> EventRow:
    """A row storing `message_raw` exactly as received (Segment's webhook); `message` is its parse.

    The key takes the values ClickHouse derives from the stored text, where JSONExtractString reads a
    missing or null field as '', so a redelivery is recognised as the row already stored. The caller
    has checked that `userId`, `anonymousId` and `event` are strings or null.
    """

    def text(name: str) -> str:
        value = message.get(name)
        return value if isinstance(value, str) else ""

    user = text("userId") or text("anonymousId")
    key = (workspace_id, message["messageId"], message["type"], text("event"), user)
    return EventRow(
        workspace_id=workspace_id,
        message_id=message["messageId"],
        message_raw=message_raw,
        server_time=received_at,
        key=key,
    )


def batch_messages(request: BatchRequest, raw: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The batch's items as (type, message) with the batch-level context merged under each item's."""
    batch_context = request.context or {}
    items: list[tuple[str, dict[str, Any]]] = []
    for item in raw["batch"]:
        message = dict(item)
        if batch_context or "context" in message:
            message["context"] = {**batch_context, **(message.get("context") or {})}
        items.append((message.pop("type"), message))
    return items


def _expand_group(workspace_id: str, message: dict[str, Any], received_at: datetime) -> list[EventRow]:
    user = message.get("userId") or message["anonymousId"]
    base: dict[str, Any] = {k: message[k] for k in ("messageId", "timestamp", "context") if k in message}
    assigned = message.get("assigned", True)
    identity: dict[str, Any] = {k: message[k] for k in ("userId", "anonymousId") if message.get(k)}
    messages: list[dict[str, Any]] = [
        {
            **base,
            **identity,
            "type": "track",
            "event": "DFUserGroupAssignment",
            "properties": {"groupId": message["groupId"], "assigned": assigned},
        },
        {
            **base,
            "type": "track",
            "userId": message["groupId"],
            "event": "DFGroupUserAssignment",
            "properties": {"userId": user, "assigned": assigned},
        },
    ]
    if message.get("traits"):
        messages.append(
            {**base, "type": "identify", "userId": message["groupId"], "traits": message["traits"]}
        )
    return [_row(workspace_id, m, received_at) for m in messages]


def _row(workspace_id: str, message: dict[str, Any], received_at: datetime) -> EventRow:
    user = message.get("userId") or message.get("anonymousId") or ""
    # As ClickHouse derives the column: an `event` that is not a string (an identify may carry any
    # unknown field) reads as ''.
    event = message.get("event")
    key = (workspace_id, message["messageId"], message["type"], event if isinstance(event, str) else "", user)
    return EventRow(
        workspace_id=workspace_id,
        message_id=message["messageId"],
        message_raw=_serialise(message),
        server_time=received_at,
        key=key,
    )


@functools.lru_cache(maxsize=16)
def _timestamp_text(received_at: datetime) -> str:
    # Every message of a request shares its received_at: format it once.
    return received_at.isoformat().replace("+00:00", "Z")


# One encoder for every row: json.dumps with options builds a new encoder per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _serialise(message: dict[str, Any]) -> str:
    """The stored JSON text. :raises InvalidInput: a value ClickHouse could not read back (an
    out-of-range number, or a lone UTF-16 surrogate from a `\\ud800` escape)."""
    try:
        text = _ENCODER.encode(message)
        text.encode("utf-8")
    except (ValueError, UnicodeEncodeError) as error:
        raise InvalidInput(f"body has a value that cannot be stored: {error}", field="body") from None
    return text
