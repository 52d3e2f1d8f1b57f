"""Edits of a journey definition as the journey editor makes them (the graph stays connected, fields
are typed, refusals name the field, the argument is never changed) and how the editor draws one."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components import journey_editing as drawing
from components import journey_tree_edits as edits
from engine.errors import InvalidInput, NotFound
from engine.journeys.definition import parse_journey

EXIT = "ExitNode"


def chain(*kinds: str) -> tuple[dict[str, Any], list[str]]:
    """Entry → one node of each kind, in order (each on the first way out of the last) → exit; and
    their ids."""
    definition, ids, last = edits.new_definition(), [], "EntryNode"
    for kind in kinds:
        first_slot = edits.slots(edits.node_in(definition, last))[0][0]
        definition, last = edits.add_node(definition, last, first_slot, kind)
        ids.append(last)
    return definition, ids


def test_a_new_journey_enters_by_a_segment_straight_to_the_exit() -> None:
    definition = edits.new_definition()
    assert definition == {
        "entryNode": {"type": "EntryNode", "segment": "", "child": EXIT},
        "exitNode": {"type": EXIT},
        "nodes": [],
    }
    parse_journey(definition)


@pytest.mark.parametrize("kind", edits.ADDABLE)
def test_each_addable_node_is_a_valid_shape_leading_on_to_where_the_edge_led(kind: str) -> None:
    definition, (delay,) = chain("DelayNode")
    added, node_id = edits.add_node(definition, "EntryNode", "child", kind)
    parse_journey(added)
    assert added["entryNode"]["child"] == node_id
    (first_slot, target), *others = edits.slots(edits.node_in(added, node_id))
    assert target == delay
    assert all(other == EXIT for _, other in others)
    # The new node is listed first (after its parent, the entry); the argument is unchanged.
    assert added["nodes"][0]["id"] == node_id
    assert definition["entryNode"]["child"] == delay


def test_a_node_is_added_on_a_branch_of_a_split() -> None:
    definition, (split,) = chain("SegmentSplitNode")
    added, message = edits.add_node(definition, split, "falseChild", "MessageNode")
    variant = edits.node_in(added, split)["variant"]
    assert (variant["trueChild"], variant["falseChild"]) == (EXIT, message)
    added, delay = edits.add_node(definition, split, "trueChild", "DelayNode")
    assert edits.node_in(added, split)["variant"]["trueChild"] == delay
    cohorts, (cohort,) = chain("RandomCohortNode")
    added, wait = edits.add_node(cohorts, cohort, "children.1", "WaitForNode")
    assert [child["id"] for child in edits.node_in(added, cohort)["children"]] == [EXIT, wait]


def test_adding_refuses_what_the_editor_does_not_offer() -> None:
    definition, (message,) = chain("MessageNode")
    with pytest.raises(InvalidInput) as refused:
        edits.add_node(definition, message, "trueChild", "DelayNode")
    assert refused.value.field == "slot"
    with pytest.raises(InvalidInput) as refused:
        edits.add_node(definition, message, "child", "ExitNode")
    assert refused.value.field == "type"
    with pytest.raises(NotFound):
        edits.add_node(definition, "gone", "child", "DelayNode")


def test_removing_a_node_links_its_parents_to_its_child() -> None:
    definition, (message, delay) = chain("MessageNode", "DelayNode")
    removed = edits.remove_node(definition, message)
    assert removed["entryNode"]["child"] == delay
    assert [node["id"] for node in removed["nodes"]] == [delay]
    removed = edits.remove_node(definition, delay)
    assert edits.node_in(removed, message)["child"] == EXIT
    assert len(definition["nodes"]) == 2


def test_removing_a_branching_node_keeps_its_first_branch_and_drops_what_only_the_others_reached() -> None:
    definition, (split,) = chain("SegmentSplitNode")
    definition, kept = edits.add_node(definition, split, "trueChild", "MessageNode")
    definition, dropped = edits.add_node(definition, split, "falseChild", "DelayNode")
    definition, dropped_too = edits.add_node(definition, dropped, "child", "MessageNode")
    removed = edits.remove_node(definition, split)
    assert removed["entryNode"]["child"] == kept
    assert [node["id"] for node in removed["nodes"]] == [kept]


def test_removing_keeps_nodes_that_were_unreachable_already() -> None:
    definition, (message,) = chain("MessageNode")
    orphan = edits.new_node("DelayNode", EXIT, "orphan")
    definition["nodes"].append(orphan)
    removed = edits.remove_node(definition, message)
    assert [node["id"] for node in removed["nodes"]] == ["orphan"]
    assert drawing.unreachable(removed) == [orphan]


def test_a_node_two_edges_reach_is_drawn_once_and_survives_removing_one_parent() -> None:
    definition, (split,) = chain("SegmentSplitNode")
    definition, shared = edits.add_node(definition, split, "trueChild", "MessageNode")
    edits.node_in(definition, split)["variant"]["falseChild"] = shared
    entry, to_split = drawing.flow(definition)
    assert (entry.node_id, to_split.node_id) == ("EntryNode", split)
    assert entry.branches[0].continues
    true_branch, false_branch = to_split.branches
    assert [step.node_id for step in true_branch.lane] == [shared]
    assert false_branch.joins and not false_branch.lane and false_branch.target_id == shared
    removed = edits.remove_node(definition, split)
    assert removed["entryNode"]["child"] == shared and removed["nodes"] == [edits.node_in(definition, shared)]


def test_a_long_chain_is_one_lane_and_a_cycle_ends_in_a_pointer() -> None:
    definition, ids = chain(*["DelayNode"] * 600)
    steps = drawing.flow(definition)
    assert [step.node_id for step in steps] == ["EntryNode", *ids]
    assert not steps[-1].branches[0].continues and not steps[-1].branches[0].joins
    edits.node_in(definition, ids[-1])["child"] = ids[0]
    assert drawing.flow(definition)[-1].branches[0].joins
    assert edits.reachable(definition) == ids


def test_the_entry_cannot_be_removed() -> None:
    with pytest.raises(InvalidInput) as refused:
        edits.remove_node(edits.new_definition(), "EntryNode")
    assert refused.value.field == "nodeId"


def test_branches_of_wait_fors_and_cohorts_are_added_and_removed() -> None:
    definition, (wait, cohort) = chain("WaitForNode", "RandomCohortNode")
    added = edits.add_branch(definition, wait)
    assert edits.node_in(added, wait)["segmentChildren"][1] == {"id": EXIT, "segmentId": ""}
    added = edits.add_branch(added, cohort)
    assert edits.node_in(added, cohort)["children"][2] == {"id": EXIT, "percent": 0, "name": "C"}
    # Removing the wait-for's first segment branch drops the cohort only it reached.
    added = edits.remove_branch(added, wait, 0)
    assert edits.node_in(added, wait)["segmentChildren"] == [{"id": EXIT, "segmentId": ""}]
    assert [node["id"] for node in added["nodes"]] == [wait]
    with pytest.raises(InvalidInput) as refused:
        edits.remove_branch(added, wait, 0)
    assert refused.value.field == "branch"
    with pytest.raises(InvalidInput):
        edits.add_branch(added, "EntryNode")


# -- fields ------------------------------------------------------------------------------------------


def test_the_entry_becomes_an_event_entry_and_back_keeping_its_child() -> None:
    definition, (message,) = chain("MessageNode")
    event = edits.update_entry(definition, {"entryType": "EventEntryNode", "event": "SIGNED_UP", "key": ""})
    assert event["entryNode"] == {"type": "EventEntryNode", "event": "SIGNED_UP", "child": message}
    segment = edits.update_entry(event, {"entryType": "EntryNode", "segment": "s-1", "reEnter": "true"})
    assert segment["entryNode"] == {"type": "EntryNode", "segment": "s-1", "child": message, "reEnter": True}
    for fields, name in (
        ({"entryType": "EventEntryNode", "event": " "}, "event"),
        ({"entryType": "X"}, "entryType"),
    ):
        with pytest.raises(InvalidInput) as refused:
            edits.update_entry(definition, fields)
        assert refused.value.field == name


def test_a_message_node_takes_the_channel_of_its_template() -> None:
    definition, (message,) = chain("MessageNode")
    channels = {"t-sms": "Sms", "t-mail": "Email"}
    fields = {
        "name": " Reminder ",
        "templateId": "t-sms",
        "subscriptionGroupId": "g-1",
        "skipOnFailure": "true",
    }
    edited = edits.update_node(definition, message, fields, channels)
    node = edits.node_in(edited, message)
    assert node == {
        "type": "MessageNode",
        "id": message,
        "variant": {"type": "Sms", "templateId": "t-sms"},
        "child": EXIT,
        "name": "Reminder",
        "subscriptionGroupId": "g-1",
        "skipOnFailure": True,
    }
    cleared = edits.node_in(edits.update_node(edited, message, {"templateId": ""}, channels), message)
    assert cleared["variant"] == {"type": "Sms", "templateId": ""}
    assert "name" not in cleared and "subscriptionGroupId" not in cleared and "skipOnFailure" not in cleared
    with pytest.raises(InvalidInput) as refused:
        edits.update_node(definition, message, {"templateId": "elsewhere"}, channels)
    assert refused.value.field == "templateId"


def test_a_message_keeps_channel_settings_while_its_channel_stays() -> None:
    definition, (message,) = chain("MessageNode")
    edits.node_in(definition, message)["variant"]["providerOverride"] = "SendGrid"
    kept = edits.update_node(
        definition, message, {"templateId": "t-mail"}, {"t-mail": "Email", "t-sms": "Sms"}
    )
    assert edits.node_in(kept, message)["variant"] == {
        "type": "Email",
        "templateId": "t-mail",
        "providerOverride": "SendGrid",
    }
    moved = edits.update_node(
        definition, message, {"templateId": "t-sms"}, {"t-mail": "Email", "t-sms": "Sms"}
    )
    assert edits.node_in(moved, message)["variant"] == {"type": "Sms", "templateId": "t-sms"}


@pytest.mark.parametrize(
    ("fields", "variant"),
    [
        (
            {"delayType": "Second", "delayAmount": "2", "delayUnit": "days"},
            {"type": "Second", "seconds": 172800},
        ),
        (
            {"delayType": "Second", "delayAmount": "1.5", "delayUnit": "seconds"},
            {"type": "Second", "seconds": 1.5},
        ),
        (
            {"delayType": "LocalTime", "hour": "8", "minute": "", "allowedDaysOfWeek": ["6", "0", "6"]},
            {"type": "LocalTime", "hour": 8, "allowedDaysOfWeek": [0, 6]},
        ),
        (
            {"delayType": "LocalTime", "hour": "23", "minute": "59", "defaultTimezone": "America/New_York"},
            {"type": "LocalTime", "hour": 23, "minute": 59, "defaultTimezone": "America/New_York"},
        ),
        (
            {
                "delayType": "UserProperty",
                "userProperty": "trialEnds",
                "offsetSeconds": "3600",
                "offsetDirection": "before",
            },
            {
                "type": "UserProperty",
                "userProperty": "trialEnds",
                "offsetSeconds": 3600,
                "offsetDirection": "before",
            },
        ),
        (
            {"delayType": "UserProperty", "userProperty": "renewal"},
            {"type": "UserProperty", "userProperty": "renewal"},
        ),
    ],
)
def test_each_delay_variant_is_read_from_its_fields(fields: dict[str, Any], variant: dict[str, Any]) -> None:
    definition, (delay,) = chain("DelayNode")
    edited = edits.update_node(definition, delay, fields, {})
    assert edits.node_in(edited, delay)["variant"] == variant
    parse_journey(edited)


@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ({"delayType": "Second", "delayAmount": "soon", "delayUnit": "days"}, "delayAmount"),
        ({"delayType": "Second", "delayAmount": "-1", "delayUnit": "days"}, "delayAmount"),
        ({"delayType": "Second", "delayAmount": "nan", "delayUnit": "days"}, "delayAmount"),
        ({"delayType": "Second", "delayAmount": "1", "delayUnit": "weeks"}, "delayUnit"),
        ({"delayType": "LocalTime", "hour": "24"}, "hour"),
        ({"delayType": "LocalTime", "hour": "7.5"}, "hour"),
        ({"delayType": "LocalTime", "hour": "7", "minute": "60"}, "minute"),
        ({"delayType": "LocalTime", "hour": "7", "allowedDaysOfWeek": "7"}, "allowedDaysOfWeek"),
        ({"delayType": "LocalTime", "hour": "7", "defaultTimezone": "Mars/Olympus"}, "defaultTimezone"),
        ({"delayType": "UserProperty", "userProperty": ""}, "userProperty"),
        (
            {"delayType": "UserProperty", "userProperty": "x", "offsetSeconds": "1", "offsetDirection": "up"},
            "offsetDirection",
        ),
        ({"delayType": "Later"}, "delayType"),
    ],
)
def test_bad_delay_fields_are_refused_naming_the_field(fields: dict[str, Any], name: str) -> None:
    definition, (delay,) = chain("DelayNode")
    before = copy.deepcopy(definition)
    with pytest.raises(InvalidInput) as refused:
        edits.update_node(definition, delay, fields, {})
    assert refused.value.field == name and name in refused.value.message
    assert definition == before


def test_splits_wait_fors_and_cohorts_take_their_fields() -> None:
    definition, (split, wait, cohort) = chain("SegmentSplitNode", "WaitForNode", "RandomCohortNode")
    definition = edits.update_node(definition, split, {"name": "VIP?", "segment": "s-vip"}, {})
    definition = edits.update_node(
        definition, wait, {"timeoutAmount": "90", "timeoutUnit": "minutes", "segmentId.0": "s-paid"}, {}
    )
    definition = edits.update_node(
        definition,
        cohort,
        {"percent.0": "25", "cohortName.0": "Test", "percent.1": "75", "cohortName.1": ""},
        {},
    )
    assert edits.node_in(definition, split)["variant"]["segment"] == "s-vip"
    assert edits.node_in(definition, split)["name"] == "VIP?"
    assert edits.node_in(definition, wait)["timeoutSeconds"] == 5400
    assert edits.node_in(definition, wait)["segmentChildren"][0]["segmentId"] == "s-paid"
    assert [(c["name"], c["percent"]) for c in edits.node_in(definition, cohort)["children"]] == [
        ("Test", 25),
        ("B", 75),
    ]
    with pytest.raises(InvalidInput) as refused:
        edits.update_node(definition, cohort, {"percent.0": "101", "percent.1": "0"}, {})
    assert refused.value.field == "percent.0"
    parse_journey(definition)


def test_durations_are_shown_in_the_largest_whole_unit() -> None:
    assert drawing.split_duration(172800) == (2, "days")
    assert drawing.split_duration(5400) == (90, "minutes")
    assert drawing.split_duration(1.5) == (1.5, "seconds")
    assert drawing.split_duration(0) == (0, "seconds")
    assert drawing.describe_duration(3600) == "1 hour"
    assert drawing.describe_duration(7200) == "2 hours"


def test_engine_errors_are_located_at_a_node_and_form_field() -> None:
    definition, (message, wait, cohort) = chain("MessageNode", "WaitForNode", "RandomCohortNode")
    where = "body/definition"
    assert drawing.locate_error(definition, f"{where}/nodes/0/variant/templateId") == (message, "templateId")
    assert drawing.locate_error(definition, f"{where}/nodes/1/segmentChildren/0/segmentId") == (
        wait,
        "segmentId.0",
    )
    assert drawing.locate_error(definition, f"{where}/nodes/2/children/1/percent") == (cohort, "percent.1")
    assert drawing.locate_error(definition, f"{where}/entryNode/segment") == ("EntryNode", "segment")
    assert drawing.locate_error(definition, where) is None
    assert drawing.locate_error(definition, f"{where}/nodes/9/id") is None
    assert drawing.locate_error(definition, "body/status") is None
