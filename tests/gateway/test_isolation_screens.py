"""Tenant isolation of the screens and the embedded API over random forests of parents and children, and
the framing and cross-site rules of the pages.

- Isolation: a session token of workspace A opens nothing of any other workspace B (a sibling, its
  parent, another parent, another parent's child). Every GET screen route under `/dashboard-l/embedded`
  (enumerated from components.catalog) named with B's workspaceId is refused (403); named with A's (or
  no) workspaceId and B's resource ids, it answers 403 or 404 and never shows B's data. Every
  `/api-l/embedded/*` route (enumerated from gateway.mounts) called with B's workspaceId is refused
  (401/403); called with A's workspaceId and B's resource ids, it never answers B's data, never a 5xx,
  and B's resources are exactly as they were afterwards.
- Clickjacking: embedded responses carry `Content-Security-Policy: frame-ancestors` with the session's
  origins (else the workspace's, else its parent's); console pages carry `frame-ancestors 'self'`.
- CSRF: a member's cookie never carries a cross-site POST to a console form route.

B's data is recognised by a marker unique to B, planted in its resource names, trait keys and values,
event names and delivery contents; ids are not markers, since a page may echo a filter it was given.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from starlette.routing import Route
from starlette.testclient import TestClient

import gateway  # noqa: F401 (the app first: components.catalog imports the gateway back)
from components.catalog import screen_routes
from engine.storage.models import Role, WorkspaceMember, WorkspaceMemberRole, WorkspaceType
from gateway.app import create_app
from gateway.member_cookie import COOKIE_NAME
from gateway.mounts import embedded_routes
from gateway.operator import create_workspace_with_key
from gateway.settings import Settings
from gateway.tokens import Purpose
from tests.gateway.api.conftest import ParentAccount, make_parent
from tests.support.delivery_events import DeliveryEvents

EMBED = "/dashboard-l/embedded"
CONSOLE = "/dashboard"
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class Planted:
    """One workspace, its resources (ids by kind) and the marker its data carries."""

    workspace_id: str
    admin_key: str
    marker: str
    ids: dict[str, str] = field(default_factory=dict)


def admin(client: TestClient, key: str, method: str, path: str, workspace_id: str, **body: Any) -> Any:
    response = client.request(
        method, path, json={"workspaceId": workspace_id, **body}, headers={"authorization": f"Bearer {key}"}
    )
    assert response.is_success, (path, response.text)
    return response.json() if response.content else None


def plant(client: TestClient, workspace_id: str, admin_key: str) -> Planted:
    """A template of each channel, a segment, a subscription group, a user property, a broadcast, a
    journey, a user with traits, an event and a delivery, all carrying the workspace's marker."""
    marker = f"mk{uuid.uuid4().hex[:12]}"
    planted = Planted(workspace_id, admin_key, marker)
    ids = planted.ids

    def put(path: str, **body: Any) -> str:
        return str(admin(client, admin_key, "PUT", path, workspace_id, **body)["id"])

    email = {"type": "Email", "from": f"{marker}@acme.test", "subject": marker, "body": f"<p>{marker}</p>"}
    ids["email"] = put("/api/admin/content/templates", name=f"Email {marker}", definition=email)
    ids["sms"] = put(
        "/api/admin/content/templates", name=f"SMS {marker}", definition={"type": "Sms", "body": marker}
    )
    trait = {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Equals", "value": marker}}
    ids["segment"] = put(
        "/api/admin/segments", name=f"Segment {marker}", definition={"entryNode": trait, "nodes": []}
    )
    ids["group"] = put(
        "/api/admin/subscription-groups", name=f"Group {marker}", channel="Email", type="OptOut"
    )
    ids["property"] = put(
        "/api/admin/user-properties", name=f"Property {marker}", definition={"type": "Trait", "path": "plan"}
    )
    ids["broadcast"] = put(
        "/api/admin/broadcasts/v2",
        name=f"Broadcast {marker}",
        segmentId=ids["segment"],
        messageTemplateId=ids["email"],
        subscriptionGroupId=ids["group"],
    )
    draft = {
        "entryNode": {"type": "EntryNode", "segment": ids["segment"], "child": "message"},
        "exitNode": {"type": "ExitNode"},
        "nodes": [
            {
                "type": "MessageNode",
                "id": "message",
                "name": marker,
                "variant": {"type": "Email", "templateId": ids["email"]},
                "child": "ExitNode",
            }
        ],
    }
    ids["journey"] = put("/api/admin/journeys", name=f"Journey {marker}", draft=draft)
    # A user id is not a marker: the deliveries screen echoes the userId filter it is given.
    ids["user"] = f"user-{uuid.uuid4().hex[:12]}"
    events = DeliveryEvents(client, workspace_id)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    identify = {
        "userId": ids["user"],
        "messageId": f"identify-{marker}",
        "traits": {f"t_{marker}": marker, "plan": marker},
    }
    events.write("identify", identify)
    events.track(f"E_{marker}", f"track-{marker}", ids["user"], now, {f"p_{marker}": marker})
    variant = {
        "type": "Email",
        "from": f"{marker}@acme.test",
        "to": f"{marker}@example.com",
        "subject": marker,
        "body": marker,
    }
    events.sent(
        f"sent-{marker}",
        ids["user"],
        now,
        template=ids["email"],
        variant=variant,
        tags={"broadcastId": ids["broadcast"], "journeyId": ids["journey"]},
    )
    return planted


def snapshot(client: TestClient, planted: Planted) -> dict[str, Any]:
    """Everything of the workspace the admin API lists."""
    headers = {"authorization": f"Bearer {planted.admin_key}"}
    query = {"workspaceId": planted.workspace_id}
    found: dict[str, Any] = {}
    for path in (
        "/api/admin/content/templates",
        "/api/admin/segments",
        "/api/admin/subscription-groups",
        "/api/admin/user-properties",
        "/api/admin/broadcasts",
        "/api/admin/journeys",
        "/api/admin/deliveries",
        "/api/admin/settings/write-keys",
    ):
        response = client.get(path, params=query, headers=headers)
        assert response.status_code == 200, (path, response.text)
        found[path] = response.json()
    # The workspace's own events, as stored (a parent's listing shows its children's instead).
    store = client.app.state.event_store  # type: ignore[attr-defined]
    found["events"] = store.query(
        "SELECT message_id, event FROM user_events_v2 WHERE workspace_id = {w:String} ORDER BY message_id",
        {"w": planted.workspace_id},
    )
    assert len(found["events"]) == 3, found["events"]
    users = client.post("/api/admin/users", json=query, headers=headers)
    assert users.status_code == 200, users.text
    found["users"] = users.json()
    return found


def session_token(client: TestClient, key: str, workspace_id: str, **extra: Any) -> str:
    minted = admin(client, key, "POST", "/api-l/sessions", workspace_id, **extra)
    return str(minted["token"])


# -- the routes and what to send them ----------------------------------------------------------------


def get_screens() -> list[str]:
    return sorted(
        route.path
        for route in screen_routes()
        if isinstance(route, Route) and route.path.startswith(EMBED) and "GET" in (route.methods or ())
    )


def api_calls() -> list[tuple[str, str]]:
    """(method, path) of every `/api-l/embedded/*` route."""
    return sorted(
        (method, route.path)
        for route in embedded_routes()
        for method in route.methods or ()
        if method != "HEAD"
    )


# The resource an editor's `id` names, by screen path below the shell.
SCREEN_IDS = {
    "/segments/v1": "segment",
    "/templates/email": "email",
    "/templates/email/{id}": "email",
    "/templates/sms": "sms",
    "/templates/sms/{id}": "sms",
    "/broadcasts/v2": "broadcast",
    "/broadcasts/v2/members": "broadcast",
    "/journeys/v2": "journey",
}
# The resource a controller's `id` names, by API group.
API_IDS = {
    "content": "email",
    "segments": "segment",
    "broadcasts": "broadcast",
    "journeys": "journey",
    "subscription-groups": "group",
    "user-properties": "property",
}


def screen_query(path: str, workspace_id: str | None, target: Planted) -> tuple[str, dict[str, Any]]:
    """The screen's URL and a query naming every resource of `target` the screen could read."""
    below = path.removeprefix(EMBED)
    ids = target.ids
    query: dict[str, Any] = {
        "templateIds": [ids["email"], ids["sms"]],
        "journeyIds": ids["journey"],
        "broadcastIds": ids["broadcast"],
        "journeyId": ids["journey"],
        "broadcastId": ids["broadcast"],
        "segmentId": ids["segment"],
        "userId": ids["user"],
    }
    if below in SCREEN_IDS:
        query["id"] = ids[SCREEN_IDS[below]]
    if workspace_id is not None:
        query["workspaceId"] = workspace_id
    return path.replace("{id}", ids[SCREEN_IDS.get(below, "email")]), query


def api_request(method: str, path: str, workspace_id: str, target: Planted) -> dict[str, Any]:
    """httpx request arguments for one embedded API call naming `target`'s resources."""
    group = path.removeprefix("/api-l/embedded/").split("/")[0]
    ids = target.ids
    own = ids[API_IDS.get(group, "email")]
    named: dict[str, Any] = {
        "id": own,
        "ids": [own],
        "templateId": ids["email"],
        "segmentId": ids["segment"],
        "broadcastId": ids["broadcast"],
        "journeyId": ids["journey"],
        "userPropertyId": ids["property"],
        "subscriptionGroupId": ids["group"],
        "userId": ids["user"],
        "userIds": [ids["user"]],
    }
    if path.endswith("/upload-csv"):
        return {
            "files": {"file": ("users.csv", f"id\n{ids['user']}\n".encode(), "text/csv")},
            "headers": {
                "df-workspace-id": workspace_id,
                "df-subscription-group-id": ids["group"],
                "df-segment-id": ids["segment"],
            },
            "params": {"workspaceId": workspace_id},
        }
    query: dict[str, Any] = {
        "workspaceId": workspace_id,
        **{key: value for key, value in named.items() if isinstance(value, str)},
        "userIds": [ids["user"]],
    }
    if group == "analysis":
        query.update(startDate="2026-01-01T00:00:00Z", endDate="2026-01-02T00:00:00Z")
    if method in SAFE:
        return {"params": query}
    # A body each controller accepts as well-formed, so that what answers is the authoriser.
    body = {
        "workspaceId": workspace_id,
        **named,
        "name": "renamed by another tenant",
        "channel": "Email",
        "type": "OptOut" if group == "subscription-groups" else "Email",
        "status": "Running",
        "users": [{"id": ids["user"], "properties": {"email": "someone@example.com"}}],
        "userProperties": {"email": "someone@example.com"},
        "contents": {},
        "broadcastName": "forged",
        "segmentDefinition": {"entryNode": {"type": "Everyone", "id": "1"}, "nodes": []},
        "messageTemplateDefinition": {"type": "Sms", "body": "forged"},
        "userUpdates": [{"userId": ids["user"], "changes": {ids["group"]: False}}],
    }
    return {"params": query, "json": body}


def assert_isolated(response: httpx.Response, target: Planted, what: str) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:300])
    assert target.marker not in response.text, (what, response.status_code, response.text[:300])


# -- isolation over random forests -------------------------------------------------------------------

forests = st.lists(st.integers(min_value=0, max_value=2), min_size=1, max_size=2).filter(
    lambda shape: sum(shape) >= 1 and len(shape) + sum(shape) >= 2
)


# Every example sends about a thousand requests: a few examples, and no shrinking (a failure names the
# route and the drawn forest already).
@settings(
    max_examples=3,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(shape=forests, data=st.data())
def test_a_session_never_opens_another_workspace(
    client: TestClient, shape: list[int], data: st.DataObject
) -> None:
    run = uuid.uuid4().hex[:8]
    everyone: list[Planted] = []
    children: list[Planted] = []
    for index, count in enumerate(shape):
        parent: ParentAccount = make_parent(client, f"P{index}-{run}")
        everyone.append(plant(client, parent.id, parent.admin_key))
        for child in range(count):
            tenant = parent.put_child(f"C{child}", f"c{child}")
            children.append(plant(client, tenant.id, parent.admin_key))
    everyone += children
    # Sessions are for children (a parent is never a session's target); A is one of them.
    attacker = data.draw(st.sampled_from(children), label="attacker")
    targets = [planted for planted in everyone if planted.workspace_id != attacker.workspace_id]
    before = {target.workspace_id: snapshot(client, target) for target in targets}
    bearer = {"authorization": f"Bearer {session_token(client, attacker.admin_key, attacker.workspace_id)}"}

    for target in targets:
        for path in get_screens():
            url, query = screen_query(path, target.workspace_id, target)
            named_other = client.get(url, params=query, headers=bearer)
            assert named_other.status_code == 403, (path, named_other.status_code)
            assert_isolated(named_other, target, path)
            for workspace_id in (attacker.workspace_id, None):
                url, query = screen_query(path, workspace_id, target)
                response = client.get(url, params=query, headers=bearer)
                if query.get("id") is not None or "{id}" in path:
                    assert response.status_code in (403, 404), (path, response.status_code)
                assert_isolated(response, target, f"{path} with the other's ids")
        for method, path in api_calls():
            refused = client.request(
                method, path, **merge_headers(api_request(method, path, target.workspace_id, target), bearer)
            )
            assert refused.status_code in (401, 403), (method, path, refused.status_code, refused.text[:300])
            assert_isolated(refused, target, f"{method} {path}")
            own = client.request(
                method,
                path,
                **merge_headers(api_request(method, path, attacker.workspace_id, target), bearer),
            )
            assert_isolated(own, target, f"{method} {path} with the other's ids")

    for target in targets:
        after = snapshot(client, target)
        for listing, found in after.items():
            assert found == before[target.workspace_id][listing], (target.workspace_id, listing)


def merge_headers(arguments: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    return {**arguments, "headers": {**arguments.get("headers", {}), **headers}}


# -- clickjacking ------------------------------------------------------------------------------------


def test_embedded_responses_may_be_framed_only_by_the_sessions_origins(client: TestClient) -> None:
    parent = make_parent(client, "Framing parent")
    tenant = parent.put_child("Framed", "framed")
    target = plant(client, tenant.id, parent.admin_key)
    admin(
        client,
        parent.admin_key,
        "PUT",
        "/api-l/admin/embed-settings",
        parent.id,
        allowedOrigins=["https://app.parent.example", "https://b.parent.example"],
    )
    sessions = {
        # No origins of its own: the parent's list, inherited by the child.
        "frame-ancestors https://app.parent.example https://b.parent.example": session_token(
            client, parent.admin_key, tenant.id
        ),
        # Narrower than the workspace's.
        "frame-ancestors https://b.parent.example": session_token(
            client, parent.admin_key, tenant.id, allowedOrigins=["https://b.parent.example"]
        ),
    }
    for expected, token in sessions.items():
        bearer = {"authorization": f"Bearer {token}"}
        for path in get_screens():
            url, query = screen_query(path, tenant.id, target)
            if "id" not in query and "{id}" not in path:
                query = {"workspaceId": tenant.id}
            response = client.get(url, params=query, headers=bearer)
            assert response.headers["content-security-policy"] == expected, (path, response.status_code)
        # The API's answers once the session is read (a query refused before that has no session).
        answered = 0
        for method, path in api_calls():
            if method == "GET":
                response = client.get(path, params={"workspaceId": tenant.id}, headers=bearer)
                if response.status_code == 200:
                    answered += 1
                    assert response.headers["content-security-policy"] == expected, path
        assert answered >= 10


def test_console_pages_may_be_framed_only_by_feedgate_itself(client: TestClient) -> None:
    parent = make_parent(client, "Console")  # anonymous mode: the console opens the first workspace
    target = plant(client, parent.id, parent.admin_key)
    for route in screen_routes():
        if (
            not isinstance(route, Route)
            or not route.path.startswith(f"{CONSOLE}/")
            or "GET" not in (route.methods or ())
        ):
            continue
        url, query = screen_query(route.path.replace(CONSOLE, EMBED, 1), parent.id, target)
        response = client.get(url.replace(EMBED, CONSOLE, 1), params=query)
        assert response.status_code < 500, (route.path, response.status_code)
        assert "frame-ancestors 'self'" in response.headers["content-security-policy"], route.path


# -- CSRF --------------------------------------------------------------------------------------------


@pytest.fixture
def member(settings: Settings) -> Iterator[tuple[TestClient, str]]:
    """A signed-in member (multi-tenant mode) who is Admin of a workspace with planted resources."""
    app = create_app(dataclasses.replace(settings, auth_mode="multi-tenant"), run_worker=False)
    with TestClient(app, base_url="http://localhost:3000") as client:
        with app.state.sessions.begin() as session:
            workspace_id = create_workspace_with_key(session, "Team", WorkspaceType.ROOT).workspace_id
            person = WorkspaceMember(email="admin@team.example", email_verified=True)
            session.add(person)
            session.flush()
            session.add(
                WorkspaceMemberRole(workspace_id=workspace_id, workspace_member_id=person.id, role=Role.ADMIN)
            )
            member_id = person.id
        client.cookies.set(
            COOKIE_NAME, app.state.signer.sign(Purpose.MEMBER_SESSION, {"member_id": member_id})
        )
        yield client, workspace_id


CROSS_SITE = [
    {"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    {"origin": "https://sub.localhost", "sec-fetch-site": "same-site"},
    {"origin": "https://evil.example"},
    {"origin": "null"},
]


def test_a_cross_site_post_never_rides_the_members_cookie(member: tuple[TestClient, str]) -> None:
    client, workspace_id = member
    forms = sorted(
        route.path
        for route in screen_routes()
        if isinstance(route, Route)
        and route.path.startswith(f"{CONSOLE}/")
        and "POST" in (route.methods or ())
    )
    assert forms, "no console form routes"
    templates_before = client.get("/api/content/templates", params={"workspaceId": workspace_id}).json()
    for path in forms:
        for headers in CROSS_SITE:
            response = client.post(
                path,
                params={"workspaceId": workspace_id},
                data={"name": f"forged {uuid.uuid4().hex[:6]}", "channel": "Sms", "id": "x"},
                headers=headers,
                follow_redirects=False,
            )
            assert response.status_code == 403, (path, headers, response.status_code)
    assert (
        client.get("/api/content/templates", params={"workspaceId": workspace_id}).json() == templates_before
    )

    # The same form from feedgate's own page goes through: the refusal is the cross-site rule's.
    same_site = client.post(
        f"{CONSOLE}/templates/new",
        params={"workspaceId": workspace_id},
        data={"name": "From our own page", "channel": "Sms"},
        headers={"origin": "http://localhost:3000", "sec-fetch-site": "same-origin"},
        follow_redirects=False,
    )
    assert same_site.status_code in (200, 303), same_site.text
    names = [
        t["name"]
        for t in client.get("/api/content/templates", params={"workspaceId": workspace_id}).json()[
            "templates"
        ]
    ]
    assert "From our own page" in names
    assert not any(name.startswith("forged ") for name in names)
