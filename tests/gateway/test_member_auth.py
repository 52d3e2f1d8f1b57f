"""Members on `/api/*`: every route, every role. Viewer reads; Author edits resources;
WorkspaceManager also reads and edits settings, providers and keys; Admin also members. Nobody works
outside their current workspace, and cookie routes refuse cross-site writes."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from engine.storage.models import Role, Workspace, WorkspaceMember, WorkspaceMemberRole, WorkspaceType
from gateway.app import create_app
from gateway.member_cookie import COOKIE_NAME
from gateway.settings import Settings
from gateway.tokens import Purpose

ROLES = [Role.VIEWER, Role.AUTHOR, Role.WORKSPACE_MANAGER, Role.ADMIN]
RANK = {role: index for index, role in enumerate(ROLES)}
HEALTH = {"/api/", "/api/readyz"}
READING_POSTS = {"/api/users", "/api/users/", "/api/users/count", "/api/content/templates/render"}


def required_role(path: str, method: str) -> Role:
    """The policy, stated independently of the code that enforces it."""
    if path.startswith("/api/permissions"):
        return Role.ADMIN
    if path.startswith(("/api/settings", "/api/admin-keys")):
        return Role.WORKSPACE_MANAGER
    if method == "GET" or path in READING_POSTS:
        return Role.VIEWER
    return Role.AUTHOR


def member_api_routes(client: TestClient) -> list[tuple[str, str]]:
    routes = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, Route) or not route.path.startswith("/api/"):
            continue
        if route.path in HEALTH or route.path.startswith(("/api/admin/", "/api/public/", "/api/webhooks/")):
            continue
        routes += [(route.path, method) for method in sorted(route.methods or ()) if method != "HEAD"]
    return routes


@dataclasses.dataclass
class Team:
    client: TestClient
    workspace_id: str
    other_workspace_id: str
    cookies: dict[Role, str]
    outsider_cookie: str


@pytest.fixture
def team(settings: Settings) -> Iterator[Team]:
    app = create_app(dataclasses.replace(settings, auth_mode="multi-tenant"), run_worker=False)
    with TestClient(app) as client:
        signer = app.state.signer
        with app.state.sessions.begin() as session:
            workspace = Workspace(name="Team", type=WorkspaceType.ROOT)
            other = Workspace(name="Elsewhere", type=WorkspaceType.ROOT)
            session.add_all([workspace, other])
            session.flush()
            cookies = {}
            for role in ROLES:
                member = WorkspaceMember(email=f"{role.value.lower()}@team.example", email_verified=True)
                session.add(member)
                session.flush()
                session.add(
                    WorkspaceMemberRole(workspace_id=workspace.id, workspace_member_id=member.id, role=role)
                )
                cookies[role] = signer.sign(Purpose.MEMBER_SESSION, {"member_id": member.id})
            outsider = WorkspaceMember(email="admin@elsewhere.example", email_verified=True)
            session.add(outsider)
            session.flush()
            session.add(
                WorkspaceMemberRole(workspace_id=other.id, workspace_member_id=outsider.id, role=Role.ADMIN)
            )
            outsider_cookie = signer.sign(Purpose.MEMBER_SESSION, {"member_id": outsider.id})
            ids = (workspace.id, other.id)
        yield Team(client, ids[0], ids[1], cookies, outsider_cookie)


def call(team: Team, path: str, method: str, cookie: str | None, workspace_id: str | None = None) -> Any:
    team.client.cookies.clear()
    if cookie is not None:
        team.client.cookies.set(COOKIE_NAME, cookie)
    workspace = workspace_id or team.workspace_id
    if method == "GET":
        return team.client.get(path, params={"workspaceId": workspace})
    return team.client.request(
        method, path, params={"workspaceId": workspace}, json={"workspaceId": workspace}
    )


def test_every_api_route_enforces_the_role_matrix(team: Team) -> None:
    routes = member_api_routes(team.client)
    assert len(routes) > 90
    wrong = []
    for path, method in routes:
        needed = required_role(path, method)
        for role in ROLES:
            status = call(team, path, method, team.cookies[role]).status_code
            allowed = RANK[role] >= RANK[needed]
            if status >= 500 or allowed and status in (401, 403) or not allowed and status != 403:
                wrong.append((method, path, role.value, status))
    assert wrong == []


def test_every_api_route_needs_a_signed_in_member(team: Team) -> None:
    statuses = {call(team, path, method, None).status_code for path, method in member_api_routes(team.client)}

    assert statuses == {401}


def test_a_tampered_cookie_is_no_session(team: Team) -> None:
    forged = team.cookies[Role.VIEWER][:-2] + "xx"

    assert call(team, "/api/segments", "GET", forged).status_code == 401


def test_a_member_never_reaches_another_workspace(team: Team) -> None:
    mine = call(team, "/api/segments", "GET", team.outsider_cookie, team.other_workspace_id)
    theirs = call(team, "/api/segments", "GET", team.outsider_cookie, team.workspace_id)
    admin_elsewhere = call(team, "/api/segments", "GET", team.cookies[Role.ADMIN], team.other_workspace_id)

    assert mine.status_code == 200
    assert theirs.status_code == 403
    assert admin_elsewhere.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [{"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}, {"sec-fetch-site": "same-site"}],
)
def test_cross_site_writes_with_the_cookie_are_refused(team: Team, headers: dict[str, str]) -> None:
    team.client.cookies.set(COOKIE_NAME, team.cookies[Role.ADMIN])

    response = team.client.put(
        "/api/subscription-groups",
        json={"workspaceId": team.workspace_id, "name": "Newsletter", "type": "OptIn", "channel": "Email"},
        headers=headers,
    )

    assert response.status_code == 403
    assert response.json()["message"] == "Cross-site request refused"


def test_same_origin_writes_with_the_cookie_go_through(team: Team) -> None:
    team.client.cookies.set(COOKIE_NAME, team.cookies[Role.AUTHOR])

    response = team.client.put(
        "/api/subscription-groups",
        json={"workspaceId": team.workspace_id, "name": "Newsletter", "type": "OptIn", "channel": "Email"},
        headers={"origin": "http://testserver", "sec-fetch-site": "same-origin"},
    )

    assert response.status_code == 200, response.text


def test_anonymous_mode_opens_the_first_workspace_as_admin(settings: Settings) -> None:
    with TestClient(create_app(settings, run_worker=False)) as client:
        with client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
            first = Workspace(name="First", type=WorkspaceType.ROOT)
            session.add(first)
        keys = client.get("/api/admin-keys")
        created = client.post("/api/admin-keys", json={"workspaceId": first.id, "name": "ci"})

    assert keys.status_code == 200
    assert created.status_code == 200
    assert len(created.json()["apiKey"]) == 64


def test_single_tenant_mode_needs_the_password_session(settings: Settings) -> None:
    single = dataclasses.replace(settings, auth_mode="single-tenant", password="hunter2")
    app = create_app(single, run_worker=False)
    with TestClient(app) as client:
        with app.state.sessions.begin() as session:
            only = Workspace(name="Only", type=WorkspaceType.ROOT)
            session.add(only)
        params = {"workspaceId": only.id}
        anonymous = client.get("/api/segments", params=params)
        client.cookies.set(
            COOKIE_NAME, app.state.signer.sign(Purpose.MEMBER_SESSION, {"single_tenant": True})
        )
        signed_in = client.get("/api/segments", params=params)

    assert anonymous.status_code == 401
    assert signed_in.status_code == 200
