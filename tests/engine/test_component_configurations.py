"""Component configurations (Dittofeed §3), on SQLite and Postgres: definitions validated with the
offending field named, upstream's upsert semantics, a child inheriting its parent's configuration,
and the server-side enforcement of each configuration type on embedded requests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from engine import component_configurations as cc
from engine import configuration_enforcement as enforcement
from engine.broadcasts.resources import BroadcastUpsert, upsert_broadcast_v2
from engine.component_configurations import AnalysisChartDefinition, BroadcastDefinition
from engine.configuration_enforcement import RefusedByConfiguration
from engine.errors import InvalidInput, PermissionDenied
from engine.storage.models import Workspace, WorkspaceType
from engine.storage.resource_models import MessageTemplate
from engine.workspaces import create_workspace

CODE_EMAIL = {"type": "Email", "from": "a@acme.test", "subject": "Hi", "body": "<p>Hi</p>"}
LOW_CODE_EMAIL = {**CODE_EMAIL, "emailContentsType": "LowCode", "body": {"type": "doc", "content": []}}


def _workspace(sessions: sessionmaker[Session], parent_id: str | None = None) -> str:
    with sessions.begin() as session:
        if parent_id is None:
            return create_workspace(session, f"p-{uuid.uuid4()}", workspace_type=WorkspaceType.PARENT).id
        parent = session.get(Workspace, parent_id)
        return create_workspace(
            session, f"c-{uuid.uuid4()}", workspace_type=WorkspaceType.CHILD, parent=parent
        ).id


def _put(
    sessions: sessionmaker[Session],
    workspace_id: str,
    name: str,
    definition: Any = None,
    configuration_id: str | None = None,
) -> dict[str, Any]:
    with sessions.begin() as session:
        row = cc.upsert_configuration(session, workspace_id, name, configuration_id, definition)
        return {**cc.configuration_resource(row), "name": row.name}


def _refused_upsert(
    sessions: sessionmaker[Session],
    workspace_id: str,
    name: str,
    definition: Any = None,
    configuration_id: str | None = None,
) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused, sessions.begin() as session:
        cc.upsert_configuration(session, workspace_id, name, configuration_id, definition)
    return refused.value


def _listed(sessions: sessionmaker[Session], workspace_id: str) -> list[dict[str, Any]]:
    with sessions() as session:
        return [
            {**cc.configuration_resource(row), "name": row.name}
            for row in cc.list_configurations(session, workspace_id)
        ]


# -- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ("Broadcast", "body/definition"),
        ({"hideRateLimit": True}, "body/definition/type"),
        ({"type": "JourneyEditor"}, "body/definition/type"),
        ({"type": "Broadcast", "stepsAllowList": ["RECIPIENTS", "SEND"]}, "body/definition/stepsAllowList/1"),
        ({"type": "Broadcast", "hideRateLimit": "yes"}, "body/definition/hideRateLimit"),
        ({"type": "Broadcast", "emailProviderOverrideAllowList": ["Mailgun"]},
         "body/definition/emailProviderOverrideAllowList/0"),
        ({"type": "Broadcast", "lowCodeEmailDefaultType": "Fancy"},
         "body/definition/lowCodeEmailDefaultType"),
        ({"type": "MessageTemplate", "allowedEmailContentsTypes": ["Code", "Html"]},
         "body/definition/allowedEmailContentsTypes/1"),
        ({"type": "DeliveriesTable", "columnAllowList": ["sentAt", "secret"]},
         "body/definition/columnAllowList/1"),
        ({"type": "DeliveriesTable", "userUriTemplate": 7}, "body/definition/userUriTemplate"),
        ({"type": "AnalysisChart", "hardcodedFilters": {"journeyIds": ["j", 1]}},
         "body/definition/hardcodedFilters/journeyIds/1"),
        ({"type": "AnalysisChart", "hardcodedFilters": {"journeyId": ["j"]}},
         "body/definition/hardcodedFilters/journeyId"),
        ({"type": "AnalysisChart", "hardcodedFilters": {"channels": ["email"]}},
         "body/definition/hardcodedFilters/channels/0"),
        ({"type": "AnalysisChart", "allowedFilters": ["channels", "segmentIds"]},
         "body/definition/allowedFilters/1"),
        ({"type": "AnalysisChart", "allowedGroupBy": ["channel"]}, "body/definition/allowedGroupBy/0"),
        ({"type": "AnalysisChart", "allowedChannels": ["Fax"]}, "body/definition/allowedChannels/0"),
    ],
)  # fmt: skip
def test_a_malformed_definition_is_refused_naming_the_field(definition: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        cc.validate_definition(definition)
    assert refused.value.field == field
    assert refused.value.message.startswith(field + " ")


def test_every_field_of_each_type_is_accepted_and_kept_as_sent() -> None:
    definitions: list[dict[str, Any]] = [
        {
            "type": "DeliveriesTable",
            "columnAllowList": ["preview", "from", "to", "userId", "snippet", "channel", "status", "origin",
                                "sentAt", "template", "updatedAt"],
            "userUriTemplate": "https://app.test/users/{userId}",
            "templateUriTemplate": "https://app.test/t/{templateId}",
            "originUriTemplate": "https://app.test/o/{originId}",
        },
        {
            "type": "Broadcast",
            "stepsAllowList": ["RECIPIENTS", "CONTENT", "CONFIGURATION", "DELIVERIES", "EVENTS"],
            "emailProviderOverrideAllowList": ["SendGrid", "AmazonSes", "Resend", "PostMark", "Smtp", "Test",
                                               "MailChimp", "Gmail"],
            "hideOverrideSelect": False,
            "hideScheduledSelect": True,
            "hideRateLimit": True,
            "hideDrawer": False,
            "hideTemplateUserPropertiesPanel": True,
            "showErrorHandling": True,
            "allowedEmailContentsTypes": ["Code", "LowCode"],
            "lowCodeEmailDefaultType": "Empty",
            "futureOption": {"kept": True},
        },
        {"type": "MessageTemplate", "allowedEmailContentsTypes": ["LowCode"],
         "lowCodeEmailDefaultType": "Informative"},
        {
            "type": "AnalysisChart",
            "hardcodedFilters": {"journeyIds": ["j"], "broadcastIds": [], "channels": ["Email"],
                                 "providers": ["SendGrid"], "messageStates": ["opened"], "templateIds": ["t"],
                                 "userIds": ["u"]},
            "allowedFilters": ["journeyIds", "broadcastIds", "channels", "providers", "messageStates",
                               "templateIds", "userIds"],
            "allowedGroupBy": ["journey", "broadcast", "messageTemplate", "provider"],
            "allowedChannels": ["Email", "MobilePush", "Sms", "Webhook"],
            "columnAllowList": ["to", "status"],
            "templateUriTemplate": "/t/{templateId}",
            "originUriTemplate": "/o/{originId}",
        },
    ]  # fmt: skip
    for definition in definitions:
        assert cc.validate_definition(definition) is definition


# -- the upsert --------------------------------------------------------------------------------------


def test_a_definition_is_upserted_by_name(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    first = _put(sessions, workspace_id, "Broadcast", {"type": "Broadcast", "hideRateLimit": True})
    second = _put(sessions, workspace_id, "Broadcast", {"type": "Broadcast", "hideDrawer": True})
    assert second == {**first, "definition": {"type": "Broadcast", "hideDrawer": True}}
    assert _listed(sessions, workspace_id) == [second]


def test_a_supplied_id_is_the_conflict_key(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    chosen = str(uuid.uuid4())
    created = _put(sessions, workspace_id, "Draft", {"type": "DeliveriesTable"}, chosen.upper())
    assert created["id"] == chosen
    # The same id updates the name and the definition.
    narrowed = {"type": "DeliveriesTable", "columnAllowList": ["to"]}
    renamed = _put(sessions, workspace_id, "DeliveriesTable", narrowed, chosen)
    assert renamed == {
        "id": chosen,
        "workspaceId": workspace_id,
        "name": "DeliveriesTable",
        "definition": {"type": "DeliveriesTable", "columnAllowList": ["to"]},
    }
    # A new id with a name another row has violates the unique name.
    refused = _refused_upsert(
        sessions, workspace_id, "DeliveriesTable", {"type": "DeliveriesTable"}, str(uuid.uuid4())
    )
    assert refused.body == {"type": "UniqueConstraintViolation", "message": refused.message}
    assert _listed(sessions, workspace_id) == [renamed]


def test_another_workspaces_id_is_never_updated(sessions: sessionmaker[Session]) -> None:
    mine, theirs = _workspace(sessions), _workspace(sessions)
    their_row = _put(sessions, theirs, "Broadcast", {"type": "Broadcast"})
    refused = _refused_upsert(
        sessions, mine, "Broadcast", {"type": "Broadcast", "hideDrawer": True}, their_row["id"]
    )
    assert refused.body["type"] == "UniqueConstraintViolation"
    assert _listed(sessions, theirs) == [their_row]
    assert _listed(sessions, mine) == []


def test_an_id_must_be_a_uuid(sessions: sessionmaker[Session]) -> None:
    refused = _refused_upsert(
        sessions, _workspace(sessions), "Broadcast", {"type": "Broadcast"}, "not-a-uuid"
    )
    assert refused.body["type"] == "IdError"


def test_without_a_definition_an_id_renames_and_a_name_looks_up(sessions: sessionmaker[Session]) -> None:
    workspace_id, other = _workspace(sessions), _workspace(sessions)
    row = _put(sessions, workspace_id, "Old", {"type": "MessageTemplate"})
    renamed = _put(sessions, workspace_id, "MessageTemplate", configuration_id=row["id"])
    assert renamed == {**row, "name": "MessageTemplate"}
    assert _put(sessions, workspace_id, "MessageTemplate") == renamed

    missing_id = _refused_upsert(sessions, workspace_id, "X", configuration_id=str(uuid.uuid4()))
    assert (missing_id.body, missing_id.field) == ({"type": "NotFound"}, "body/id")
    # Another workspace's row is missing too, for renaming and for lookups.
    assert _refused_upsert(sessions, other, "X", configuration_id=row["id"]).body == {"type": "NotFound"}
    missing_name = _refused_upsert(sessions, other, "MessageTemplate")
    assert (missing_name.body, missing_name.field) == ({"type": "NotFound"}, "body/name")
    assert _listed(sessions, workspace_id) == [renamed]


def test_renaming_onto_a_taken_name_is_a_unique_violation(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    _put(sessions, workspace_id, "Broadcast", {"type": "Broadcast"})
    other = _put(sessions, workspace_id, "Spare", {"type": "Broadcast"})
    refused = _refused_upsert(sessions, workspace_id, "Broadcast", configuration_id=other["id"])
    assert refused.body["type"] == "UniqueConstraintViolation"


def test_delete_always_succeeds_and_touches_only_the_workspace(sessions: sessionmaker[Session]) -> None:
    workspace_id, other = _workspace(sessions), _workspace(sessions)
    row = _put(sessions, workspace_id, "Broadcast", {"type": "Broadcast"})
    with sessions.begin() as session:
        cc.delete_configuration(session, other, row["id"])
        cc.delete_configuration(session, workspace_id, "not-a-uuid")
        cc.delete_configuration(session, workspace_id, str(uuid.uuid4()))
    assert _listed(sessions, workspace_id) == [row]
    with sessions.begin() as session:
        cc.delete_configuration(session, workspace_id, row["id"].upper())
    assert _listed(sessions, workspace_id) == []


# -- which configuration applies ---------------------------------------------------------------------


def test_a_child_inherits_its_parents_configuration_until_it_has_its_own(
    sessions: sessionmaker[Session],
) -> None:
    parent = _workspace(sessions)
    child, sibling = _workspace(sessions, parent), _workspace(sessions, parent)
    stranger = _workspace(sessions)
    _put(sessions, parent, "Broadcast", {"type": "Broadcast", "hideRateLimit": True})
    _put(sessions, child, "Broadcast", {"type": "Broadcast", "hideDrawer": True})
    _put(
        sessions,
        stranger,
        "MessageTemplate",
        {"type": "MessageTemplate", "allowedEmailContentsTypes": ["Code"]},
    )
    with sessions() as session:
        own = cc.effective_configuration(session, child, "Broadcast")
        inherited = cc.effective_configuration(session, sibling, "Broadcast")
        assert isinstance(own, BroadcastDefinition) and own.hideDrawer and not own.hideRateLimit
        assert isinstance(inherited, BroadcastDefinition) and inherited.hideRateLimit
        assert cc.effective_configuration(session, parent, "Broadcast") == inherited
        # Nobody's configuration of another type, nor a stranger's, applies.
        assert cc.effective_configuration(session, child, "MessageTemplate") is None
        assert cc.effective_configuration(session, child, "AnalysisChart") is None


def test_a_configuration_named_after_another_type_is_ignored(sessions: sessionmaker[Session]) -> None:
    parent = _workspace(sessions)
    child = _workspace(sessions, parent)
    _put(sessions, parent, "AnalysisChart", {"type": "AnalysisChart", "allowedChannels": ["Email"]})
    _put(sessions, child, "AnalysisChart", {"type": "DeliveriesTable"})
    _put(sessions, child, "Charts", {"type": "AnalysisChart", "allowedChannels": ["Sms"]})
    with sessions() as session:
        chart = cc.effective_configuration(session, child, "AnalysisChart")
        assert cc.effective_configuration(session, child, "DeliveriesTable") is None
    assert isinstance(chart, AnalysisChartDefinition) and chart.allowedChannels == ["Email"]


# -- enforcement: analysis ---------------------------------------------------------------------------


def _chart(**fields: Any) -> AnalysisChartDefinition:
    return AnalysisChartDefinition.model_validate({"type": "AnalysisChart", **fields})


NO_FILTERS: dict[str, list[str]] = {key: [] for key in cc.FILTER_KEYS}


def test_without_a_chart_configuration_the_request_runs_as_asked() -> None:
    asked = {"journeyIds": ["j-1"], "channels": ["Sms"]}
    assert enforcement.restrict_analysis_filters(None, asked) == {**NO_FILTERS, **asked}
    enforcement.check_group_by(None, "provider")


def test_hardcoded_filters_replace_what_was_asked_per_key() -> None:
    chart = _chart(hardcodedFilters={"journeyIds": ["j-1"], "messageStates": ["opened"]})
    asked = {"journeyIds": ["j-2", "j-3"], "templateIds": ["t-1"]}
    assert enforcement.restrict_analysis_filters(chart, asked) == {
        **NO_FILTERS,
        "journeyIds": ["j-1"],
        "messageStates": ["opened"],
        "templateIds": ["t-1"],
    }


def test_a_filter_outside_allowed_filters_is_refused_unless_hardcoded() -> None:
    chart = _chart(allowedFilters=["channels"], hardcodedFilters={"broadcastIds": ["b-1"]})
    # The client merges the hard-coded filters into its query, as upstream's UI does: not refused.
    assert enforcement.restrict_analysis_filters(chart, {"broadcastIds": ["b-1"], "channels": ["Email"]}) == {
        **NO_FILTERS,
        "broadcastIds": ["b-1"],
        "channels": ["Email"],
    }
    with pytest.raises(PermissionDenied) as refused:
        enforcement.restrict_analysis_filters(chart, {"userIds": ["ada"]})
    assert isinstance(refused.value, RefusedByConfiguration)
    assert refused.value.field == "querystring/filters/userIds"
    assert refused.value.body == {"message": "querystring/filters/userIds is not a filter this chart allows"}


def test_allowed_channels_refuse_others_and_narrow_a_request_naming_none() -> None:
    chart = _chart(allowedChannels=["Email", "Webhook"])
    assert enforcement.restrict_analysis_filters(chart, {})["channels"] == ["Email", "Webhook"]
    assert enforcement.restrict_analysis_filters(chart, {"channels": ["Webhook"]})["channels"] == ["Webhook"]
    with pytest.raises(RefusedByConfiguration) as refused:
        enforcement.restrict_analysis_filters(chart, {"channels": ["Email", "Sms"]})
    assert refused.value.field == "querystring/filters/channels"
    assert "Sms" in refused.value.message
    # The summary names its one channel `channel`.
    with pytest.raises(RefusedByConfiguration) as summary:
        enforcement.restrict_analysis_filters(
            chart, {"channels": ["Sms"]}, field_names={"channels": "channel"}
        )
    assert summary.value.field == "querystring/filters/channel"
    # Hard-coded channels are the parent's choice and win over the allowed ones.
    hardcoded = _chart(allowedChannels=["Email"], hardcodedFilters={"channels": ["Sms"]})
    assert enforcement.restrict_analysis_filters(hardcoded, {"channels": ["Email"]})["channels"] == ["Sms"]


def test_group_by_outside_the_allowed_ones_is_refused() -> None:
    chart = _chart(allowedGroupBy=["journey"])
    for allowed in (None, "journey", "channel", "messageState"):
        enforcement.check_group_by(chart, allowed)
    with pytest.raises(RefusedByConfiguration) as refused:
        enforcement.check_group_by(chart, "provider")
    assert refused.value.field == "querystring/groupBy"
    enforcement.check_group_by(_chart(), "provider")  # no allowedGroupBy: everything


def test_the_summary_channel_never_widens_the_restriction() -> None:
    assert enforcement.summary_channel(None, []) is None
    assert enforcement.summary_channel("Sms", []) == "Sms"
    assert enforcement.summary_channel(None, ["Email"]) == "Email"
    assert enforcement.summary_channel("Sms", ["Email"]) == "Email"
    assert enforcement.summary_channel("Sms", ["Email", "Sms"]) == "Sms"
    assert enforcement.summary_channel("Webhook", ["Email", "Sms"]) is None


# -- enforcement: broadcasts -------------------------------------------------------------------------


def _broadcast_config(**fields: Any) -> BroadcastDefinition:
    return BroadcastDefinition.model_validate({"type": "Broadcast", **fields})


def _email_config(**fields: Any) -> dict[str, Any]:
    return {"type": "V2", "message": {"type": "Email"}, **fields}


@pytest.mark.parametrize(
    ("config", "asked", "field"),
    [
        ({"hideRateLimit": True}, {"config": _email_config(rateLimit=5)}, "body/config/rateLimit"),
        ({"hideScheduledSelect": True}, {"scheduledAt": "2026-11-22 09:00"}, "body/scheduledAt"),
        ({}, {"config": _email_config(errorHandling="SkipOnError")}, "body/config/errorHandling"),
        ({"showErrorHandling": False}, {"config": _email_config(errorHandling="PauseOnError")},
         "body/config/errorHandling"),
        ({"hideOverrideSelect": True},
         {"config": {"type": "V2", "message": {"type": "Sms", "providerOverride": "Twilio"}}},
         "body/config/message/providerOverride"),
        ({"emailProviderOverrideAllowList": ["SendGrid"]},
         {"config": {"type": "V2", "message": {"type": "Email", "providerOverride": "Smtp"}}},
         "body/config/message/providerOverride"),
        ({"emailProviderOverrideAllowList": []},
         {"config": {"type": "V2", "message": {"type": "Email", "providerOverride": "SendGrid"}}},
         "body/config/message/providerOverride"),
    ],
)  # fmt: skip
def test_a_broadcast_write_may_not_set_what_the_screen_hides(
    config: dict[str, Any], asked: dict[str, Any], field: str
) -> None:
    with pytest.raises(RefusedByConfiguration) as refused:
        enforcement.refuse_hidden_broadcast_options(_broadcast_config(**config), asked, None)
    assert refused.value.field == field


def test_a_broadcast_write_within_the_configuration_passes() -> None:
    strict = _broadcast_config(
        hideRateLimit=True, hideScheduledSelect=True, emailProviderOverrideAllowList=["SendGrid"]
    )
    for asked in (
        {"config": {"type": "V2", "message": {"type": "Email", "providerOverride": "SendGrid"}}},
        {"config": _email_config(rateLimit=None), "scheduledAt": None},
        {"config": {"type": "V2", "message": {"type": "Sms", "providerOverride": "Twilio"}}},
        {"name": "Renamed only"},
    ):
        enforcement.refuse_hidden_broadcast_options(strict, asked, None)
    enforcement.refuse_hidden_broadcast_options(None, {"config": _email_config(rateLimit=5)}, None)
    permissive = _broadcast_config(showErrorHandling=True)
    enforcement.refuse_hidden_broadcast_options(
        permissive, {"config": _email_config(errorHandling="PauseOnError")}, None
    )


def test_resending_a_value_the_broadcast_already_has_is_not_setting_it() -> None:
    strict = _broadcast_config(hideRateLimit=True, hideScheduledSelect=True, hideOverrideSelect=True)
    config = {"type": "V2", "message": {"type": "Email", "providerOverride": "Smtp"}, "rateLimit": 10}
    stored = {"config": config, "scheduledAt": "2026-11-22 09:00"}
    enforcement.refuse_hidden_broadcast_options(strict, {**stored, "name": "Renamed"}, stored)
    with pytest.raises(RefusedByConfiguration) as refused:
        changed = {**config, "rateLimit": 20}
        enforcement.refuse_hidden_broadcast_options(strict, {"config": changed}, stored)
    assert refused.value.field == "body/config/rateLimit"


def _template(sessions: sessionmaker[Session], workspace_id: str, definition: dict[str, Any]) -> str:
    with sessions.begin() as session:
        template = MessageTemplate(workspace_id=workspace_id, name=str(uuid.uuid4()), definition=definition)
        session.add(template)
        session.flush()
        return template.id


def test_a_broadcast_may_not_attach_a_template_of_a_disallowed_editor(
    sessions: sessionmaker[Session],
) -> None:
    parent = _workspace(sessions)
    child = _workspace(sessions, parent)
    _put(sessions, parent, "Broadcast", {"type": "Broadcast", "allowedEmailContentsTypes": ["LowCode"]})
    code, low_code = _template(sessions, child, CODE_EMAIL), _template(sessions, child, LOW_CODE_EMAIL)
    with sessions() as session:
        enforcement.check_broadcast_write(session, child, {"name": "Sale", "messageTemplateId": low_code})
        with pytest.raises(RefusedByConfiguration) as refused:
            enforcement.check_broadcast_write(session, child, {"name": "Sale", "messageTemplateId": code})
    assert refused.value.field == "body/messageTemplateId"
    # Without a configuration anything goes.
    with sessions() as session:
        enforcement.check_broadcast_write(session, parent, {"name": "Sale", "messageTemplateId": code})


# -- enforcement: templates --------------------------------------------------------------------------


def test_an_email_editor_outside_the_allowed_ones_is_refused() -> None:
    enforcement.check_email_contents_type(
        ["Code"], CODE_EMAIL, where="body/definition", screen="MessageTemplate"
    )
    enforcement.check_email_contents_type(
        ["Code"], {"type": "Sms", "body": "x"}, where="body/draft", screen="MessageTemplate"
    )
    enforcement.check_email_contents_type(
        None, LOW_CODE_EMAIL, where="body/definition", screen="MessageTemplate"
    )
    with pytest.raises(RefusedByConfiguration) as refused:
        enforcement.check_email_contents_type(
            ["LowCode"], CODE_EMAIL, where="body/draft", screen="MessageTemplate"
        )
    assert refused.value.field == "body/draft/emailContentsType"
    assert "Code" in refused.value.message


def test_template_writes_follow_message_template_and_broadcast_lists(sessions: sessionmaker[Session]) -> None:
    workspace_id = _workspace(sessions)
    both = {"type": "MessageTemplate", "allowedEmailContentsTypes": ["Code", "LowCode"]}
    _put(sessions, workspace_id, "MessageTemplate", both)
    _put(sessions, workspace_id, "Broadcast", {"type": "Broadcast", "allowedEmailContentsTypes": ["Code"]})
    loose = _template(sessions, workspace_id, CODE_EMAIL)
    used = _template(sessions, workspace_id, CODE_EMAIL)
    with sessions.begin() as session:
        upsert_broadcast_v2(
            session,
            workspace_id,
            BroadcastUpsert(name="Sale", message_template_id=used),
            now=datetime(2026, 3, 1, tzinfo=UTC),
        )
    documents = {"body/definition": LOW_CODE_EMAIL}
    with sessions() as session:
        # A template no broadcast uses follows the MessageTemplate list only.
        enforcement.check_template_write(session, workspace_id, documents, template_id=loose, name="x")
        enforcement.check_template_write(session, workspace_id, documents, template_id=None, name="brand new")
        with pytest.raises(RefusedByConfiguration) as refused:
            enforcement.check_template_write(session, workspace_id, documents, template_id=used, name="x")
    assert refused.value.field == "body/definition/emailContentsType"

    _put(
        sessions,
        workspace_id,
        "MessageTemplate",
        {"type": "MessageTemplate", "allowedEmailContentsTypes": ["Code"]},
    )
    with sessions() as session, pytest.raises(RefusedByConfiguration) as refused:
        enforcement.check_template_write(
            session, workspace_id, {"body/draft": LOW_CODE_EMAIL}, template_id=None, name="new"
        )
    assert refused.value.field == "body/draft/emailContentsType"
