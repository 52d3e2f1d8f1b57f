"""The shapes of segment and user-property definitions (Dittofeed §7.0–7.2), as pydantic models of
upstream's TypeBox schemas. engine.definitions validates with them and adds the rules beyond shapes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from engine.json_paths import parse_path

# Strict, so a definition is stored only when it already has the types the compute loop reads
# (no "3" for 3); TypeBox objects allow unknown properties, so extra fields are kept.
_STRICT = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)


def _checked_path(path: str) -> str:
    parse_path(path)
    return path


# A trait or event-property path, refused at validation when no query could follow it.
JsonPath = Annotated[str, AfterValidator(_checked_path)]


class _Shape(BaseModel):
    model_config = _STRICT


# -- segment operators (§7.0) ------------------------------------------------------------------------


class EqualsOperator(_Shape):
    type: Literal["Equals"]
    value: str | float


class NotEqualsOperator(_Shape):
    type: Literal["NotEquals"]
    value: str | float


class ExistsOperator(_Shape):
    type: Literal["Exists"]


class NotExistsOperator(_Shape):
    type: Literal["NotExists"]


class GreaterThanOrEqualOperator(_Shape):
    type: Literal["GreaterThanOrEqual"]
    value: float


class LessThanOperator(_Shape):
    type: Literal["LessThan"]
    value: float


class WithinOperator(_Shape):
    type: Literal["Within"]
    windowSeconds: float


class HasBeenOperator(_Shape):
    type: Literal["HasBeen"]
    comparator: Literal["GTE", "LT"]
    value: str | float
    windowSeconds: float


class AbsoluteTimestampOperator(_Shape):
    type: Literal["AbsoluteTimestamp"]
    absoluteTimestamp: str
    direction: Literal["after", "before"]

    @field_validator("absoluteTimestamp")
    @classmethod
    def _iso(cls, value: str) -> str:
        # The compute loop parses it; an unparseable timestamp would fail every later period.
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 timestamp") from None
        return value


SegmentOperator = Annotated[
    EqualsOperator
    | NotEqualsOperator
    | ExistsOperator
    | NotExistsOperator
    | GreaterThanOrEqualOperator
    | LessThanOperator
    | WithinOperator
    | HasBeenOperator
    | AbsoluteTimestampOperator,
    Field(discriminator="type"),
]
KeyedPerformedOperator = Annotated[
    EqualsOperator | NotEqualsOperator | ExistsOperator | GreaterThanOrEqualOperator | LessThanOperator,
    Field(discriminator="type"),
]
# Operators that compare a value with the clock or its history: defined on traits only (§7.0).
TRAIT_ONLY_OPERATORS = frozenset({"Within", "HasBeen", "AbsoluteTimestamp"})


class PropertyFilter(_Shape):
    path: JsonPath
    operator: SegmentOperator


class KeyedPropertyFilter(_Shape):
    path: JsonPath
    operator: KeyedPerformedOperator


# -- segment nodes (§7.1) ----------------------------------------------------------------------------
# Optional fields default to a value of their own type rather than None: TypeBox's Optional allows
# the field to be absent, never null.

TimesOperator = Literal["=", ">=", "<"]
EmailEvent = Literal[
    "DFInternalMessageSent",
    "DFEmailDropped",
    "DFEmailDelivered",
    "DFEmailOpened",
    "DFEmailClicked",
    "DFEmailBounced",
    "DFEmailMarkedSpam",
]


class _Node(_Shape):
    id: str


class TraitNode(_Node):
    type: Literal["Trait"]
    path: JsonPath
    operator: SegmentOperator


class PerformedNode(_Node):
    type: Literal["Performed"]
    event: str
    times: float = 1
    timesOperator: TimesOperator = "="
    withinSeconds: float = 0
    properties: list[PropertyFilter] = []


class LastPerformedNode(_Node):
    type: Literal["LastPerformed"]
    event: str
    whereProperties: list[PropertyFilter] = []
    hasProperties: list[PropertyFilter] = []


class KeyedPerformedNode(_Node):
    type: Literal["KeyedPerformed"]
    event: str
    key: str
    times: float = 1
    timesOperator: TimesOperator = ">="
    properties: list[KeyedPropertyFilter] = []


class EmailNode(_Node):
    type: Literal["Email"]
    event: EmailEvent
    templateId: str
    times: float = 1


class BroadcastNode(_Node):
    type: Literal["Broadcast"]


class SubscriptionGroupNode(_Node):
    type: Literal["SubscriptionGroup"]
    subscriptionGroupId: str
    subscriptionGroupType: Literal["OptIn", "OptOut"]


class SubscriptionGroupUnsubscribedNode(_Node):
    type: Literal["SubscriptionGroupUnsubscribed"]
    subscriptionGroupId: str


class ManualNode(_Node):
    type: Literal["Manual"]
    version: float


class RandomBucketNode(_Node):
    type: Literal["RandomBucket"]
    percent: float = Field(ge=0, le=1)


class EveryoneNode(_Node):
    type: Literal["Everyone"]


class IncludesNode(_Node):
    type: Literal["Includes"]
    path: JsonPath
    item: str


class AndNode(_Node):
    type: Literal["And"]
    children: list[str]


class OrNode(_Node):
    type: Literal["Or"]
    children: list[str]


AnySegmentNode = (
    TraitNode
    | PerformedNode
    | LastPerformedNode
    | KeyedPerformedNode
    | EmailNode
    | BroadcastNode
    | SubscriptionGroupNode
    | SubscriptionGroupUnsubscribedNode
    | ManualNode
    | RandomBucketNode
    | EveryoneNode
    | IncludesNode
    | AndNode
    | OrNode
)
SegmentNode = Annotated[AnySegmentNode, Field(discriminator="type")]
ENTRY_ONLY_NODES = frozenset({"Manual", "Everyone", "KeyedPerformed"})


class SegmentDefinition(_Shape):
    entryNode: SegmentNode
    # Body nodes: any node but the entry-only ones, which are refused below with a clearer message
    # than a failed union would give.
    nodes: list[SegmentNode]


# -- user property definitions (§7.2) ----------------------------------------------------------------


class UserPropertyEquals(_Shape):
    type: Literal["Equals"]
    value: str


class UserPropertyFilter(_Shape):
    path: JsonPath
    operator: UserPropertyEquals


class IdProperty(_Shape):
    type: Literal["Id"]


class AnonymousIdProperty(_Shape):
    type: Literal["AnonymousId"]


class TraitProperty(_Shape):
    type: Literal["Trait"]
    path: JsonPath
    id: str = ""


class PerformedProperty(_Shape):
    type: Literal["Performed"]
    event: str
    path: JsonPath
    properties: list[UserPropertyFilter] = []
    skipReCompute: bool = False
    id: str = ""


class PerformedManyEvent(_Shape):
    event: str


class PerformedManyProperty(_Shape):
    type: Literal["PerformedMany"]
    or_: list[PerformedManyEvent] = Field(alias="or")
    id: str = ""


class KeyedPerformedProperty(_Shape):
    type: Literal["KeyedPerformed"]
    event: str
    path: JsonPath
    key: str
    properties: list[UserPropertyFilter] = []
    id: str = ""


class FileProperty(_Shape):
    type: Literal["File"]
    name: str
    skipReCompute: bool = False
    id: str = ""


class AnyOfProperty(_Shape):
    type: Literal["AnyOf"]
    id: str
    children: list[str]


GroupChild = Annotated[
    AnyOfProperty | TraitProperty | PerformedProperty | FileProperty | KeyedPerformedProperty,
    Field(discriminator="type"),
]


class GroupProperty(_Shape):
    type: Literal["Group"]
    entry: str
    nodes: list[GroupChild]


UserPropertyNode = Annotated[
    IdProperty
    | AnonymousIdProperty
    | GroupProperty
    | TraitProperty
    | PerformedProperty
    | FileProperty
    | KeyedPerformedProperty
    | PerformedManyProperty,
    Field(discriminator="type"),
]


USER_PROPERTY = TypeAdapter(UserPropertyNode)
