"""The journeys table (`/journeys`) and journey editor (`/journeys/v2`) screens, component "Journey":
real engine, SQL and ClickHouse; every edit posted exactly as the page's forms would post it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.gateway.api.conftest import ParentAccount, Tenant
from tests.support.delivery_events import EMAIL as SENT_EMAIL
from tests.support.delivery_events import DeliveryEvents

EMBED = "/dashboard-l/embedded"
HOSTILE = "<img src=x onerror=alert(1)>"
EMAIL = {"type": "Email", "from": "news@acme.test", "subject": "Hi", "body": "<p>Hi</p>"}
PAID = {
    "entryNode": {
        "type": "Trait",
        "id": "paid",
        "path": "plan",
        "operator": {"type": "Equals", "value": "paid"},
    },
    "nodes": [],
}


# -- reading the pages as a browser does -------------------------------------------------------------


@dataclass
class Form:
    attrs: dict[str, str]
    fields: list[tuple[str, str]] = field(default_factory=list)

    @property
    def action(self) -> str:
        return self.attrs["action"]

    def with_values(self, **changes: str | list[str]) -> list[tuple[str, str]]:
        """The posted fields with some changed (`segmentId_0` stands for `segmentId.0`); a list
        value posts the name once per item (checkbox groups), an empty list leaves it out."""
        named = {key.replace("_", "."): value for key, value in changes.items()}
        kept = [(name, value) for name, value in self.fields if name not in named]
        for name, value in named.items():
            kept += [(name, item) for item in value] if isinstance(value, list) else [(name, value)]
        return kept


class Page(HTMLParser):
    """Every form of a page with what it posts (checked boxes, selected options), and every start
    tag's attributes."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self.tags: list[tuple[str, dict[str, str]]] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        self.tags.append((tag, found))
        if tag == "form":
            self._form = Form(found)
            self.forms.append(self._form)
            return
        if tag == "option" and self._select is not None:
            self._options.append((found.get("value", ""), "selected" in found))
            return
        name = found.get("name")
        if self._form is None or not name:
            return
        kind = found.get("type", "text")
        if tag == "input" and kind in ("checkbox", "radio"):
            if "checked" in found:
                self._form.fields.append((name, found.get("value") or "on"))
        elif tag == "input" and kind not in ("button", "submit"):
            self._form.fields.append((name, found.get("value", "")))
        elif tag == "select":
            self._select, self._options = name, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select is not None and self._form is not None:
            chosen = [value for value, selected in self._options if selected] or [self._options[0][0]]
            self._form.fields.append((self._select, chosen[0]))
            self._select = None

    def form(self, testid: str, **attrs: str) -> Form:
        matching = [
            form
            for form in self.forms
            if form.attrs.get("data-testid") == testid
            and all(form.attrs.get(f"data-{key.replace('_', '-')}") == value for key, value in attrs.items())
        ]
        assert len(matching) == 1, f"{len(matching)} forms {testid} {attrs}"
        return matching[0]

    def with_testid(self, testid: str) -> list[dict[str, str]]:
        return [attrs for _, attrs in self.tags if attrs.get("data-testid") == testid]


# -- one embedding page and the parent's backend -----------------------------------------------------


@dataclass
class Embed:
    """One embedded session: the first load carries the token in the URL, later requests the header."""

    client: TestClient
    token: str
    workspace_id: str
    base: str = EMBED

    def open(self, path: str, **params: str) -> httpx.Response:
        query = {"token": self.token, "workspaceId": self.workspace_id, **params}
        return self.client.get(f"{self.base}{path}", params=query)

    def editor(self, journey_id: str) -> Page:
        response = self.open("/journeys/v2", id=journey_id)
        assert response.status_code == 200, response.text
        return Page(response.text)

    def submit(self, form: Form, fields: list[tuple[str, str]] | None = None) -> httpx.Response:
        """Post `form` (its own fields unless `fields`) as htmx does, to its action."""
        return post_form(self.client, form.action, fields if fields is not None else form.fields, self.token)

    def create(self, name: str) -> str:
        """The journey a "new journey" form creates; its id, from the editor it opens."""
        table = Page(self.open("/journeys").text)
        created = self.submit(table.form("new-journey-form"), [("name", name)])
        assert created.status_code == 204, created.text
        location = created.headers["hx-location"]
        assert location.startswith(f"{self.base}/journeys/v2?")
        return parse_qs(urlsplit(location).query)["id"][0]


def post_form(
    client: TestClient,
    url: str,
    fields: list[tuple[str, str]],
    token: str | None = None,
    *,
    htmx: bool = True,
) -> httpx.Response:
    """Post url-encoded `fields` as a browser does (with the session's header when `token`)."""
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    if htmx:
        headers["hx-request"] = "true"
    return client.post(url, content=urlencode(fields), headers=headers, follow_redirects=False)


def mint(client: TestClient, parent: ParentAccount, tenant: Tenant, **extra: Any) -> Embed:
    response = client.post(
        "/api-l/sessions",
        json={"workspaceId": tenant.id, **extra},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert response.status_code == 200, response.text
    return Embed(client, response.json()["token"], tenant.id)


@dataclass
class Admin:
    """The parent's backend, on the admin API."""

    client: TestClient
    parent: ParentAccount
    workspace_id: str

    def put(self, path: str, **body: Any) -> dict[str, Any]:
        response = self.client.put(
            f"/api/admin/{path}",
            json={"workspaceId": self.workspace_id, **body},
            headers={"authorization": f"Bearer {self.parent.admin_key}"},
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def segment(self, name: str) -> str:
        return str(self.put("segments", name=name, definition=PAID)["id"])

    def template(self, name: str, definition: dict[str, Any] = EMAIL) -> str:
        return str(self.put("content/templates", name=name, definition=definition)["id"])

    def journey(self, journey_id: str) -> dict[str, Any]:
        response = self.client.get(
            "/api/admin/journeys",
            params={"workspaceId": self.workspace_id, "ids": journey_id},
            headers={"authorization": f"Bearer {self.parent.admin_key}"},
        )
        assert response.status_code == 200, response.text
        (found,) = response.json()["journeys"]
        return dict(found)


@pytest.fixture
def admin(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Admin:
    return Admin(client, parent, tenant.id)


@pytest.fixture
def embed(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Embed:
    return mint(client, parent, tenant)


def add_node(embed: Embed, journey_id: str, after: str, kind: str, slot: str = "child") -> tuple[Page, str]:
    """Add a `kind` node on edge `slot` of `after` with its add control; the page and the new id."""
    before = {attrs["data-node-id"] for attrs in embed.editor(journey_id).with_testid("journey-node")}
    form = embed.editor(journey_id).form("add-node", node_id=after, slot=slot)
    answer = embed.submit(form, form.with_values(type=kind))
    assert answer.status_code == 200, answer.text
    page = Page(answer.text)
    (added,) = {attrs["data-node-id"] for attrs in page.with_testid("journey-node")} - before
    return page, added


def node_form(embed: Embed, journey_id: str, node_id: str) -> Form:
    return embed.editor(journey_id).form("node-form", node_id=node_id)


def set_entry(embed: Embed, journey_id: str, **values: str | list[str]) -> httpx.Response:
    form = embed.editor(journey_id).form("entry-form")
    return embed.submit(form, form.with_values(**values))


def build_message_then_delay(embed: Embed, admin: Admin, journey_id: str) -> tuple[str, str, str, str]:
    """Entry (segment "Paid") → message (template "Welcome") → delay 2 hours → exit, as a draft."""
    segment_id, template_id = admin.segment("Paid"), admin.template("Welcome")
    assert set_entry(embed, journey_id, segment=segment_id).status_code == 200
    _, message_id = add_node(embed, journey_id, "EntryNode", "MessageNode")
    form = node_form(embed, journey_id, message_id)
    saved = embed.submit(form, form.with_values(templateId=template_id, name="Welcome mail"))
    assert saved.status_code == 200, saved.text
    _, delay_id = add_node(embed, journey_id, message_id, "DelayNode")
    form = node_form(embed, journey_id, delay_id)
    saved = embed.submit(form, form.with_values(delayType="Second", delayAmount="2", delayUnit="hours"))
    assert saved.status_code == 200, saved.text
    return segment_id, template_id, message_id, delay_id


def press(embed: Embed, journey_id: str, testid: str) -> httpx.Response:
    page = embed.editor(journey_id)
    return embed.submit(page.form(testid) if testid.endswith("-form") else _status_form(page, testid))


def _status_form(page: Page, button: str) -> Form:
    label = button.removeprefix("journey-")
    wanted = {"start": "Running", "resume": "Running", "pause": "Paused"}[label]
    (form,) = [
        f
        for f in page.forms
        if f.attrs.get("data-testid") == "journey-status-form" and ("status", wanted) in f.fields
    ]
    return form


# -- the table ---------------------------------------------------------------------------------------


def test_the_table_starts_empty_and_a_new_journey_opens_as_a_draft_in_the_editor(
    embed: Embed, admin: Admin
) -> None:
    table = embed.open("/journeys")
    assert table.status_code == 200
    assert 'data-testid="journeys-empty"' in table.text
    journey_id = embed.create("Onboarding")

    stored = admin.journey(journey_id)
    assert stored["status"] == "NotStarted" and "definition" not in stored
    assert stored["draft"]["entryNode"] == {"type": "EntryNode", "segment": "", "child": "ExitNode"}
    page = embed.editor(journey_id)
    assert [attrs["data-status"] for attrs in page.with_testid("journey-status")] == ["NotStarted"]
    assert page.with_testid("journey-unpublished")
    rows = Page(embed.open("/journeys").text).with_testid("journey-row")
    assert [row["data-journey-id"] for row in rows] == [journey_id]


def test_a_new_journey_needs_a_name_of_its_own(embed: Embed, admin: Admin) -> None:
    journey_id = embed.create("Onboarding")
    form = Page(embed.open("/journeys").text).form("new-journey-form")
    for name, message in (("  ", "name must not be empty"), ("Onboarding", "is already another journey")):
        refused = embed.submit(form, [("name", name)])
        assert refused.status_code == 400
        assert message in refused.text and 'data-field="name"' in refused.text
    # The existing journey was not taken over.
    assert admin.journey(journey_id)["draft"]["nodes"] == []


def test_deleting_a_journey_from_the_table(embed: Embed, admin: Admin) -> None:
    kept, gone = embed.create("Kept"), embed.create("Gone")
    table = Page(embed.open("/journeys").text)
    (form,) = [
        f
        for f in table.forms
        if f.attrs.get("data-testid") == "journey-delete-form" and ("id", gone) in f.fields
    ]
    answer = embed.submit(form)
    assert answer.status_code == 204 and answer.headers["hx-location"].startswith(f"{EMBED}/journeys?")
    rows = Page(embed.open("/journeys").text).with_testid("journey-row")
    assert [row["data-journey-id"] for row in rows] == [kept]
    assert embed.open("/journeys/v2", id=gone).status_code == 404


# -- building, publishing, starting ------------------------------------------------------------------


def test_a_journey_built_in_the_editor_is_published_started_and_read_back(embed: Embed, admin: Admin) -> None:
    journey_id = embed.create("Welcome series")
    segment_id, template_id, message_id, delay_id = build_message_then_delay(embed, admin, journey_id)
    # Edits are drafts until published.
    assert "definition" not in admin.journey(journey_id)

    published = press(embed, journey_id, "journey-publish-form")
    assert published.status_code == 200, published.text
    started = press(embed, journey_id, "journey-start")
    assert started.status_code == 200, started.text
    page = Page(started.text)
    assert [attrs["data-status"] for attrs in page.with_testid("journey-status")] == ["Running"]
    assert page.with_testid("journey-pause") and not page.with_testid("journey-start")

    stored = admin.journey(journey_id)
    assert stored["status"] == "Running" and "draft" not in stored
    assert stored["definition"] == {
        "entryNode": {"type": "EntryNode", "segment": segment_id, "child": message_id},
        "exitNode": {"type": "ExitNode"},
        "nodes": [
            {
                "type": "MessageNode",
                "id": message_id,
                "variant": {"type": "Email", "templateId": template_id},
                "child": delay_id,
                "name": "Welcome mail",
            },
            {
                "type": "DelayNode",
                "id": delay_id,
                "variant": {"type": "Second", "seconds": 7200},
                "child": "ExitNode",
            },
        ],
    }
    # The editor draws it in order, and the table lists it running with its entry segment.
    drawn = [attrs["data-node-id"] for attrs in embed.editor(journey_id).with_testid("journey-node")]
    assert drawn == ["EntryNode", message_id, delay_id]
    table = Page(embed.open("/journeys").text)
    assert [attrs["data-status"] for attrs in table.with_testid("journey-row-status")] == ["Running"]
    assert "Segment: Paid" in embed.open("/journeys").text

    paused = press(embed, journey_id, "journey-pause")
    assert paused.status_code == 200 and admin.journey(journey_id)["status"] == "Paused"
    assert press(embed, journey_id, "journey-resume").status_code == 200
    assert admin.journey(journey_id)["status"] == "Running"


def test_every_node_type_is_added_and_edited_through_its_form(embed: Embed, admin: Admin) -> None:
    journey_id = embed.create("Branches")
    vip, trial = admin.segment("VIP"), admin.segment("Trial")
    set_entry(embed, journey_id, entryType="EventEntryNode", event="SIGNED_UP", key="accountId")
    _, split_id = add_node(embed, journey_id, "EventEntryNode", "SegmentSplitNode")
    form = node_form(embed, journey_id, split_id)
    assert embed.submit(form, form.with_values(segment=vip, name="VIP?")).status_code == 200
    _, cohort_id = add_node(embed, journey_id, split_id, "RandomCohortNode", slot="falseChild")
    form = node_form(embed, journey_id, cohort_id)
    answer = embed.submit(form, form.with_values(percent_0="30", percent_1="70", cohortName_1="Rest"))
    assert answer.status_code == 200, answer.text
    _, wait_id = add_node(embed, journey_id, split_id, "WaitForNode", slot="trueChild")
    form = node_form(embed, journey_id, wait_id)
    answer = embed.submit(form, form.with_values(timeoutAmount="3", timeoutUnit="days", segmentId_0=trial))
    assert answer.status_code == 200, answer.text
    _, delay_id = add_node(embed, journey_id, cohort_id, "DelayNode", slot="children.0")
    form = node_form(embed, journey_id, delay_id)
    local = form.with_values(
        delayType="LocalTime",
        hour="9",
        minute="30",
        allowedDaysOfWeek=["1", "5"],
        defaultTimezone="Europe/Paris",
    )
    assert embed.submit(form, local).status_code == 200

    draft = admin.journey(journey_id)["draft"]
    nodes = {node["id"]: node for node in draft["nodes"]}
    assert draft["entryNode"] == {
        "type": "EventEntryNode",
        "event": "SIGNED_UP",
        "key": "accountId",
        "child": split_id,
    }
    assert nodes[split_id]["variant"] == {
        "type": "Boolean",
        "segment": vip,
        "trueChild": wait_id,
        "falseChild": cohort_id,
    }
    assert nodes[split_id]["name"] == "VIP?"
    assert nodes[wait_id]["timeoutSeconds"] == 259200
    assert nodes[wait_id]["segmentChildren"] == [{"id": "ExitNode", "segmentId": trial}]
    assert nodes[cohort_id]["children"] == [
        {"id": delay_id, "percent": 30, "name": "A"},
        {"id": "ExitNode", "percent": 70, "name": "Rest"},
    ]
    assert nodes[delay_id]["variant"] == {
        "type": "LocalTime",
        "hour": 9,
        "minute": 30,
        "allowedDaysOfWeek": [1, 5],
        "defaultTimezone": "Europe/Paris",
    }
    page = embed.editor(journey_id)
    slots = [attrs["data-slot"] for attrs in page.with_testid("journey-branch")]
    assert slots == [
        "trueChild",
        "segmentChildren.0",
        "timeoutChild",
        "falseChild",
        "children.0",
        "children.1",
    ]
    # An event-entry journey may wait only for keyed segments: the engine refuses to publish it.
    refused = press(embed, journey_id, "journey-publish-form")
    assert refused.status_code == 400
    assert "KeyedPerformed" in refused.text
    assert "definition" not in admin.journey(journey_id)


def test_branches_of_a_wait_for_are_added_and_removed(embed: Embed, admin: Admin) -> None:
    journey_id = embed.create("Waits")
    _, wait_id = add_node(embed, journey_id, "EntryNode", "WaitForNode")
    page = embed.editor(journey_id)
    assert embed.submit(page.form("node-add-branch-form")).status_code == 200
    assert len(admin.journey(journey_id)["draft"]["nodes"][0]["segmentChildren"]) == 2
    page = embed.editor(journey_id)
    (second,) = [
        f
        for f in page.forms
        if f.attrs.get("data-testid") == "node-remove-branch-form" and ("branch", "1") in f.fields
    ]
    assert embed.submit(second).status_code == 200
    assert len(admin.journey(journey_id)["draft"]["nodes"][0]["segmentChildren"]) == 1
    assert not embed.editor(journey_id).with_testid("node-remove-branch")


def test_removing_a_node_relinks_its_parent_to_its_child(embed: Embed, admin: Admin) -> None:
    journey_id = embed.create("Shorter")
    _, template_id, message_id, delay_id = build_message_then_delay(embed, admin, journey_id)
    page = embed.editor(journey_id)
    answer = embed.submit(page.form("node-remove-form", node_id=message_id))
    assert answer.status_code == 200, answer.text
    draft = admin.journey(journey_id)["draft"]
    assert draft["entryNode"]["child"] == delay_id
    assert [node["id"] for node in draft["nodes"]] == [delay_id]
    assert [attrs["data-node-id"] for attrs in Page(answer.text).with_testid("journey-node")] == [
        "EntryNode",
        delay_id,
    ]


def test_a_canRunMultiple_toggle_and_a_rename_are_saved(embed: Embed, admin: Admin) -> None:
    journey_id = embed.create("Old name")
    form = embed.editor(journey_id).form("journey-settings-form")
    answer = embed.submit(form, form.with_values(name="New name", canRunMultiple="true"))
    assert answer.status_code == 200, answer.text
    stored = admin.journey(journey_id)
    assert stored["name"] == "New name" and stored["canRunMultiple"] is True
    form = embed.editor(journey_id).form("journey-settings-form")
    assert ("canRunMultiple", "true") in form.fields
    assert embed.submit(form, form.with_values(canRunMultiple=[])).status_code == 200
    assert admin.journey(journey_id)["canRunMultiple"] is False


def test_discarding_the_draft_goes_back_to_the_published_journey(embed: Embed, admin: Admin) -> None:
    journey_id = embed.create("Discard")
    _, _, message_id, delay_id = build_message_then_delay(embed, admin, journey_id)
    assert press(embed, journey_id, "journey-publish-form").status_code == 200
    embed.submit(embed.editor(journey_id).form("node-remove-form", node_id=delay_id))
    assert admin.journey(journey_id)["draft"]["nodes"][0]["child"] == "ExitNode"
    assert press(embed, journey_id, "journey-discard-form").status_code == 200
    stored = admin.journey(journey_id)
    assert "draft" not in stored and stored["definition"]["nodes"][0]["child"] == delay_id


# -- refusals ----------------------------------------------------------------------------------------


def test_publishing_a_message_without_its_template_is_refused_at_that_node(
    embed: Embed, admin: Admin
) -> None:
    journey_id = embed.create("Unfinished")
    set_entry(embed, journey_id, segment=admin.segment("Paid"))
    _, message_id = add_node(embed, journey_id, "EntryNode", "MessageNode")
    draft = admin.journey(journey_id)["draft"]

    refused = press(embed, journey_id, "journey-publish-form")
    assert refused.status_code == 400
    (error,) = Page(refused.text).with_testid("node-error")
    assert error["data-field"] == "templateId"
    assert "templateId" in refused.text
    node = [f for f in Page(refused.text).forms if f.attrs.get("data-node-id") == message_id]
    assert node and any(
        attrs.get("aria-invalid") for _, attrs in Page(refused.text).tags if attrs.get("name") == "templateId"
    )
    stored = admin.journey(journey_id)
    assert "definition" not in stored and stored["draft"] == draft


def test_bad_field_values_are_refused_naming_the_field_and_nothing_is_saved(
    embed: Embed, admin: Admin
) -> None:
    journey_id = embed.create("Typos")
    _, delay_id = add_node(embed, journey_id, "EntryNode", "DelayNode")
    draft = admin.journey(journey_id)["draft"]
    form = node_form(embed, journey_id, delay_id)
    cases = [
        (form.with_values(delayAmount="soon"), "delayAmount"),
        (form.with_values(delayAmount="-1"), "delayAmount"),
        (form.with_values(delayType="LocalTime", hour="24"), "hour"),
        (form.with_values(delayType="LocalTime", hour="9", defaultTimezone="Mars/Base"), "defaultTimezone"),
        (form.with_values(delayType="Sometime"), "delayType"),
    ]
    for fields, name in cases:
        refused = embed.submit(form, fields)
        assert refused.status_code == 400, (name, refused.text)
        (error,) = Page(refused.text).with_testid("node-error")
        assert error["data-field"] == name and name in refused.text
    assert set_entry(embed, journey_id, entryType="EventEntryNode", event=" ").status_code == 400
    add = embed.editor(journey_id).form("add-node", node_id="EntryNode", slot="child")
    assert embed.submit(add, add.with_values(type="ExitNode")).status_code == 400
    assert embed.submit(add, add.with_values(slot="trueChild")).status_code == 400
    assert admin.journey(journey_id)["draft"] == draft


def test_starting_a_journey_never_published_is_refused_at_the_status(embed: Embed, admin: Admin) -> None:
    journey_id = embed.create("Not yet")
    refused = press(embed, journey_id, "journey-start")
    assert refused.status_code == 400
    (error,) = Page(refused.text).with_testid("journey-status-error")
    assert error["data-field"] == "status" and "definition" in refused.text
    assert admin.journey(journey_id)["status"] == "NotStarted"


def test_a_session_without_the_journey_component_is_refused(
    client: TestClient, parent: ParentAccount, tenant: Tenant, embed: Embed
) -> None:
    journey_id = embed.create("Private")
    segments_only = mint(client, parent, tenant, components=["Segment"])
    assert segments_only.open("/journeys").status_code == 403
    assert segments_only.open("/journeys/v2", id=journey_id).status_code == 403
    form = embed.editor(journey_id).form("journey-settings-form")
    assert segments_only.submit(form, form.with_values(name="Taken")).status_code == 403
    assert mint(client, parent, tenant, components=["Journey"]).open("/journeys").status_code == 200


def test_a_session_minted_for_some_journeys_reaches_only_those(
    client: TestClient, parent: ParentAccount, tenant: Tenant, embed: Embed
) -> None:
    mine, other = embed.create("Mine"), embed.create("Other")
    narrow = mint(client, parent, tenant, resourceIds=[mine])
    table = Page(narrow.open("/journeys").text)
    assert [row["data-journey-id"] for row in table.with_testid("journey-row")] == [mine]
    assert not table.with_testid("new-journey-name")
    assert narrow.open("/journeys/v2", id=other).status_code == 403
    assert narrow.open("/journeys/v2", id=mine).status_code == 200


def test_another_workspace_s_journey_is_not_found(
    client: TestClient, parent: ParentAccount, embed: Embed
) -> None:
    sibling = parent.put_child("Tenant B", "tenant-b")
    theirs = mint(client, parent, sibling).create("Theirs")
    assert embed.open("/journeys/v2", id=theirs).status_code == 404
    form = Form(
        {"action": f"{EMBED}/journeys/v2/settings?workspaceId={embed.workspace_id}"},
        [("id", theirs), ("name", "Mine")],
    )
    assert embed.submit(form).status_code == 404


# -- what the pages show -----------------------------------------------------------------------------


def test_hostile_names_are_rendered_inert(embed: Embed, admin: Admin) -> None:
    segment_id, template_id = admin.segment(HOSTILE), admin.template(f"{HOSTILE} mail")
    journey_id = embed.create(HOSTILE)
    set_entry(embed, journey_id, segment=segment_id)
    _, message_id = add_node(embed, journey_id, "EntryNode", "MessageNode")
    form = node_form(embed, journey_id, message_id)
    embed.submit(form, form.with_values(templateId=template_id, name=HOSTILE))
    for page in (embed.open("/journeys/v2", id=journey_id).text, embed.open("/journeys").text):
        assert HOSTILE not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_message_nodes_show_what_they_sent(client: TestClient, embed: Embed, admin: Admin) -> None:
    journey_id = embed.create("Counted")
    _, _, message_id, _ = build_message_then_delay(embed, admin, journey_id)
    press(embed, journey_id, "journey-publish-form")
    press(embed, journey_id, "journey-start")
    events = DeliveryEvents(client, admin.workspace_id)
    sent_at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    for message, statuses in (("m1", ["DFEmailDelivered", "DFEmailOpened"]), ("m2", ["DFEmailDelivered"])):
        tags = {"journeyId": journey_id, "nodeId": message_id}
        events.sent(message, "ada", sent_at.isoformat(), template="t", variant=SENT_EMAIL, tags=tags)
        for status in statuses:
            events.status(status, message, "ada", sent_at.isoformat())

    (stats,) = embed.editor(journey_id).with_testid("node-stats")
    assert stats["data-sent"] == "2"
    page = embed.open("/journeys/v2", id=journey_id).text
    assert "delivered 2 (100%)" in page and "opened 1 (50%)" in page
    (row,) = Page(embed.open("/journeys").text).with_testid("journey-row-stats")
    assert row["data-sent"] == "2"


def test_a_long_journey_made_through_the_api_opens_in_the_editor(embed: Embed, admin: Admin) -> None:
    segment_id = admin.segment("Paid")
    ids = [f"wait-{index}" for index in range(300)]
    nodes = [
        {"type": "DelayNode", "id": node_id, "variant": {"type": "Second", "seconds": 60}, "child": then}
        for node_id, then in zip(ids, [*ids[1:], "ExitNode"], strict=True)
    ]
    definition = {
        "entryNode": {"type": "EntryNode", "segment": segment_id, "child": ids[0]},
        "exitNode": {"type": "ExitNode"},
        "nodes": nodes,
    }
    journey = admin.put("journeys", name="Long", definition=definition)
    page = embed.editor(journey["id"])
    assert [attrs["data-node-id"] for attrs in page.with_testid("journey-node")] == ["EntryNode", *ids]
    assert page.with_testid("journey-published")


def test_the_console_lists_creates_and_edits_journeys_in_anonymous_mode(
    client: TestClient, parent: ParentAccount
) -> None:
    # Anonymous mode opens the first workspace: the parent, here.
    table = client.get("/dashboard/journeys")
    assert table.status_code == 200, table.text
    form = Page(table.text).form("new-journey-form")
    created = post_form(client, form.action, [("name", "From the console")], htmx=False)
    assert created.status_code == 303
    editor = created.headers["location"]
    assert editor.startswith(f"/dashboard/journeys/v2?workspaceId={parent.id}&id=")
    page = client.get(editor)
    assert page.status_code == 200, page.text
    form = Page(page.text).form("add-node", node_id="EntryNode", slot="child")
    added = post_form(client, form.action, form.with_values(type="DelayNode"))
    assert added.status_code == 200, added.text
    assert 'data-node-type="DelayNode"' in added.text
    listed = client.get("/dashboard/journeys")
    assert "From the console" in listed.text
    assert f'href="/dashboard/journeys/v2?workspaceId={parent.id}' in listed.text
