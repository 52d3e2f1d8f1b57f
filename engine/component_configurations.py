"""Component configurations (Dittofeed §3): the four definition types that shape an embedded screen,
the admin upsert with upstream's semantics, and which configuration applies to a workspace (its own,
else its parent's). `engine.configuration_enforcement` applies them to embedded requests.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, overload

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.analysis import MessageState
from engine.definitions import check_storable, parse_document
from engine.errors import InvalidInput
from engine.resource_lookup import NameTaken, find_in_workspace, parse_resource_id
from engine.resources import canonical_uuid
from engine.storage.gateway_models import ComponentConfiguration
from engine.storage.models import Workspace

ComponentType = Literal["DeliveriesTable", "Broadcast", "MessageTemplate", "AnalysisChart"]
COMPONENT_TYPES: tuple[ComponentType, ...] = (
    "DeliveriesTable",
    "Broadcast",
    "MessageTemplate",
    "AnalysisChart",
)

DeliveriesColumn = Literal[
    "preview",
    "from",
    "to",
    "userId",
    "snippet",
    "channel",
    "status",
    "origin",
    "sentAt",
    "template",
    "updatedAt",
]
BroadcastStep = Literal["RECIPIENTS", "CONTENT", "CONFIGURATION", "DELIVERIES", "EVENTS"]
EmailProviderType = Literal[
    "SendGrid", "AmazonSes", "Resend", "PostMark", "Smtp", "Test", "MailChimp", "Gmail"
]
EmailContentsType = Literal["Code", "LowCode"]
LowCodeEmailDefaultType = Literal["Informative", "Empty"]
FilterKey = Literal[
    "journeyIds", "broadcastIds", "channels", "providers", "messageStates", "templateIds", "userIds"
]
FILTER_KEYS: tuple[FilterKey, ...] = (
    "journeyIds",
    "broadcastIds",
    "channels",
    "providers",
    "messageStates",
    "templateIds",
    "userIds",
)
ExtraGroupBy = Literal["journey", "broadcast", "messageTemplate", "provider"]
# The group-bys every chart offers, whatever `allowedGroupBy` says.
ALWAYS_ALLOWED_GROUP_BY = frozenset({"channel", "messageState"})
ChartChannel = Literal["Email", "MobilePush", "Sms", "Webhook"]


# -- definitions -------------------------------------------------------------------------------------


class _Definition(BaseModel):
    # Unknown properties are allowed (upstream's TypeBox schemas allow them) and stored as sent.
    model_config = ConfigDict(extra="allow", strict=True)


class DeliveriesTableDefinition(_Definition):
    type: Literal["DeliveriesTable"]
    columnAllowList: list[DeliveriesColumn] | None = None
    userUriTemplate: str | None = None
    templateUriTemplate: str | None = None
    originUriTemplate: str | None = None


class BroadcastDefinition(_Definition):
    type: Literal["Broadcast"]
    stepsAllowList: list[BroadcastStep] | None = None
    emailProviderOverrideAllowList: list[EmailProviderType] | None = None
    hideOverrideSelect: bool | None = None
    hideScheduledSelect: bool | None = None
    hideRateLimit: bool | None = None
    hideDrawer: bool | None = None
    hideTemplateUserPropertiesPanel: bool | None = None
    showErrorHandling: bool | None = None
    allowedEmailContentsTypes: list[EmailContentsType] | None = None
    lowCodeEmailDefaultType: LowCodeEmailDefaultType | None = None


class MessageTemplateDefinition(_Definition):
    type: Literal["MessageTemplate"]
    allowedEmailContentsTypes: list[EmailContentsType] | None = None
    lowCodeEmailDefaultType: LowCodeEmailDefaultType | None = None


class HardcodedFilters(BaseModel):
    # Unknown keys are refused, unlike elsewhere: a misspelt key would silently filter nothing.
    model_config = ConfigDict(extra="forbid", strict=True)

    journeyIds: list[str] | None = None
    broadcastIds: list[str] | None = None
    # Checked against the known values, unlike upstream's plain strings: "email" would match nothing.
    channels: list[ChartChannel] | None = None
    providers: list[str] | None = None
    messageStates: list[MessageState] | None = None
    templateIds: list[str] | None = None
    userIds: list[str] | None = None


class AnalysisChartDefinition(_Definition):
    type: Literal["AnalysisChart"]
    hardcodedFilters: HardcodedFilters | None = None
    allowedFilters: list[FilterKey] | None = None
    allowedGroupBy: list[ExtraGroupBy] | None = None
    allowedChannels: list[ChartChannel] | None = None
    columnAllowList: list[DeliveriesColumn] | None = None
    templateUriTemplate: str | None = None
    originUriTemplate: str | None = None


ComponentDefinition = Annotated[
    DeliveriesTableDefinition | BroadcastDefinition | MessageTemplateDefinition | AnalysisChartDefinition,
    Field(discriminator="type"),
]
_DEFINITION: TypeAdapter[
    DeliveriesTableDefinition | BroadcastDefinition | MessageTemplateDefinition | AnalysisChartDefinition
] = TypeAdapter(ComponentDefinition)


def validate_definition(raw: Any, *, where: str = "body/definition") -> dict[str, Any]:
    """Return `raw`, unchanged, if it is a valid component configuration definition.

    :raises InvalidInput: naming the first offending field under `where`, e.g.
        ``body/definition/stepsAllowList/1``.
    """
    check_storable(raw, where)
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be an object", field=where)
    if raw.get("type") not in COMPONENT_TYPES:
        field = f"{where}/type"
        raise InvalidInput(f"{field} must be one of {', '.join(COMPONENT_TYPES)}", field=field)
    parse_document(_DEFINITION.validate_python, raw, where)
    return raw


# -- the admin API -----------------------------------------------------------------------------------


class ConfigurationNotFound(InvalidInput):
    """Upstream answers a missing configuration with 400 `{type: "NotFound"}` (nothing else)."""

    def __init__(self, field: str) -> None:
        message = f"{field} names no component configuration of the workspace"
        super().__init__(message, field=field, body={"type": "NotFound"})


def configuration_resource(configuration: ComponentConfiguration) -> dict[str, Any]:
    """The wire form; upstream's response schema has no `name`, so its serializer drops it."""
    return {
        "id": configuration.id,
        "workspaceId": configuration.workspace_id,
        "definition": configuration.definition,
    }


def list_configurations(session: Session, workspace_id: str) -> list[ComponentConfiguration]:
    query = select(ComponentConfiguration).where(ComponentConfiguration.workspace_id == workspace_id)
    return list(
        session.scalars(query.order_by(ComponentConfiguration.created_at, ComponentConfiguration.name))
    )


def upsert_configuration(
    session: Session, workspace_id: str, name: str, configuration_id: str | None, definition: Any
) -> ComponentConfiguration:
    """`PUT component-configurations` (§3.3).

    With a definition: insert, or update the name and definition of the row with `configuration_id`
    (when given) else of the workspace's row named `name`. Without one: rename the row with
    `configuration_id`, or, with no id either, return the row named `name`.

    :raises ResourceIdError: `configuration_id` is not a UUID.
    :raises InvalidInput: a malformed definition, naming the field.
    :raises NameTaken: the id is another workspace's row, or the name another row's
        (UniqueConstraintViolation).
    :raises ConfigurationNotFound: nothing to rename or look up (NotFound).
    """
    check_storable(name, "body/name")
    row_id = parse_resource_id(configuration_id, "component configuration")
    if definition is None:
        if row_id is None:
            found = _named(session, workspace_id, name)
            if found is None:
                raise ConfigurationNotFound("body/name")
            return found
        row = find_in_workspace(session, ComponentConfiguration, workspace_id, row_id)
        if row is None:
            raise ConfigurationNotFound("body/id")
        row.name = name
        return _flushed(session, row)
    stored = validate_definition(definition)
    if row_id is not None:
        existing = session.get(ComponentConfiguration, row_id)
        if existing is not None and existing.workspace_id != workspace_id:
            # Upstream's conditional upsert writes nothing, which it reports as this violation.
            raise NameTaken()
    else:
        existing = _named(session, workspace_id, name)
    if existing is None:
        existing = ComponentConfiguration(workspace_id=workspace_id, name=name, definition=stored)
        if row_id is not None:
            existing.id = row_id
        session.add(existing)
    existing.name = name
    existing.definition = stored
    return _flushed(session, existing)


def delete_configuration(session: Session, workspace_id: str, configuration_id: str) -> None:
    """Delete the workspace's row with that id, if there is one (upstream always answers 204)."""
    row_id = canonical_uuid(configuration_id)
    if row_id is None:
        return
    session.execute(
        delete(ComponentConfiguration).where(
            ComponentConfiguration.workspace_id == workspace_id, ComponentConfiguration.id == row_id
        )
    )


def _named(session: Session, workspace_id: str, name: str) -> ComponentConfiguration | None:
    found: ComponentConfiguration | None = session.scalar(
        select(ComponentConfiguration).where(
            ComponentConfiguration.workspace_id == workspace_id, ComponentConfiguration.name == name
        )
    )
    return found


def _flushed(session: Session, row: ComponentConfiguration) -> ComponentConfiguration:
    try:
        session.flush()
    except IntegrityError:
        raise NameTaken() from None
    return row


# -- which configuration applies ---------------------------------------------------------------------


@overload
def effective_configuration(
    session: Session, workspace_id: str, component_type: Literal["DeliveriesTable"]
) -> DeliveriesTableDefinition | None: ...
@overload
def effective_configuration(
    session: Session, workspace_id: str, component_type: Literal["Broadcast"]
) -> BroadcastDefinition | None: ...
@overload
def effective_configuration(
    session: Session, workspace_id: str, component_type: Literal["MessageTemplate"]
) -> MessageTemplateDefinition | None: ...
@overload
def effective_configuration(
    session: Session, workspace_id: str, component_type: Literal["AnalysisChart"]
) -> AnalysisChartDefinition | None: ...
def effective_configuration(
    session: Session, workspace_id: str, component_type: ComponentType
) -> (
    DeliveriesTableDefinition
    | BroadcastDefinition
    | MessageTemplateDefinition
    | AnalysisChartDefinition
    | None
):
    """The configuration of `component_type` that shapes the workspace's screen: its own row named
    after the type, else its parent's; a row whose definition is of another type counts as none."""
    own = _definition_of(session, workspace_id, component_type)
    if own is not None:
        return own
    workspace = session.get(Workspace, workspace_id)
    if workspace is None or workspace.parent_workspace_id is None:
        return None
    return _definition_of(session, workspace.parent_workspace_id, component_type)


def _definition_of(
    session: Session, workspace_id: str, component_type: ComponentType
) -> (
    DeliveriesTableDefinition
    | BroadcastDefinition
    | MessageTemplateDefinition
    | AnalysisChartDefinition
    | None
):
    row = _named(session, workspace_id, component_type)
    if row is None or not isinstance(row.definition, dict) or row.definition.get("type") != component_type:
        return None
    return _DEFINITION.validate_python(row.definition)
