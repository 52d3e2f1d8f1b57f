"""The segments table (`/segments`) and segment editor (`/segments/v1`) screens, component "Segment":
real engine, real SQL and ClickHouse, the form state posted back exactly as a browser would post it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any, get_args
from urllib.parse import urlencode

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from components import segment_form, segment_tree_edits
from engine.definition_models import ENTRY_ONLY_NODES, AnySegmentNode, SegmentOperator
from engine.errors import InvalidInput
from tests.gateway.api.conftest import ParentAccount, Tenant

EMBED = "/dashboard-l/embedded"
HOSTILE = "<img src=x onerror=alert(1)>"
TEMPLATE_ID = "6f1f6a52-3d4c-4a53-9d8e-1b1f3f0b6f10"
GROUP_ID = "0c7c7ad8-5d0b-4f61-8f8b-6a3c0f0d2a77"
PAID = {
    "entryNode": {
        "type": "Trait",
        "id": "paid",
        "path": "plan",
        "operator": {"type": "Equals", "value": "paid"},
    },
    "nodes": [],
}


# -- helpers -----------------------------------------------------------------------------------------


@dataclass
class Embed:
    """One embedded session: the first load carries the token in the URL, later requests the header."""

    client: TestClient
    token: str
    workspace_id: str

    def open(self, path: str, **params: str) -> httpx.Response:
        query = {"token": self.token, "workspaceId": self.workspace_id, **params}
        return self.client.get(f"{EMBED}{path}", params=query)

    def post(self, path: str, fields: Sequence[tuple[str, str]]) -> httpx.Response:
        return self.client.post(
            f"{EMBED}{path}?{urlencode({'workspaceId': self.workspace_id})}",
            content=urlencode(list(fields)),
            headers={
                "authorization": f"Bearer {self.token}",
                "content-type": "application/x-www-form-urlencoded",
                "hx-request": "true",
            },
        )


def mint(client: TestClient, parent: ParentAccount, tenant: Tenant, **extra: Any) -> Embed:
    response = client.post(
        "/api-l/sessions",
        json={"workspaceId": tenant.id, **extra},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert response.status_code == 200, response.text
    return Embed(client, response.json()["token"], tenant.id)


def put_segment(client: TestClient, parent: ParentAccount, tenant: Tenant, **body: Any) -> dict[str, Any]:
    response = client.put(
        "/api/admin/segments",
        json={"workspaceId": tenant.id, **body},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert response.status_code == 200, response.text
    segment: dict[str, Any] = response.json()
    return segment


def stored_segments(client: TestClient, parent: ParentAccount, tenant: Tenant) -> dict[str, dict[str, Any]]:
    response = client.get(
        "/api/admin/segments",
        params={"workspaceId": tenant.id},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    return {segment["id"]: segment for segment in response.json()["segments"]}


def identify(client: TestClient, tenant: Tenant, user_id: str, **traits: Any) -> None:
    response = client.post(
        "/api/public/apps/identify",
        json={"userId": user_id, "messageId": str(uuid.uuid4()), "traits": traits},
        headers={"authorization": tenant.write_key},
    )
    assert response.status_code == 204


class _PostedFields(HTMLParser):
    """What a browser posts from a page's forms: named inputs, selects and textareas, in document
    order (buttons only when clicked, so never here)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        name = found.get("name")
        if tag == "input" and name and found.get("type") not in ("button", "submit", "checkbox", "radio"):
            self.fields.append((name, found.get("value") or ""))
        elif tag == "select" and name:
            self._select, self._options = name, []
        elif tag == "option" and self._select is not None:
            self._options.append((found.get("value") or "", "selected" in found))
        elif tag == "textarea" and name:
            self._textarea, self._text = name, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select is not None:
            chosen = [value for value, selected in self._options if selected] or [self._options[0][0]]
            self.fields.append((self._select, chosen[0]))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, "".join(self._text)))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text.append(data)


def posted_fields(html: str) -> list[tuple[str, str]]:
    parser = _PostedFields()
    parser.feed(html)
    return parser.fields


def with_values(fields: list[tuple[str, str]], **changes: str) -> list[tuple[str, str]]:
    """`fields` with some values changed (keyword `node_1_path` stands for `node.1.path`)."""
    named = {key.replace("_", "."): value for key, value in changes.items()}
    assert set(named) <= {name for name, _ in fields}, set(named) - {name for name, _ in fields}
    return [(name, named.get(name, value)) for name, value in fields]


def editor_outside_builder(fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The editor form's own fields (id, isNew, name), which a builder answer does not re-render."""
    return [(name, value) for name, value in fields if name in ("id", "isNew", "name")]


# -- every node type, through the form ---------------------------------------------------------------


def _trait(node_id: str, operator: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Trait", "id": node_id, "path": "plan", "operator": operator}


TRAIT_OPERATORS = {
    "entryNode": {"type": "And", "id": "all", "children": [f"t{index}" for index in range(10)]},
    "nodes": [
        _trait("t0", {"type": "Equals", "value": "paid"}),
        _trait("t1", {"type": "Equals", "value": 3}),
        _trait("t2", {"type": "NotEquals", "value": 2.5}),
        _trait("t3", {"type": "Exists"}),
        _trait("t4", {"type": "NotExists"}),
        _trait("t5", {"type": "GreaterThanOrEqual", "value": 18}),
        _trait("t6", {"type": "LessThan", "value": 0.5}),
        _trait("t7", {"type": "Within", "windowSeconds": 604800}),
        _trait("t8", {"type": "HasBeen", "comparator": "LT", "value": "trial", "windowSeconds": 90}),
        _trait(
            "t9",
            {"type": "AbsoluteTimestamp", "absoluteTimestamp": "2025-01-31T00:00:00Z", "direction": "before"},
        ),
    ],
}
EVENTS = {
    "entryNode": {"type": "Or", "id": "any", "children": ["p", "l", "e", "b"]},
    "nodes": [
        {
            "type": "Performed",
            "id": "p",
            "event": "LOGIN",
            "times": 3,
            "timesOperator": ">=",
            "withinSeconds": 86400,
            "properties": [
                {"path": "plan", "operator": {"type": "Equals", "value": "pro"}},
                {"path": "seats", "operator": {"type": "GreaterThanOrEqual", "value": 2}},
                {"path": "trial", "operator": {"type": "NotExists"}},
            ],
        },
        {
            "type": "LastPerformed",
            "id": "l",
            "event": "CHECKOUT*",
            "whereProperties": [{"path": "shop", "operator": {"type": "NotEquals", "value": "test"}}],
            "hasProperties": [
                {"path": "total", "operator": {"type": "LessThan", "value": 10}},
                {"path": "coupon", "operator": {"type": "Exists"}},
            ],
        },
        {"type": "Email", "id": "e", "event": "DFEmailClicked", "templateId": TEMPLATE_ID, "times": 1},
        {"type": "Broadcast", "id": "b"},
    ],
}
GROUPS_AND_LISTS = {
    "entryNode": {"type": "And", "id": "a", "children": ["s", "u", "r", "i", "o"]},
    "nodes": [
        {
            "type": "SubscriptionGroup",
            "id": "s",
            "subscriptionGroupId": GROUP_ID,
            "subscriptionGroupType": "OptOut",
        },
        {"type": "SubscriptionGroupUnsubscribed", "id": "u", "subscriptionGroupId": GROUP_ID},
        {"type": "RandomBucket", "id": "r", "percent": 0.25},
        {"type": "Includes", "id": "i", "path": "tags", "item": "vip"},
        {"type": "Or", "id": "o", "children": ["o1"]},
        # Optional fields left out stay left out.
        {"type": "Performed", "id": "o1", "event": "SIGNUP"},
    ],
}
KEYED = {
    "entryNode": {
        "type": "KeyedPerformed",
        "id": "k",
        "event": "ORDER",
        "key": "orderId",
        "times": 2,
        "timesOperator": "<",
        "properties": [{"path": "amount", "operator": {"type": "GreaterThanOrEqual", "value": 100}}],
    },
    "nodes": [],
}
MANUAL = {"entryNode": {"type": "Manual", "id": "m", "version": 1700000000}, "nodes": []}
EVERYONE = {"entryNode": {"type": "Everyone", "id": "everyone"}, "nodes": []}
DEFINITIONS: dict[str, dict[str, Any]] = {
    "trait-operators": TRAIT_OPERATORS,
    "events": EVENTS,
    "groups-and-lists": GROUPS_AND_LISTS,
    "keyed": KEYED,
    "manual": MANUAL,
    "everyone": EVERYONE,
}


def test_the_form_offers_every_node_type_and_operator_the_engine_validates() -> None:
    engine_types = {get_args(model.model_fields["type"].annotation)[0] for model in get_args(AnySegmentNode)}
    assert set(segment_form.NODE_TYPES) == engine_types
    assert segment_form.ENTRY_ONLY == ENTRY_ONLY_NODES
    operator_models = get_args(get_args(SegmentOperator)[0])
    engine_operators = {get_args(model.model_fields["type"].annotation)[0] for model in operator_models}
    assert set(segment_form.TRAIT_OPERATORS) == engine_operators
    covered = {node["type"] for definition in DEFINITIONS.values() for node in _all_nodes(definition)}
    assert covered == engine_types


def _all_nodes(definition: dict[str, Any]) -> list[dict[str, Any]]:
    return [definition["entryNode"], *definition["nodes"]]


@pytest.mark.parametrize("definition", DEFINITIONS.values(), ids=DEFINITIONS.keys())
def test_each_definition_round_trips_through_the_form_fields(definition: dict[str, Any]) -> None:
    tree = segment_tree_edits.assign_names(segment_form.tree_from_definition(definition))
    fields = segment_tree_edits.fields_of(tree)
    assert segment_form.definition_from_tree(segment_form.tree_from_fields(fields)) == definition


@pytest.mark.parametrize("definition", DEFINITIONS.values(), ids=DEFINITIONS.keys())
def test_each_definition_round_trips_through_the_rendered_editor(
    client: TestClient, parent: ParentAccount, tenant: Tenant, definition: dict[str, Any]
) -> None:
    saved = put_segment(client, parent, tenant, name="Every node", definition=definition)
    embed = mint(client, parent, tenant)
    page = embed.open("/segments/v1", id=saved["id"])
    assert page.status_code == 200
    fields = posted_fields(page.text)
    assert dict(fields)["mode"] == "form"

    # What the browser would post is exactly the stored definition...
    assert segment_form.definition_from_tree(segment_form.tree_from_fields(fields)) == definition
    # ...so saving it unchanged keeps the definition and its computed state.
    answer = embed.post("/segments/v1/save", fields)
    assert answer.status_code == 200, answer.text
    after = stored_segments(client, parent, tenant)[saved["id"]]
    assert after["definition"] == definition
    assert after["definitionUpdatedAt"] == saved["definitionUpdatedAt"]


def test_a_definition_the_form_cannot_show_opens_as_json_and_saves_unchanged(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    # Upstream declares `timeOperator` on Performed; the form has no input for it.
    definition = {
        "entryNode": {"type": "Performed", "id": "p", "event": "X", "timeOperator": "Within"},
        "nodes": [],
    }
    saved = put_segment(client, parent, tenant, name="Exotic", definition=definition)
    embed = mint(client, parent, tenant)
    page = embed.open("/segments/v1", id=saved["id"])
    fields = dict(posted_fields(page.text))
    assert fields["mode"] == "json"
    assert 'data-testid="segment-note"' in page.text

    answer = embed.post("/segments/v1/save", list(fields.items()))
    assert answer.status_code == 200, answer.text
    assert stored_segments(client, parent, tenant)[saved["id"]]["definition"] == definition
    # Asking for the form view says why not, and keeps the JSON.
    refused = embed.post("/segments/v1/builder", [*fields.items(), ("action", "mode:form")])
    assert refused.status_code == 400
    assert "cannot show" in refused.text
    assert dict(posted_fields(refused.text))["mode"] == "json"


# -- building a segment ------------------------------------------------------------------------------


def test_a_trait_segment_built_through_the_form_is_saved_computed_and_counted(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    identify(client, tenant, "ann", plan="paid")
    identify(client, tenant, "bob", plan="free")
    embed = mint(client, parent, tenant, components=["Segment"])

    page = embed.open("/segments/v1")
    assert page.status_code == 200
    form = posted_fields(page.text)
    # A new segment starts as an And holding one trait condition.
    assert [value for name, value in form if name.endswith(".type")] == ["And", "Trait", "Equals"]
    own = editor_outside_builder(form)

    # Add a second condition, make it an event, then remove it again.
    added = embed.post("/segments/v1/builder", [*form, ("action", "add-child:0")])
    assert added.status_code == 200
    builder = posted_fields(added.text)
    assert [v for n, v in builder if n.endswith("0.type") or n.endswith("2.type")] == ["And", "Trait"]
    retyped = embed.post("/segments/v1/builder", [*own, *with_values(builder, node_2_type="Performed")])
    assert 'data-node-type="Performed"' in retyped.text
    builder = posted_fields(retyped.text)
    assert ("node.2.times", "1") in builder and ("node.2.timesOperator", ">=") in builder
    removed = embed.post("/segments/v1/builder", [*own, *builder, ("action", "remove:2")])
    builder = posted_fields(removed.text)
    assert "node.2.type" not in dict(builder)

    # Fill the trait in and save.
    filled = with_values(builder, node_1_path="plan", node_1_operator_value="paid")
    saved = embed.post("/segments/v1/save", with_values([*own, *filled], name="Paid users"))
    assert saved.status_code == 200, saved.text
    assert 'data-testid="segment-notice"' in saved.text
    segment_id = dict(own)["id"]
    assert saved.headers["hx-push-url"] == f"{EMBED}/segments/v1?workspaceId={tenant.id}&id={segment_id}"
    stored = stored_segments(client, parent, tenant)[segment_id]
    entry = stored["definition"]["entryNode"]
    assert (stored["name"], entry["type"], stored["status"]) == ("Paid users", "And", "Running")
    assert stored["definition"]["nodes"] == [
        {
            "type": "Trait",
            "id": entry["children"][0],
            "path": "plan",
            "operator": {"type": "Equals", "value": "paid"},
        }
    ]
    # Saving recomputed the segment: ann is in it.
    assert _count_in(saved.text) == "1"

    # Another paid user, and the count button recomputes.
    identify(client, tenant, "cat", plan="paid")
    counted = embed.post("/segments/v1/count", [("id", segment_id)])
    assert counted.status_code == 200
    assert _count_in(counted.text) == "2"

    table = embed.open("/segments")
    assert table.status_code == 200
    assert f'data-segment-id="{segment_id}"' in table.text
    assert "Paid users" in table.text and _members_in(table.text) == ["2"]


def _count_in(html: str) -> str:
    start = html.index('data-testid="segment-count">') + len('data-testid="segment-count">')
    return html[start : html.index("<", start)]


def _members_in(html: str) -> list[str]:
    marker = 'data-testid="segment-members">'
    return [part[: part.index("<")] for part in html.split(marker)[1:]]


def test_filters_and_json_view_through_the_builder(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    embed = mint(client, parent, tenant)
    page = embed.open("/segments/v1")
    form = with_values(posted_fields(page.text), name="Logins")
    own = editor_outside_builder(form)
    performed = posted_fields(
        embed.post("/segments/v1/builder", with_values(form, node_1_type="Performed")).text
    )
    with_row = embed.post("/segments/v1/builder", [*own, *performed, ("action", "add-filter:1:properties")])
    fields = with_values(
        posted_fields(with_row.text),
        node_1_event="LOGIN",
        node_1_withinAmount="2",
        node_1_withinUnit="days",
        node_1_properties_0_path="plan",
        node_1_properties_0_operator_value="pro",
    )
    as_json = embed.post("/segments/v1/builder", [*own, *fields, ("action", "mode:json")])
    json_fields = dict(posted_fields(as_json.text))
    assert json_fields["mode"] == "json"
    assert '"withinSeconds": 172800' in json_fields["definitionJson"]

    saved = embed.post("/segments/v1/save", [*own, *json_fields.items()])
    assert saved.status_code == 200, saved.text
    stored = stored_segments(client, parent, tenant)[dict(own)["id"]]["definition"]
    assert stored["nodes"][0]["properties"] == [
        {"path": "plan", "operator": {"type": "Equals", "value": "pro"}}
    ]
    assert stored["nodes"][0]["withinSeconds"] == 172800

    # Back to the form, then remove the filter row.
    back = embed.post("/segments/v1/builder", [*own, *json_fields.items(), ("action", "mode:form")])
    assert dict(posted_fields(back.text))["node.1.properties.0.path"] == "plan"
    without = embed.post(
        "/segments/v1/builder", [*own, *posted_fields(back.text), ("action", "remove-filter:1:properties:0")]
    )
    assert "node.1.properties.0.path" not in dict(posted_fields(without.text))


def test_the_engines_refusal_is_shown_next_to_the_node_it_names(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    embed = mint(client, parent, tenant)
    form = posted_fields(embed.open("/segments/v1").text)
    bad = with_values(
        form,
        name="Adults",
        node_1_path="age",
        node_1_operator_type="GreaterThanOrEqual",
        node_1_operator_value="not a number",
    )
    answer = embed.post("/segments/v1/save", bad)
    assert answer.status_code == 400
    message = "body/definition/nodes/0/operator/value Input should be a valid number"
    assert f'data-field="body/definition/nodes/0/operator/value">{message}</p>' in answer.text
    node = answer.text[answer.text.index('data-node-key="1"') :]
    assert node.index('aria-invalid="true"') < node.index(message)
    assert dict(form)["id"] not in stored_segments(client, parent, tenant)

    # A JSON definition the engine refuses, and text that is not JSON.
    own = editor_outside_builder(with_values(form, name="Adults"))
    wrong = embed.post("/segments/v1/save", [*own, ("mode", "json"), ("definitionJson", '{"entryNode": {}}')])
    assert wrong.status_code == 400 and "body/definition/entryNode" in wrong.text
    broken = embed.post("/segments/v1/save", [*own, ("mode", "json"), ("definitionJson", "{")])
    assert broken.status_code == 400 and "is not valid JSON" in broken.text

    # A name another segment has is refused next to the name.
    put_segment(client, parent, tenant, name="Taken", definition=PAID)
    taken = embed.post("/segments/v1/save", with_values(form, name="Taken", node_1_path="plan"))
    assert taken.status_code == 400 and 'data-testid="segment-name-error"' in taken.text


def test_tampered_builder_states_are_refused_with_a_400() -> None:
    with pytest.raises(InvalidInput, match="no entry node"):
        segment_form.tree_from_fields([("node.0.type", "Trait"), ("node.0.parent", "7")])
    with pytest.raises(InvalidInput, match="unknown type"):
        segment_form.tree_from_fields([("node.0.type", "Script")])
    deep = [("node.0.type", "And"), ("node.0.parent", "")]
    for level in range(1, 40):
        deep += [(f"node.{level}.type", "And"), (f"node.{level}.parent", str(level - 1))]
    with pytest.raises(InvalidInput, match="nested deeper"):
        segment_form.tree_from_fields(deep)
    tree = segment_form.tree_from_fields([("node.0.type", "Trait")])
    for action in (
        "remove:0",
        "add-child:0",
        "add-child:9",
        "add-filter:0:properties",
        "explode:0",
        "remove-filter:0:x:²",
    ):
        with pytest.raises(InvalidInput):
            segment_tree_edits.apply_action(tree, action)


def test_tampered_state_answers_400_not_500(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    embed = mint(client, parent, tenant)
    answer = embed.post("/segments/v1/builder", [("node.0.type", "Script"), ("action", "remove:0")])
    assert answer.status_code == 400
    saved = embed.post(
        "/segments/v1/save",
        [
            ("id", "not-a-uuid"),
            ("name", "X"),
            *segment_tree_edits.fields_of(
                segment_tree_edits.assign_names(segment_form.tree_from_definition(PAID))
            ),
        ],
    )
    assert saved.status_code == 400 and "Invalid segment id" in saved.text


# -- what is shown, and to whom ----------------------------------------------------------------------


def test_the_table_lists_declarative_segments_with_counts_and_links_and_never_the_token(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    identify(client, tenant, "ann", plan="paid")
    paid = put_segment(client, parent, tenant, name="Paid", definition=PAID)
    put_segment(client, parent, tenant, name="Hidden", definition=PAID, resourceType="Internal")
    client.post(
        "/api/admin/computed-properties/trigger-recompute",
        json={"workspaceId": tenant.id},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    embed = mint(client, parent, tenant, components=["Segment"])
    table = embed.open("/segments")
    assert table.status_code == 200
    assert table.text.count('data-testid="segment-row"') == 1
    assert "Hidden" not in table.text
    assert f'href="{EMBED}/segments/v1?workspaceId={tenant.id}&amp;id={paid["id"]}"' in table.text
    assert _members_in(table.text) == ["1"]
    assert 'data-testid="segment-status">Running<' in table.text
    assert f'href="{EMBED}/segments/v1?workspaceId={tenant.id}"' in table.text  # new segment
    assert embed.token not in table.text
    editor = embed.open("/segments/v1", id=paid["id"])
    assert embed.token not in editor.text


def test_hostile_names_and_trait_values_render_inert(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    hostile_value = '"></textarea><script>alert(1)</script>'
    definition = {
        "entryNode": {
            "type": "Trait",
            "id": "x",
            "path": HOSTILE,
            "operator": {"type": "Equals", "value": hostile_value},
        },
        "nodes": [],
    }
    identify(client, tenant, "eve", **{"<b>trait</b>": "x"})
    saved = put_segment(client, parent, tenant, name=HOSTILE, definition=definition)
    embed = mint(client, parent, tenant)
    for page in (embed.open("/segments"), embed.open("/segments/v1", id=saved["id"])):
        assert page.status_code == 200
        assert (
            "<img src=x" not in page.text and "<script>alert" not in page.text and "<b>trait" not in page.text
        )
        assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    form = posted_fields(embed.open("/segments/v1", id=saved["id"]).text)
    as_json = embed.post("/segments/v1/builder", [*form, ("action", "mode:json")])
    assert "</textarea><script>" not in as_json.text
    assert "&lt;/textarea&gt;&lt;script&gt;" in as_json.text
    # The escaped value still posts back as the value itself.
    assert dict(posted_fields(as_json.text))["definitionJson"].count(hostile_value.replace('"', '\\"')) == 1


def test_a_session_without_the_segment_component_gets_403_and_changes_nothing(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    saved = put_segment(client, parent, tenant, name="Paid", definition=PAID)
    allowed = mint(client, parent, tenant, components=["Segment"])
    form = with_values(posted_fields(allowed.open("/segments/v1", id=saved["id"]).text), name="Renamed")
    chart = mint(client, parent, tenant, components=["AnalysisChart"])
    assert chart.open("/segments").status_code == 403
    assert chart.open("/segments/v1", id=saved["id"]).status_code == 403
    assert chart.open("/segments/v1").status_code == 403
    for path in ("/segments/v1/save", "/segments/v1/builder", "/segments/v1/count"):
        assert chart.post(path, form).status_code == 403
    assert stored_segments(client, parent, tenant)[saved["id"]]["name"] == "Paid"


def test_a_session_limited_to_resource_ids_sees_and_saves_only_those(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    mine = put_segment(client, parent, tenant, name="Mine", definition=PAID)
    other = put_segment(client, parent, tenant, name="Other", definition=PAID)
    embed = mint(client, parent, tenant, resourceIds=[mine["id"]])
    table = embed.open("/segments").text
    assert "Mine" in table and "Other" not in table and 'data-testid="new-segment"' not in table
    assert embed.open("/segments/v1", id=other["id"]).status_code == 403
    assert embed.open("/segments/v1").status_code == 403
    form = posted_fields(embed.open("/segments/v1", id=mine["id"]).text)
    assert embed.post("/segments/v1/save", with_values(form, id=other["id"])).status_code == 403
    assert embed.post("/segments/v1/save", with_values(form, name="Still mine")).status_code == 200


def test_an_embedded_save_is_audited_with_the_occupant(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    embed = mint(client, parent, tenant, occupantId="user-42")
    form = with_values(posted_fields(embed.open("/segments/v1").text), name="Audited", node_1_path="plan")
    assert embed.post("/segments/v1/save", form).status_code == 200
    log = client.get(
        "/api-l/admin/audit-log",
        params={"workspaceId": tenant.id, "resourceType": "Segment", "resourceId": dict(form)["id"]},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    ).json()["entries"]
    assert [(e["actorType"], e["actorId"], e["action"]) for e in log] == [
        ("EmbedOccupant", "user-42", "embedded:segment_save")
    ]


def test_the_console_shows_and_saves_segments_in_anonymous_mode(client: TestClient, tenant: Tenant) -> None:
    page = client.get("/dashboard/segments/v1")
    assert page.status_code == 200
    form = with_values(posted_fields(page.text), name="From the console", node_1_path="plan")
    saved = client.post(
        "/dashboard/segments/v1/save",
        content=urlencode(form),
        headers={"content-type": "application/x-www-form-urlencoded", "hx-request": "true"},
    )
    assert saved.status_code == 200, saved.text
    table = client.get("/dashboard/segments")
    assert table.status_code == 200 and "From the console" in table.text
    assert 'href="/dashboard/segments/v1?workspaceId=' in table.text
