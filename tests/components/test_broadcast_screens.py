"""The broadcasts table (`/broadcasts`) and the broadcast editor (`/broadcasts/v2?id=&step=`),
component "Broadcast": a broadcast created, given recipients and content, configured and started
through the screens' own forms, sent by one run of the broadcast worker over the real engine (SQL and
ClickHouse), and its deliveries and events shown; the workspace's Broadcast configuration applied on
the server; the session's scope and the member's role enforced; hostile names rendered inert."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from engine.broadcasts.execution import BroadcastRunner
from engine.storage.models import Role, Workspace, WorkspaceMember, WorkspaceMemberRole, WorkspaceType, utcnow
from gateway.app import create_app
from gateway.member_cookie import COOKIE_NAME
from gateway.settings import Settings
from gateway.tokens import Purpose
from tests.gateway.api.conftest import ParentAccount, Tenant

EMBED = "/dashboard-l/embedded"
HOSTILE = "<img src=x onerror=alert(1)>"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
HAS_PLAN = {
    "entryNode": {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Exists"}},
    "nodes": [],
}
EMAIL = {
    "type": "Email",
    "from": "news@acme.test",
    "subject": "Hello {{ user.firstName }}",
    "body": "<p>Spring sale for {{ user.firstName }}</p>",
}
VOID_TAGS = frozenset({"input", "img", "br", "hr", "meta", "link"})


@pytest.fixture
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """SQLite, or each SQL store for a test that takes `sql_url` (the default runs on SQLite only)."""
    if "sql_url" not in request.fixturenames:
        return settings
    return dataclasses.replace(settings, database_url=request.getfixturevalue("sql_url"))


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, run_worker=False)) as test_client:
        yield test_client


# -- helpers -----------------------------------------------------------------------------------------


class Page(HTMLParser):
    """A page's start tags by data-testid, the text inside them, and each select's chosen value."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html = html
        self.tags: list[dict[str, str]] = []
        self.texts: dict[str, list[str]] = {}
        self.options: dict[str, list[tuple[str, str, bool]]] = {}
        self._open: list[tuple[str, str]] = []
        self._select: str | None = None
        self._option: tuple[str, bool] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        found["<tag>"] = tag
        self.tags.append(found)
        testid = found.get("data-testid", "")
        if tag == "select":
            self._select = testid
            self.options[testid] = []
        elif tag == "option":
            self._option = (found.get("value", ""), "selected" in found)
        if tag in VOID_TAGS:
            return
        if testid:
            self.texts.setdefault(testid, []).append("")
        self._open.append((tag, testid))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._select is not None and self._option is not None:
            value, selected = self._option
            self.options[self._select].append((value or data.strip(), data.strip(), selected))
            self._option = None
        for testid in {testid for _, testid in self._open if testid}:
            self.texts[testid][-1] += data

    def find(self, testid: str) -> list[dict[str, str]]:
        return [tag for tag in self.tags if tag.get("data-testid") == testid]

    def has(self, testid: str) -> bool:
        return bool(self.find(testid))

    def one(self, testid: str) -> dict[str, str]:
        (found,) = self.find(testid)
        return found

    def text(self, testid: str) -> str:
        return " ".join(self.texts[testid][0].split())

    def choices(self, testid: str) -> list[str]:
        """The option labels of a select."""
        return [label for _, label, _ in self.options[testid]]

    def chosen(self, testid: str) -> str:
        return next((value for value, _, selected in self.options[testid] if selected), "")


@dataclass
class Shell:
    """One shell of the screens: embedded (token in the first URL, then the header) or the console."""

    client: TestClient
    workspace_id: str
    token: str | None = None

    @property
    def base(self) -> str:
        return EMBED if self.token else "/dashboard"

    def open(self, path: str, **params: str) -> httpx.Response:
        query = {"workspaceId": self.workspace_id, **params}
        if self.token:
            query["token"] = self.token
        return self.client.get(f"{self.base}{path}", params=query)

    def page(self, path: str, **params: str) -> Page:
        response = self.open(path, **params)
        assert response.status_code == 200, response.text
        return Page(response.text)

    def post(self, path: str, **fields: str) -> httpx.Response:
        """A form posted by htmx (the embed shell's header carries the token)."""
        headers = {"content-type": "application/x-www-form-urlencoded", "hx-request": "true"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return self.client.post(
            f"{self.base}{path}?{urlencode({'workspaceId': self.workspace_id})}",
            content=urlencode(fields),
            headers=headers,
        )

    def saved(self, path: str, **fields: str) -> str:
        """Post a form that must succeed; the URL htmx is sent to next."""
        response = self.post(path, **fields)
        assert response.status_code == 204, response.text
        return response.headers["hx-location"]

    def create(self, name: str) -> str:
        """A new broadcast through the table's form; its id."""
        location = self.saved("/broadcasts/new", name=name)
        assert location.startswith(f"{self.base}/broadcasts/v2?")
        assert "token" not in location
        return parse_qs(urlsplit(location).query)["id"][0]

    def editor(self, broadcast_id: str, step: str | None = None) -> Page:
        return self.page("/broadcasts/v2", id=broadcast_id, **({"step": step} if step else {}))


@dataclass
class Admin:
    """The tenant's resources, made through the admin API with the parent's key."""

    client: TestClient
    key: str
    workspace_id: str

    def put(self, path: str, **body: Any) -> dict[str, Any]:
        response = self.client.put(
            path,
            json={"workspaceId": self.workspace_id, **body},
            headers={"authorization": f"Bearer {self.key}"},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def segment(self, name: str = "Paying") -> str:
        return str(self.put("/api/admin/segments", name=name, definition=HAS_PLAN)["id"])

    def template(self, name: str = "Spring email", definition: dict[str, Any] = EMAIL) -> str:
        return str(self.put("/api/admin/content/templates", name=name, definition=definition)["id"])

    def configure(self, **definition: Any) -> None:
        self.put(
            "/api/admin/component-configurations",
            name="Broadcast",
            definition={"type": "Broadcast", **definition},
        )

    def broadcast(self, broadcast_id: str) -> dict[str, Any]:
        response = self.client.get(
            "/api/admin/broadcasts",
            params={"workspaceId": self.workspace_id, "ids": broadcast_id},
            headers={"authorization": f"Bearer {self.key}"},
        )
        assert response.status_code == 200, response.text
        (found,) = response.json()
        return dict(found)

    def identify(self, write_key: str, user_id: str, **traits: Any) -> None:
        response = self.client.post(
            "/api/public/apps/identify",
            json={"userId": user_id, "messageId": str(uuid.uuid4()), "traits": traits},
            headers={"authorization": write_key},
        )
        assert response.status_code == 204, response.text

    def compute(self) -> None:
        """Bring the workspace's segments and user properties up to date, as the worker does."""
        assert self.client.app.state.compute.compute(self.workspace_id).failed == 0  # type: ignore[attr-defined]


def mint(client: TestClient, parent: ParentAccount, tenant: Tenant, **extra: Any) -> Shell:
    response = client.post(
        "/api-l/sessions",
        json={"workspaceId": tenant.id, **extra},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert response.status_code == 200, response.text
    return Shell(client, tenant.id, response.json()["token"])


def run_broadcasts(client: TestClient) -> None:
    """The worker's broadcast task, run until it has nothing left to do (each run loads recipients,
    sends due batches or finishes broadcasts). The segments were computed before the start, so the
    runner does not recompute them (on SQLite its recompute would wait on the runner's own lock)."""
    app: Starlette = client.app  # type: ignore[assignment]
    state = app.state
    runner = BroadcastRunner(
        state.sessions,
        state.send_services,
        state.event_writer.write,
        clock=utcnow,
        owner="screen-test",
    )
    for _ in range(10):
        runner.run_due()


@pytest.fixture
def admin(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Admin:
    return Admin(client, parent.admin_key, tenant.id)


@pytest.fixture
def embed(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Shell:
    return mint(client, parent, tenant)


# -- the whole way through ---------------------------------------------------------------------------


def test_a_broadcast_is_built_started_and_sent_through_the_screens(
    sql_url: str, client: TestClient, admin: Admin, embed: Shell, tenant: Tenant
) -> None:
    for user_id, name in (("ada", "Ada"), ("bob", "Bob")):
        admin.identify(tenant.write_key, user_id, plan="pro", email=f"{user_id}@example.com", firstName=name)
    admin.identify(tenant.write_key, "carol", email="carol@example.com")  # no plan: not a member
    segment_id = admin.segment("Paying")
    template_id = admin.template("Spring email")
    admin.compute()

    table = embed.page("/broadcasts")
    assert table.has("broadcasts-empty") and not table.has("broadcast-row")
    assert table.has("new-broadcast-name") and table.has("create-broadcast")

    broadcast_id = embed.create("Spring sale")
    editor = embed.editor(broadcast_id)
    assert [tab["data-step"] for tab in editor.find("step-panel")] == ["RECIPIENTS"]
    # DELIVERIES and EVENTS get tabs once the broadcast has left Draft.
    assert [tab["href"] for tab in editor.find("step-recipients")] == [
        f"{EMBED}/broadcasts/v2?workspaceId={tenant.id}&id={broadcast_id}&step=RECIPIENTS"
    ]
    assert [t["data-step"] for t in editor.tags if t.get("data-step") and t["<tag>"] == "a"] == [
        "RECIPIENTS",
        "CONTENT",
        "CONFIGURATION",
    ]
    assert editor.one("broadcast-status")["data-status"] == "Draft"
    assert "Paying" in editor.choices("segment-select")
    assert editor.one("segment-members")["data-members"] == ""

    # The segment select shows the count of the segment it names before it is saved.
    count = embed.open("/broadcasts/v2/members", segmentId=segment_id)
    assert count.status_code == 200 and Page(count.text).one("segment-members")["data-members"] == "2"

    location = embed.saved(
        "/broadcasts/v2/recipients", id=broadcast_id, name="Spring sale!", segmentId=segment_id
    )
    assert location.endswith("step=RECIPIENTS&saved=1")
    assert "step-saved" in embed.open("/broadcasts/v2", id=broadcast_id, step="RECIPIENTS", saved="1").text
    recipients = embed.editor(broadcast_id, "RECIPIENTS")
    assert "step-saved" not in recipients.html
    assert recipients.chosen("segment-select") == segment_id
    assert recipients.one("segment-members")["data-members"] == "2"
    assert recipients.text("broadcast-title") == "Spring sale!"
    assert recipients.chosen("subscription-group-select") != ""  # the channel's oldest group

    content = embed.editor(broadcast_id, "CONTENT")
    assert content.choices("template-select")[0] == "— No template —"
    assert "Spring email" in content.choices("template-select")
    assert not content.has("template-preview")
    embed.saved("/broadcasts/v2/content", id=broadcast_id, messageTemplateId=template_id)
    content = embed.editor(broadcast_id, "CONTENT")
    assert content.chosen("template-select") == template_id
    frame = content.one("email-preview-frame")
    assert "sandbox" in frame and frame["sandbox"] == ""
    assert frame["srcdoc"].count("Spring sale for Jane") == 1  # rendered for the sample user
    assert content.text("preview-subject") == "Hello Jane"
    assert content.one("template-editor-link")["href"] == (
        f"{EMBED}/templates/email?workspaceId={tenant.id}&id={template_id}"
    )

    assert editor.has("broadcast-start") and not editor.has("broadcast-pause")
    embed.saved("/broadcasts/v2/start", id=broadcast_id, step="CONTENT")
    started = embed.editor(broadcast_id)
    assert started.one("broadcast-status")["data-status"] == "Running"
    assert started.has("broadcast-pause") and started.has("broadcast-cancel")
    assert not started.has("broadcast-start")

    run_broadcasts(client)

    assert admin.broadcast(broadcast_id)["status"] == "Completed"
    deliveries = embed.editor(broadcast_id, "DELIVERIES")
    assert deliveries.one("broadcast-status")["data-status"] == "Completed"
    rows = deliveries.find("delivery-row")
    assert len(rows) == 2 and {row["data-status"] for row in rows} == {"DFInternalMessageSent"}
    assert deliveries.one("deliveries-count")["data-count"] == "2"
    assert {deliveries.one("broadcast-progress")[k] for k in ("data-sent", "data-total")} == {"2"}
    assert "Hello Ada" in deliveries.html and "Hello Bob" in deliveries.html
    assert "carol" not in deliveries.html
    assert [tab["data-step"] for tab in deliveries.tags if tab.get("data-step") and tab["<tag>"] == "a"] == [
        "RECIPIENTS",
        "CONTENT",
        "CONFIGURATION",
        "DELIVERIES",
        "EVENTS",
    ]

    events = embed.editor(broadcast_id, "EVENTS")
    sent = [row for row in events.find("event-row") if row["data-event"] == "DFInternalMessageSent"]
    assert len(sent) == 2
    assert int(events.one("events-count")["data-count"]) >= 2

    listed = embed.page("/broadcasts")
    (row,) = listed.find("broadcast-row")
    assert (row["data-broadcast-id"], row["data-status"]) == (broadcast_id, "Completed")
    assert listed.text("broadcast-segment") == "Paying"
    assert listed.text("broadcast-template") == "Spring email"
    assert listed.text("broadcast-progress") == "2 / 2 sent"


def test_the_lifecycle_buttons_follow_the_status(admin: Admin, embed: Shell) -> None:
    broadcast_id = embed.create("Lifecycle")
    embed.saved("/broadcasts/v2/recipients", id=broadcast_id, name="Lifecycle", segmentId=admin.segment())
    embed.saved("/broadcasts/v2/content", id=broadcast_id, messageTemplateId=admin.template())
    embed.saved("/broadcasts/v2/start", id=broadcast_id)

    embed.saved("/broadcasts/v2/pause", id=broadcast_id)
    paused = embed.editor(broadcast_id)
    assert paused.one("broadcast-status")["data-status"] == "Paused"
    assert paused.has("broadcast-resume") and not paused.has("broadcast-pause")

    embed.saved("/broadcasts/v2/resume", id=broadcast_id)
    assert admin.broadcast(broadcast_id)["status"] == "Running"
    embed.saved("/broadcasts/v2/cancel", id=broadcast_id)
    cancelled = embed.editor(broadcast_id)
    assert cancelled.one("broadcast-status")["data-status"] == "Cancelled"
    assert not any(cancelled.has(f"broadcast-{a}") for a in ("start", "pause", "resume", "cancel"))
    # A broadcast that left Draft keeps whom it sends to: the recipients are shown, not offered.
    recipients = embed.editor(broadcast_id, "RECIPIENTS")
    assert "<fieldset disabled>" in recipients.html and recipients.has("save-recipients")  # the name
    assert not embed.editor(broadcast_id, "CONTENT").has("save-content")
    moved = embed.post("/broadcasts/v2/content", id=broadcast_id, messageTemplateId="")
    assert moved.status_code == 400 and "messageTemplateId" in moved.text


def test_the_configuration_step_writes_the_config_and_the_schedule(admin: Admin, embed: Shell) -> None:
    broadcast_id = embed.create("Configured")
    page = embed.editor(broadcast_id, "CONFIGURATION")
    assert page.choices("provider-override-select")[0] == "Workspace default"
    assert "SendGrid" in page.choices("provider-override-select")
    assert page.has("rate-limit-input") and page.has("error-handling-select") and page.has("schedule")

    embed.saved(
        "/broadcasts/v2/configuration",
        id=broadcast_id,
        providerOverride="Test",
        rateLimit="25",
        errorHandling="PauseOnError",
        schedule="later",
        scheduledAt="2030-11-22T09:00",
        defaultTimezone="Europe/Paris",
    )
    stored = admin.broadcast(broadcast_id)
    assert stored["config"] == {
        "type": "V2",
        "message": {"type": "Email", "providerOverride": "Test"},
        "rateLimit": 25,
        "errorHandling": "PauseOnError",
        "defaultTimezone": "Europe/Paris",
    }
    assert stored["scheduledAt"] == "2030-11-22T09:00"
    page = embed.editor(broadcast_id, "CONFIGURATION")
    assert page.chosen("provider-override-select") == "Test"
    assert page.one("rate-limit-input")["value"] == "25"
    assert page.one("scheduled-at-input")["value"] == "2030-11-22T09:00"
    assert page.chosen("timezone-select") == "Europe/Paris"

    embed.saved(
        "/broadcasts/v2/configuration",
        id=broadcast_id,
        providerOverride="",
        rateLimit="",
        errorHandling="",
        schedule="now",
        defaultTimezone="",
    )
    stored = admin.broadcast(broadcast_id)
    assert stored["config"] == {"type": "V2", "message": {"type": "Email"}}
    assert "scheduledAt" not in stored


def test_picking_a_template_of_another_channel_moves_the_draft_to_it(admin: Admin, embed: Shell) -> None:
    sms_id = admin.template("Sms promo", {"type": "Sms", "body": "Sale! {{ user.firstName }}"})
    broadcast_id = embed.create("By SMS")
    embed.saved("/broadcasts/v2/content", id=broadcast_id, messageTemplateId=sms_id)
    stored = admin.broadcast(broadcast_id)
    assert stored["config"]["message"] == {"type": "Sms"}
    content = embed.editor(broadcast_id, "CONTENT")
    assert content.one("template-preview")["data-channel"] == "Sms"
    assert content.text("sms-preview-text") == "Sale! Jane"
    assert content.one("template-editor-link")["href"].endswith(
        f"/templates/sms?workspaceId={embed.workspace_id}&id={sms_id}"
    )


# -- the Broadcast configuration, on the server -------------------------------------------------------


def test_the_broadcast_configuration_is_applied_on_the_server(admin: Admin, embed: Shell) -> None:
    admin.configure(
        stepsAllowList=["RECIPIENTS", "CONFIGURATION"],
        emailProviderOverrideAllowList=["Test", "Smtp"],
        hideRateLimit=True,
        hideScheduledSelect=True,
    )
    template_id = admin.template()
    broadcast_id = embed.create("Shaped")

    editor = embed.editor(broadcast_id)
    tabs = [t["data-step"] for t in editor.tags if t.get("data-step") and t["<tag>"] == "a"]
    assert tabs == ["RECIPIENTS", "CONFIGURATION"]
    assert embed.open("/broadcasts/v2", id=broadcast_id, step="CONTENT").status_code == 403
    assert embed.open("/broadcasts/v2", id=broadcast_id, dfbs="EVENTS").status_code == 403
    refused = embed.post("/broadcasts/v2/content", id=broadcast_id, messageTemplateId=template_id)
    assert refused.status_code == 403 and "CONTENT" in refused.text
    assert "messageTemplateId" not in admin.broadcast(broadcast_id)

    page = embed.editor(broadcast_id, "CONFIGURATION")
    assert page.choices("provider-override-select") == ["Workspace default", "Test", "Smtp"]
    # Hidden options are not rendered; error handling is shown only when the configuration asks.
    assert (
        not page.has("rate-limit-input") and not page.has("schedule") and not page.has("scheduled-at-input")
    )
    assert not page.has("error-handling-select")

    outside = embed.post("/broadcasts/v2/configuration", id=broadcast_id, providerOverride="SendGrid")
    assert outside.status_code == 403 and "providerOverride" in outside.text
    hidden = embed.post("/broadcasts/v2/configuration", id=broadcast_id, rateLimit="5")
    assert hidden.status_code == 403 and "rateLimit" in hidden.text
    scheduled = embed.post(
        "/broadcasts/v2/configuration",
        id=broadcast_id,
        schedule="later",
        scheduledAt="2030-01-01T09:00",
        defaultTimezone="UTC",
    )
    assert scheduled.status_code == 403 and "scheduledAt" in scheduled.text
    assert admin.broadcast(broadcast_id)["config"] == {"type": "V2", "message": {"type": "Email"}}

    embed.saved("/broadcasts/v2/configuration", id=broadcast_id, providerOverride="Smtp")
    assert admin.broadcast(broadcast_id)["config"]["message"] == {"type": "Email", "providerOverride": "Smtp"}


def test_error_handling_is_offered_when_the_configuration_shows_it(admin: Admin, embed: Shell) -> None:
    admin.configure(showErrorHandling=True, hideOverrideSelect=True)
    broadcast_id = embed.create("Careful")
    page = embed.editor(broadcast_id, "CONFIGURATION")
    assert page.has("error-handling-select") and not page.has("provider-override-select")
    refused = embed.post("/broadcasts/v2/configuration", id=broadcast_id, providerOverride="Test")
    assert refused.status_code == 403 and "providerOverride" in refused.text
    embed.saved("/broadcasts/v2/configuration", id=broadcast_id, errorHandling="SkipOnError")
    assert admin.broadcast(broadcast_id)["config"]["errorHandling"] == "SkipOnError"


# -- scope, reach, bad input, escaping ---------------------------------------------------------------


def test_a_session_without_the_broadcast_component_is_refused(
    client: TestClient, parent: ParentAccount, tenant: Tenant, embed: Shell
) -> None:
    broadcast_id = embed.create("Theirs")
    templates_only = mint(client, parent, tenant, components=["MessageTemplate"])
    assert templates_only.open("/broadcasts").status_code == 403
    assert templates_only.open("/broadcasts/v2", id=broadcast_id).status_code == 403
    assert templates_only.post("/broadcasts/new", name="Sneaky").status_code == 403
    assert templates_only.post("/broadcasts/v2/start", id=broadcast_id).status_code == 403

    scoped = mint(client, parent, tenant, components=["Broadcast"])
    assert scoped.open("/broadcasts").status_code == 200


def test_a_session_limited_to_resource_ids_sees_only_those(
    client: TestClient, parent: ParentAccount, tenant: Tenant, embed: Shell
) -> None:
    mine = embed.create("Mine")
    other = embed.create("Other")
    limited = mint(client, parent, tenant, resourceIds=[mine])
    table = limited.page("/broadcasts")
    assert [row["data-broadcast-id"] for row in table.find("broadcast-row")] == [mine]
    assert not table.has("new-broadcast-name")
    assert limited.open("/broadcasts/v2", id=other).status_code == 403
    assert limited.post("/broadcasts/v2/recipients", id=other, name="Taken over").status_code == 403
    assert limited.post("/broadcasts/new", name="New").status_code == 403
    assert limited.open("/broadcasts/v2", id=mine).status_code == 200


def test_bad_input_is_a_4xx_naming_the_field(admin: Admin, embed: Shell) -> None:
    broadcast_id = embed.create("Checked")
    other = str(uuid.uuid4())
    later = {"schedule": "later", "scheduledAt": "2030-01-01T09:00"}
    soon = {"schedule": "later", "scheduledAt": "soon", "defaultTimezone": "UTC"}
    bid = broadcast_id
    cases = [
        ("/broadcasts/new", {"name": "  "}, 400, "name"),
        ("/broadcasts/new", {"name": "Checked"}, 400, "unique"),
        ("/broadcasts/v2/recipients", {"id": bid, "name": "x", "segmentId": other}, 400, "segmentId"),
        ("/broadcasts/v2/recipients", {"id": str(uuid.uuid4()), "name": "x"}, 404, "broadcast"),
        ("/broadcasts/v2/recipients", {"id": "not-a-uuid", "name": "x"}, 404, "broadcast"),
        ("/broadcasts/v2/content", {"id": bid, "messageTemplateId": other}, 400, "messageTemplateId"),
        ("/broadcasts/v2/configuration", {"id": bid, "rateLimit": "-1"}, 400, "rateLimit"),
        ("/broadcasts/v2/configuration", {"id": bid, "rateLimit": "fast"}, 400, "rateLimit"),
        ("/broadcasts/v2/configuration", {"id": bid, "errorHandling": "?"}, 400, "errorHandling"),
        ("/broadcasts/v2/configuration", {"id": bid, **later}, 400, "defaultTimezone"),
        ("/broadcasts/v2/configuration", {"id": bid, **soon}, 400, "scheduledAt"),
        ("/broadcasts/v2/configuration", {"id": bid, "schedule": "now", "defaultTimezone": "Mars/X"},
            400, "defaultTimezone"),
        ("/broadcasts/v2/start", {"id": bid}, 400, "template"),
        ("/broadcasts/v2/start", {}, 400, "id"),
    ]  # fmt: skip
    for path, fields, status, named in cases:
        response = embed.post(path, **fields)
        assert (response.status_code, named in response.text) == (status, True), (path, fields, response.text)
        # An htmx form gets the message as a fragment for its status area, not a page.
        assert response.text.startswith('<div class="error" role="alert"'), response.text
    assert embed.open("/broadcasts/v2", id=broadcast_id, step="BOGUS").status_code == 400
    assert embed.open("/broadcasts/v2").status_code == 400
    assert embed.open("/broadcasts/v2", id=str(uuid.uuid4())).status_code == 404
    assert admin.broadcast(broadcast_id)["status"] == "Draft"


def test_hostile_names_are_rendered_inert(admin: Admin, embed: Shell) -> None:
    segment_id = admin.segment(HOSTILE)
    template_id = admin.template(f"T {HOSTILE}", {**EMAIL, "subject": HOSTILE, "body": f"<p>{HOSTILE}</p>"})
    broadcast_id = embed.create(HOSTILE)
    embed.saved("/broadcasts/v2/recipients", id=broadcast_id, name=HOSTILE, segmentId=segment_id)
    embed.saved("/broadcasts/v2/content", id=broadcast_id, messageTemplateId=template_id)

    for html in (
        embed.open("/broadcasts").text,
        embed.open("/broadcasts/v2", id=broadcast_id, step="RECIPIENTS").text,
        embed.open("/broadcasts/v2", id=broadcast_id, step="CONTENT").text,
    ):
        assert HOSTILE not in html
        assert ESCAPED in html
    content = embed.editor(broadcast_id, "CONTENT")
    # The email itself only ever runs in the sandboxed frame, attribute-escaped.
    assert HOSTILE in content.one("email-preview-frame")["srcdoc"]


def test_archived_broadcasts_are_filtered_and_restored(embed: Shell) -> None:
    kept = embed.create("Kept")
    shelved = embed.create("Shelved")
    assert embed.saved("/broadcasts/archive", id=shelved, archived="true").startswith(
        f"{EMBED}/broadcasts?workspaceId="
    )
    table = embed.page("/broadcasts")
    assert [row["data-broadcast-id"] for row in table.find("broadcast-row")] == [kept]
    with_archived = embed.page("/broadcasts", archived="true")
    assert [row["data-broadcast-id"] for row in with_archived.find("broadcast-row")] == [shelved, kept]
    assert with_archived.has("broadcast-archived") and with_archived.has("unarchive-broadcast")
    embed.saved("/broadcasts/archive", id=shelved, archived="false")
    assert len(embed.page("/broadcasts").find("broadcast-row")) == 2


def test_an_embedded_write_is_audited_with_the_occupant(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    occupant = mint(client, parent, tenant, occupantId="user-42")
    broadcast_id = occupant.create("Audited")
    occupant.saved("/broadcasts/v2/recipients", id=broadcast_id, name="Audited again")
    log = client.get(
        "/api-l/admin/audit-log",
        params={"workspaceId": tenant.id, "resourceId": broadcast_id},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    ).json()["entries"]
    assert sorted((e["actorType"], e["actorId"], e["action"]) for e in log) == [
        ("EmbedOccupant", "user-42", "embedded:broadcasts:new"),
        ("EmbedOccupant", "user-42", "embedded:broadcasts:recipients"),
    ]


# -- the member console ------------------------------------------------------------------------------


def test_the_console_works_in_anonymous_mode(client: TestClient, parent: ParentAccount) -> None:
    # Anonymous mode opens the first workspace: the parent, here.
    console = Shell(client, parent.id)
    assert console.page("/broadcasts").has("broadcasts-empty")
    created = client.post(
        "/dashboard/broadcasts/new", data={"name": "From the console"}, follow_redirects=False
    )
    assert created.status_code == 303
    location = created.headers["location"]
    assert location.startswith(f"/dashboard/broadcasts/v2?workspaceId={parent.id}&id=")
    editor = Page(client.get(location).text)
    assert editor.text("broadcast-title") == "From the console"
    broadcast_id = editor.one("broadcast-head")["data-broadcast-id"]
    saved = client.post(
        "/dashboard/broadcasts/v2/configuration",
        data={"id": broadcast_id, "rateLimit": "3"},
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    assert "rate-limit-input" in client.get(saved.headers["location"]).text


@pytest.fixture
def viewer(settings: Settings) -> Iterator[Shell]:
    """The console of a member whose role in the workspace is Viewer (multi-tenant mode)."""
    app = create_app(dataclasses.replace(settings, auth_mode="multi-tenant"), run_worker=False)
    with TestClient(app) as client:
        with app.state.sessions.begin() as session:
            workspace = Workspace(name="Team", type=WorkspaceType.ROOT)
            member = WorkspaceMember(email="viewer@team.example", email_verified=True)
            session.add_all([workspace, member])
            session.flush()
            session.add(
                WorkspaceMemberRole(
                    workspace_id=workspace.id, workspace_member_id=member.id, role=Role.VIEWER
                )
            )
            workspace_id, member_id = workspace.id, member.id
        client.cookies.set(
            COOKIE_NAME, app.state.signer.sign(Purpose.MEMBER_SESSION, {"member_id": member_id})
        )
        yield Shell(client, workspace_id)


def test_a_viewer_reads_broadcasts_but_cannot_change_them(viewer: Shell) -> None:
    table = viewer.page("/broadcasts")
    assert table.has("broadcasts-empty") and not table.has("new-broadcast-name")
    refused = viewer.post("/broadcasts/new", name="Not mine to make")
    assert refused.status_code == 403
    assert viewer.page("/broadcasts").has("broadcasts-empty")
