"""The shape of a journey definition (Dittofeed §7.3) as pydantic models, and `parse_journey`, which
turns a stored or submitted definition into them.

The runtime walks a parsed `JourneyDefinition`; validation of what goes beyond the shape (references
to segments and templates, constraint violations) belongs to `engine.journeys.resources`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.definitions import check_storable, parse_document

_STRICT = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)
ENTRY = "EntryNode"
EVENT_ENTRY = "EventEntryNode"
EXIT = "ExitNode"


class _Shape(BaseModel):
    model_config = _STRICT


# -- entry and exit ----------------------------------------------------------------------------------


class SegmentEntryNode(_Shape):
    type: Literal["EntryNode"]
    segment: str
    child: str
    reEnter: bool | None = None


class EventEntryNode(_Shape):
    type: Literal["EventEntryNode"]
    event: str
    key: str | None = None
    child: str


class ExitNode(_Shape):
    type: Literal["ExitNode"]


# -- delays ------------------------------------------------------------------------------------------


class SecondsDelay(_Shape):
    type: Literal["Second"]
    seconds: float = Field(ge=0)


class LocalTimeDelay(_Shape):
    type: Literal["LocalTime"]
    hour: int = Field(ge=0, le=23)
    minute: int | None = Field(default=None, ge=0, le=59)
    allowedDaysOfWeek: list[Annotated[int, Field(ge=0, le=6)]] | None = None
    defaultTimezone: str | None = None


class UserPropertyDelay(_Shape):
    type: Literal["UserProperty"]
    userProperty: str
    offsetSeconds: float | None = None
    offsetDirection: Literal["after", "before"] | None = None


DelayVariant = Annotated[SecondsDelay | LocalTimeDelay | UserPropertyDelay, Field(discriminator="type")]


class DelayNode(_Shape):
    type: Literal["DelayNode"]
    id: str
    variant: DelayVariant
    child: str


# -- branching ---------------------------------------------------------------------------------------


class BooleanSplit(_Shape):
    type: Literal["Boolean"]
    segment: str
    trueChild: str
    falseChild: str


class SegmentSplitNode(_Shape):
    type: Literal["SegmentSplitNode"]
    id: str
    variant: BooleanSplit
    name: str | None = None


class WaitForSegmentChild(_Shape):
    id: str
    segmentId: str


class WaitForNode(_Shape):
    type: Literal["WaitForNode"]
    id: str
    timeoutSeconds: float = Field(ge=0)
    timeoutChild: str
    segmentChildren: list[WaitForSegmentChild]


class CohortChild(_Shape):
    id: str
    percent: float = Field(ge=0, le=100)
    name: str | None = None


class RandomCohortNode(_Shape):
    type: Literal["RandomCohortNode"]
    id: str
    children: list[CohortChild]


class RateLimitNode(_Shape):
    type: Literal["RateLimitNode"]
    id: str


# -- messages ----------------------------------------------------------------------------------------


class EmailMessage(_Shape):
    type: Literal["Email"]
    templateId: str
    providerOverride: str | None = None


class SmsMessage(_Shape):
    type: Literal["Sms"]
    templateId: str
    providerOverride: str | None = None
    senderOverride: dict[str, Any] | None = None


class WebhookMessage(_Shape):
    type: Literal["Webhook"]
    templateId: str


class MobilePushMessage(_Shape):
    type: Literal["MobilePush"]
    templateId: str
    providerOverride: str | None = None


MessageVariant = Annotated[
    EmailMessage | SmsMessage | WebhookMessage | MobilePushMessage, Field(discriminator="type")
]


class MessageNode(_Shape):
    type: Literal["MessageNode"]
    id: str
    name: str | None = None
    variant: MessageVariant
    child: str
    subscriptionGroupId: str | None = None
    syncProperties: bool | None = None
    skipOnFailure: bool | None = None
    retryCount: int | None = Field(default=None, ge=0)


BodyNode = Annotated[
    DelayNode | SegmentSplitNode | WaitForNode | MessageNode | RandomCohortNode | RateLimitNode,
    Field(discriminator="type"),
]
EntryNodes = Annotated[SegmentEntryNode | EventEntryNode, Field(discriminator="type")]
AnyNode = (
    SegmentEntryNode
    | EventEntryNode
    | ExitNode
    | DelayNode
    | SegmentSplitNode
    | WaitForNode
    | MessageNode
    | RandomCohortNode
    | RateLimitNode
)


class JourneyDefinition(_Shape):
    entryNode: EntryNodes
    exitNode: ExitNode
    nodes: list[BodyNode]

    def node(self, node_id: str) -> AnyNode:
        """The node addressed by `node_id` (`EntryNode`/`EventEntryNode`, `ExitNode`, or a body id);
        an unknown id is the exit (upstream exits a user whose next node is missing)."""
        if node_id in (ENTRY, EVENT_ENTRY):
            return self.entryNode
        for node in self.nodes:
            if node.id == node_id:
                return node
        return self.exitNode

    @property
    def entry_id(self) -> str:
        return self.entryNode.type


def parse_journey(raw: Any, *, where: str = "body/definition") -> JourneyDefinition:
    """Parse a journey definition.

    :raises InvalidInput: naming the first offending field under `where`.
    """
    check_storable(raw, where)
    return parse_document(JourneyDefinition.model_validate, raw, where)
