"""The member console's settings pages (`/dashboard/settings/*`): every section lists the workspace's
real data and its writes land in the engine (read back through the JSON API), credentials are shown
once, secrets never, mistakes name their field and save nothing, and each write needs the role the
`/api/*` policy asks for. The pages exist in the console only, never embedded."""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from engine.bootstrap import bootstrap_workspace
from engine.embed_settings import set_allowed_origins
from engine.storage.models import Role, Workspace, WorkspaceMember, WorkspaceMemberRole, WorkspaceType
from gateway.app import create_app
from gateway.member_cookie import COOKIE_NAME
from gateway.settings import Settings
from gateway.tokens import Purpose
from tests.gateway.api.conftest import ParentAccount, make_parent

SETTINGS = "/dashboard/settings"
HOSTILE = "<img src=x onerror=alert(1)>"
FORM = {"content-type": "application/x-www-form-urlencoded", "hx-request": "true", "hx-boosted": "true"}
SECTIONS = [
    "providers",
    "write-keys",
    "admin-keys",
    "members",
    "subscription-groups",
    "component-configurations",
    "embed-origins",
]


# -- helpers -----------------------------------------------------------------------------------------


def console_app(settings: Settings) -> Any:
    return create_app(settings, run_worker=False)


@pytest.fixture
def console(settings: Settings) -> Iterator[TestClient]:
    """Anonymous mode: the first workspace, as Admin, with no login."""
    with TestClient(console_app(settings)) as client:
        yield client


@pytest.fixture
def owner(console: TestClient) -> ParentAccount:
    """The console's workspace (the first one created) and an admin API key of it."""
    return make_parent(console, "Parent SaaS")


def post(client: TestClient, path: str, **fields: str) -> httpx.Response:
    """A boosted form post, as htmx sends it from the page."""
    return client.post(f"{SETTINGS}{path}", data=fields, headers=FORM)


def api(client: TestClient, workspace_id: str, path: str) -> Any:
    """A member `/api/*` read of the workspace (anonymous mode: Admin, no login)."""
    response = client.get(path, params={"workspaceId": workspace_id})
    assert response.status_code == 200, response.text
    return response.json()


def admin_get(client: TestClient, owner: ParentAccount, path: str) -> Any:
    response = client.get(
        path, params={"workspaceId": owner.id}, headers={"authorization": f"Bearer {owner.admin_key}"}
    )
    assert response.status_code == 200, response.text
    return response.json()


def data_testids(html: str) -> list[str]:
    return re.findall(r'data-testid="([^"]+)"', html)


def error_of(response: httpx.Response) -> tuple[str, str]:
    """The page's error message and the field it names."""
    found = re.search(r'data-testid="settings-error"[^>]*?(?: data-field="([^"]*)")?>([^<]*)<', response.text)
    assert found is not None, response.text
    return unescape(found.group(2)), found.group(1) or ""


def revealed(response: httpx.Response) -> str:
    found = re.search(r'data-testid="revealed-secret">([^<]*)<', response.text)
    assert found is not None, response.text
    return unescape(found.group(1))


# -- navigation and shells ---------------------------------------------------------------------------


def test_the_index_and_every_section_open_with_the_settings_nav(
    console: TestClient, owner: ParentAccount
) -> None:
    index = console.get(SETTINGS)
    assert index.status_code == 200
    assert [f"settings-nav-{slug}" for slug in SECTIONS] == [
        name
        for name in data_testids(index.text)
        if name.startswith("settings-nav-") and name != "settings-nav-index"
    ]
    for slug in SECTIONS:
        page = console.get(f"{SETTINGS}/{slug}", params={"workspaceId": owner.id})
        assert page.status_code == 200, (slug, page.text)
        assert 'aria-current="page"' in page.text and f'data-testid="settings-nav-{slug}"' in page.text
        assert page.headers["cache-control"] == "no-store"


def test_the_settings_are_not_mounted_embedded(console: TestClient, owner: ParentAccount) -> None:
    child = owner.put_child("Tenant A", "tenant-a")
    minted = console.post(
        "/api-l/sessions",
        json={"workspaceId": child.id},
        headers={"authorization": f"Bearer {owner.admin_key}"},
    )
    assert minted.status_code == 200, minted.text
    token = minted.json()["token"]
    for path in ["", *(f"/{slug}" for slug in SECTIONS)]:
        opened = console.get(
            f"/dashboard-l/embedded/settings{path}", params={"token": token, "workspaceId": child.id}
        )
        assert opened.status_code == 404, path
    created = console.post(
        "/dashboard-l/embedded/settings/write-keys/create",
        data={"writeKeyName": "x"},
        headers={**FORM, "authorization": f"Bearer {token}"},
    )
    assert created.status_code == 404


def test_another_workspace_id_is_refused(console: TestClient, owner: ParentAccount) -> None:
    other = make_parent(console, "Someone else")
    response = console.get(f"{SETTINGS}/write-keys", params={"workspaceId": other.id})
    assert response.status_code == 403
    assert "current workspace" in response.text


def test_a_cross_site_post_is_refused_and_saves_nothing(console: TestClient, owner: ParentAccount) -> None:
    response = console.post(
        f"{SETTINGS}/write-keys/create",
        data={"writeKeyName": "forged"},
        headers={**FORM, "sec-fetch-site": "cross-site"},
    )
    assert response.status_code == 403
    names = [key["writeKeyName"] for key in api(console, owner.id, "/api/settings/write-keys")]
    assert "forged" not in names


# -- providers ---------------------------------------------------------------------------------------


def test_a_provider_is_configured_without_its_secret_ever_rendered_back(
    console: TestClient, owner: ParentAccount
) -> None:
    password = "smtp-password-4711-secret"
    form = console.get(f"{SETTINGS}/providers", params={"channel": "Email", "type": "Smtp"})
    assert 'data-testid="provider-configure-form"' in form.text
    assert 'data-testid="providers-empty"' in form.text
    saved = post(
        console,
        "/providers/save",
        channel="Email",
        type="Smtp",
        host="smtp.example.com",
        port="2525",
        username="mailer",
        password=password,
        setDefault="on",
    )
    assert saved.status_code == 200, saved.text
    assert password not in saved.text
    assert saved.headers["hx-replace-url"].startswith(f"{SETTINGS}/providers?workspaceId=")

    listed = {p["type"]: p for p in api(console, owner.id, "/api/settings/email-providers")["emailProviders"]}
    assert listed["Smtp"]["isDefault"] is True
    assert listed["Smtp"]["config"]["host"] == "smtp.example.com"
    assert listed["Smtp"]["config"]["password"] == "••••" + password[-4:]

    # The edit form shows the plain settings and an empty secret; saving it empty keeps the secret.
    edit = console.get(f"{SETTINGS}/providers", params={"channel": "Email", "type": "Smtp"})
    assert password not in edit.text and 'value="smtp.example.com"' in edit.text
    assert re.search(r'name="password" value=""', edit.text)
    resaved = post(
        console, "/providers/save", channel="Email", type="Smtp", host="smtp2.example.com", password=""
    )
    assert resaved.status_code == 200
    again = {p["type"]: p for p in api(console, owner.id, "/api/settings/email-providers")["emailProviders"]}
    assert again["Smtp"]["config"]["host"] == "smtp2.example.com"
    assert again["Smtp"]["config"]["password"] == "••••" + password[-4:]
    for page in (console.get(f"{SETTINGS}/providers"), resaved):
        assert password not in page.text


def test_the_default_email_and_sms_providers_are_chosen(console: TestClient, owner: ParentAccount) -> None:
    assert post(console, "/providers/save", channel="Sms", type="Twilio", accountSid="AC1").status_code == 200
    assert (
        post(
            console, "/providers/save", channel="Email", type="Resend", apiKey="re_0123456789abc"
        ).status_code
        == 200
    )

    email = post(
        console, "/providers/default", channel="Email", type="Resend", fromAddress="team@example.com"
    )
    sms = post(console, "/providers/default", channel="Sms", type="Twilio")
    assert email.status_code == sms.status_code == 200
    assert 'value="team@example.com"' in sms.text

    emails = api(console, owner.id, "/api/settings/email-providers")["emailProviders"]
    texts = api(console, owner.id, "/api/settings/sms-providers")["smsProviders"]
    assert [p["type"] for p in emails if p["isDefault"]] == ["Resend"]
    assert [p["type"] for p in texts if p["isDefault"]] == ["Twilio"]


def test_a_provider_mistake_names_the_field(console: TestClient, owner: ParentAccount) -> None:
    unknown = post(console, "/providers/save", channel="Email", type="Carrier pigeon")
    assert unknown.status_code == 400 and error_of(unknown)[1] == "body/type"
    not_configured = post(console, "/providers/default", channel="Sms", type="SignalWire")
    assert not_configured.status_code == 400 and error_of(not_configured)[1] == "body/type"
    texts = api(console, owner.id, "/api/settings/sms-providers")["smsProviders"]
    assert [p["type"] for p in texts if p["isDefault"]] == ["Test"]


# -- keys --------------------------------------------------------------------------------------------


def test_a_write_key_is_shown_once_and_deleted(console: TestClient, owner: ParentAccount) -> None:
    page = console.get(f"{SETTINGS}/write-keys")
    assert 'data-name="default-write-key"' in page.text

    created = post(console, "/write-keys/create", writeKeyName="mobile app")
    assert created.status_code == 200, created.text
    header = revealed(created)
    listed = {key["writeKeyName"]: key for key in api(console, owner.id, "/api/settings/write-keys")}
    key = listed["mobile app"]
    assert (
        header == "Basic " + base64.b64encode(f"{key['secretId']}:{key['writeKeyValue']}".encode()).decode()
    )

    reloaded = console.get(f"{SETTINGS}/write-keys")
    assert 'data-name="mobile app"' in reloaded.text
    assert key["writeKeyValue"] not in reloaded.text and "revealed-secret" not in reloaded.text

    again = post(console, "/write-keys/create", writeKeyName="mobile app")
    assert again.status_code == 409 and key["writeKeyValue"] not in again.text

    for name in ("mobile app", "default-write-key"):
        assert post(console, "/write-keys/delete", writeKeyName=name).status_code == 200
    assert api(console, owner.id, "/api/settings/write-keys") == []
    assert 'data-testid="write-keys-empty"' in console.get(f"{SETTINGS}/write-keys").text


def test_an_admin_api_key_is_shown_once_works_and_is_deleted(
    console: TestClient, owner: ParentAccount
) -> None:
    created = post(console, "/admin-keys/create", name="backend")
    assert created.status_code == 200, created.text
    api_key = revealed(created)
    headers = {"authorization": f"Bearer {api_key}"}
    assert (
        console.get(
            "/api-l/admin/embed-settings", params={"workspaceId": owner.id}, headers=headers
        ).status_code
        == 200
    )

    listed = {key["name"]: key for key in api(console, owner.id, "/api/admin-keys")}
    reloaded = console.get(f"{SETTINGS}/admin-keys")
    assert f'data-key-id="{listed["backend"]["id"]}"' in reloaded.text and api_key not in reloaded.text

    duplicate = post(console, "/admin-keys/create", name="backend")
    assert duplicate.status_code == 409

    assert post(console, "/admin-keys/delete", id=listed["backend"]["id"]).status_code == 200
    assert "backend" not in {key["name"] for key in api(console, owner.id, "/api/admin-keys")}
    assert (
        console.get(
            "/api-l/admin/embed-settings", params={"workspaceId": owner.id}, headers=headers
        ).status_code
        == 401
    )
    assert post(console, "/admin-keys/delete", id=listed["backend"]["id"]).status_code == 404


def test_a_created_key_is_audited_without_its_value(console: TestClient, owner: ParentAccount) -> None:
    api_key = revealed(post(console, "/admin-keys/create", name="audited"))
    log = admin_get(console, owner, "/api-l/admin/audit-log")["entries"]
    actions = [entry["action"] for entry in log]
    assert "console:settings_admin_keys_create" in actions
    assert api_key not in str(log)


# -- members -----------------------------------------------------------------------------------------


def test_members_are_given_changed_and_removed_roles(console: TestClient, owner: ParentAccount) -> None:
    assert 'data-testid="members-empty"' in console.get(f"{SETTINGS}/members").text

    added = post(console, "/members/role", email="Ada@Example.com", role="Author")
    assert added.status_code == 200, added.text
    assert 'data-email="ada@example.com" data-role="Author"' in added.text
    assert post(console, "/members/role", email="ada@example.com", role="WorkspaceManager").status_code == 200
    roles = api(console, owner.id, "/api/permissions")["memberRoles"]
    assert [(e["member"]["email"], e["roles"][0]["role"]) for e in roles] == [
        ("ada@example.com", "WorkspaceManager")
    ]

    assert post(console, "/members/remove", email="ada@example.com").status_code == 200
    assert api(console, owner.id, "/api/permissions")["memberRoles"] == []


def test_a_member_mistake_names_the_field_and_saves_nothing(
    console: TestClient, owner: ParentAccount
) -> None:
    bad_email = post(console, "/members/role", email="not an address", role="Viewer")
    assert bad_email.status_code == 400 and error_of(bad_email)[1] == "body/email"
    assert 'value="not an address"' in bad_email.text
    bad_role = post(console, "/members/role", email="bob@example.com", role="Owner")
    assert bad_role.status_code == 400 and error_of(bad_role)[1] == "body/role"
    assert post(console, "/members/remove", email="nobody@example.com").status_code == 404
    assert api(console, owner.id, "/api/permissions")["memberRoles"] == []


# -- subscription groups -----------------------------------------------------------------------------


def test_subscription_groups_are_created_edited_and_deleted(
    console: TestClient, owner: ParentAccount
) -> None:
    page = console.get(f"{SETTINGS}/subscription-groups")
    assert "Parent SaaS - Email" in page.text

    created = post(console, "/subscription-groups/save", name=HOSTILE, channel="Sms", type="OptIn")
    assert created.status_code == 200, created.text
    assert HOSTILE not in created.text and "&lt;img src=x onerror=alert(1)&gt;" in created.text
    groups = {g["name"]: g for g in api(console, owner.id, "/api/subscription-groups")}
    assert (groups[HOSTILE]["channel"], groups[HOSTILE]["type"]) == ("Sms", "OptIn")

    group_id = groups[HOSTILE]["id"]
    edit = console.get(f"{SETTINGS}/subscription-groups", params={"edit": group_id})
    assert f'name="id" value="{group_id}"' in edit.text and HOSTILE not in edit.text
    renamed = post(
        console, "/subscription-groups/save", id=group_id, name="Texts", channel="Sms", type="OptOut"
    )
    assert renamed.status_code == 200
    after = {g["id"]: g for g in api(console, owner.id, "/api/subscription-groups")}
    assert (after[group_id]["name"], after[group_id]["type"]) == ("Texts", "OptOut")

    for group in after.values():
        assert post(console, "/subscription-groups/delete", id=group["id"]).status_code == 200
    assert api(console, owner.id, "/api/subscription-groups") == []
    assert 'data-testid="subscription-groups-empty"' in console.get(f"{SETTINGS}/subscription-groups").text


def test_a_subscription_group_mistake_names_the_field(console: TestClient, owner: ParentAccount) -> None:
    before = api(console, owner.id, "/api/subscription-groups")
    wrong = post(console, "/subscription-groups/save", name="Pigeons", channel="Pigeon", type="OptIn")
    assert wrong.status_code == 400 and error_of(wrong)[1] == "body/channel"
    taken = post(
        console, "/subscription-groups/save", name="Parent SaaS - Email", channel="Email", type="OptIn"
    )
    assert taken.status_code == 400 and error_of(taken)[1] == "body/name"
    assert api(console, owner.id, "/api/subscription-groups") == before


# -- component configurations ------------------------------------------------------------------------


def test_component_configurations_are_saved_from_json_and_deleted(
    console: TestClient, owner: ParentAccount
) -> None:
    assert (
        'data-testid="component-configurations-empty"'
        in console.get(f"{SETTINGS}/component-configurations").text
    )
    definition = '{"type": "Broadcast", "stepsAllowList": ["RECIPIENTS", "CONTENT"]}'
    saved = post(console, "/component-configurations/save", name="Broadcast", definition=definition)
    assert saved.status_code == 200, saved.text
    stored = admin_get(console, owner, "/api/admin/component-configurations")["componentConfigurations"]
    assert [c["definition"] for c in stored] == [
        {"type": "Broadcast", "stepsAllowList": ["RECIPIENTS", "CONTENT"]}
    ]

    configuration_id = stored[0]["id"]
    duplicate = post(console, "/component-configurations/save", name="Broadcast", definition=definition)
    assert duplicate.status_code == 400 and error_of(duplicate)[1] == "body/name"
    edit = console.get(f"{SETTINGS}/component-configurations", params={"edit": configuration_id})
    assert "&#34;RECIPIENTS&#34;" in edit.text or "&quot;RECIPIENTS&quot;" in edit.text
    updated = post(
        console,
        "/component-configurations/save",
        id=configuration_id,
        name="Broadcast",
        definition='{"type": "Broadcast", "hideDrawer": true}',
    )
    assert updated.status_code == 200
    stored = admin_get(console, owner, "/api/admin/component-configurations")["componentConfigurations"]
    assert [c["definition"] for c in stored] == [{"type": "Broadcast", "hideDrawer": True}]

    assert post(console, "/component-configurations/delete", id=configuration_id).status_code == 200
    assert admin_get(console, owner, "/api/admin/component-configurations")["componentConfigurations"] == []


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        (
            '{"type": "Broadcast", "stepsAllowList": ["RECIPIENTS", "NOPE"]}',
            "body/definition/stepsAllowList/1",
        ),
        ('{"type": "Sidebar"}', "body/definition/type"),
        ('{"type": "Broadcast",', "body/definition"),
    ],
)
def test_an_invalid_component_configuration_names_the_field_and_saves_nothing(
    console: TestClient, owner: ParentAccount, definition: str, field: str
) -> None:
    response = post(console, "/component-configurations/save", name="Broadcast", definition=definition)
    assert response.status_code == 400
    message, named = error_of(response)
    assert named == field and field in message
    # The posted text is kept in the form to be fixed.
    textarea = re.search(r'data-testid="component-configuration-definition"[^>]*>\n?([^<]*)<', response.text)
    assert textarea is not None and unescape(textarea.group(1)) == definition
    assert admin_get(console, owner, "/api/admin/component-configurations")["componentConfigurations"] == []


# -- embed origins -----------------------------------------------------------------------------------


def test_allowed_origins_are_normalised_and_saved(console: TestClient, owner: ParentAccount) -> None:
    assert 'data-testid="embed-origins-empty"' in console.get(f"{SETTINGS}/embed-origins").text
    saved = post(
        console, "/embed-origins/save", allowedOrigins="https://App.Example.com/\n\nhttp://localhost:3000\n"
    )
    assert saved.status_code == 200, saved.text
    expected = ["https://app.example.com", "http://localhost:3000"]
    assert admin_get(console, owner, "/api-l/admin/embed-settings")["allowedOrigins"] == expected
    assert (
        re.findall(r'data-testid="embed-origin">([^<]*)<', console.get(f"{SETTINGS}/embed-origins").text)
        == expected
    )

    cleared = post(console, "/embed-origins/save", allowedOrigins="")
    assert cleared.status_code == 200
    assert admin_get(console, owner, "/api-l/admin/embed-settings")["allowedOrigins"] == []


def test_an_invalid_origin_names_the_line_and_saves_nothing(
    console: TestClient, owner: ParentAccount
) -> None:
    assert post(console, "/embed-origins/save", allowedOrigins="https://kept.example.com").status_code == 200
    response = post(
        console, "/embed-origins/save", allowedOrigins="https://ok.example.com\nhttps://x.example.com/path"
    )
    assert response.status_code == 400
    assert error_of(response)[1] == "body/allowedOrigins/1"
    assert "https://x.example.com/path" in response.text
    assert admin_get(console, owner, "/api-l/admin/embed-settings")["allowedOrigins"] == [
        "https://kept.example.com"
    ]


# -- roles (multi-tenant members) --------------------------------------------------------------------

ROLES = [Role.VIEWER, Role.AUTHOR, Role.WORKSPACE_MANAGER, Role.ADMIN]
RANK = {role: index for index, role in enumerate(ROLES)}
# The `/api/*` policy, stated independently of the code: (role to read, role to write).
POLICY = {
    "providers": (Role.WORKSPACE_MANAGER, Role.WORKSPACE_MANAGER),
    "write-keys": (Role.WORKSPACE_MANAGER, Role.WORKSPACE_MANAGER),
    "admin-keys": (Role.WORKSPACE_MANAGER, Role.WORKSPACE_MANAGER),
    "members": (Role.ADMIN, Role.ADMIN),
    "subscription-groups": (Role.VIEWER, Role.AUTHOR),
    "component-configurations": (Role.WORKSPACE_MANAGER, Role.WORKSPACE_MANAGER),
    "embed-origins": (Role.WORKSPACE_MANAGER, Role.WORKSPACE_MANAGER),
}


def harmless_write(slug: str, role: Role) -> tuple[str, dict[str, str]]:
    """A write of `slug` that succeeds for whoever may write it (names differ per role)."""
    probe = f"probe-{role.value.lower()}"
    return {
        "providers": ("/providers/default", {"channel": "Email", "type": "Test"}),
        "write-keys": ("/write-keys/create", {"writeKeyName": probe}),
        "admin-keys": ("/admin-keys/create", {"name": probe}),
        "members": ("/members/role", {"email": f"{probe}@team.example", "role": "Viewer"}),
        "subscription-groups": (
            "/subscription-groups/save",
            {"name": probe, "channel": "Email", "type": "OptIn"},
        ),
        "component-configurations": (
            "/component-configurations/save",
            {"name": probe, "definition": '{"type": "Broadcast"}'},
        ),
        "embed-origins": ("/embed-origins/save", {"allowedOrigins": "https://probe.example.com"}),
    }[slug]


@dataclasses.dataclass
class Team:
    client: TestClient
    workspace_id: str
    cookies: dict[Role, str]

    def as_(self, role: Role) -> TestClient:
        self.client.cookies.clear()
        self.client.cookies.set(COOKIE_NAME, self.cookies[role])
        return self.client


@pytest.fixture
def team(settings: Settings) -> Iterator[Team]:
    """A child workspace with one member per role; its parent allows one origin to frame it."""
    app = console_app(dataclasses.replace(settings, auth_mode="multi-tenant"))
    with TestClient(app) as client:
        workspace_id, cookies = _seed_team(app)
        yield Team(client, workspace_id, cookies)


def _seed_team(app: Any) -> tuple[str, dict[Role, str]]:
    with app.state.sessions.begin() as session:
        parent = Workspace(name="Team parent", type=WorkspaceType.PARENT)
        session.add(parent)
        session.flush()
        workspace = Workspace(name="Team", type=WorkspaceType.CHILD, parent_workspace_id=parent.id)
        session.add(workspace)
        session.flush()
        bootstrap_workspace(session, workspace)
        set_allowed_origins(session, parent.id, ["https://parent.example.com"])
        cookies = {}
        for role in ROLES:
            member = WorkspaceMember(email=f"{role.value.lower()}@team.example", email_verified=True)
            session.add(member)
            session.flush()
            session.add(
                WorkspaceMemberRole(workspace_id=workspace.id, workspace_member_id=member.id, role=role)
            )
            cookies[role] = app.state.signer.sign(Purpose.MEMBER_SESSION, {"member_id": member.id})
        return workspace.id, cookies


def test_every_section_enforces_the_role_policy(team: Team) -> None:
    wrong = []
    for slug, (read_role, write_role) in POLICY.items():
        for role in ROLES:
            path, fields = harmless_write(slug, role)
            client = team.as_(role)
            read = client.get(f"{SETTINGS}/{slug}").status_code
            write = client.post(f"{SETTINGS}{path}", data=fields, headers=FORM)
            expected_read = 200 if RANK[role] >= RANK[read_role] else 403
            expected_write = 200 if RANK[role] >= RANK[write_role] else 403
            if (read, write.status_code) != (expected_read, expected_write):
                wrong.append((slug, role.value, read, write.status_code))
            if write.status_code == 403:
                assert "role or higher" in error_of(write)[0]
    assert wrong == []


def test_a_viewer_write_saves_nothing_and_sees_no_write_controls(team: Team) -> None:
    viewer = team.as_(Role.VIEWER)
    page = viewer.get(f"{SETTINGS}/subscription-groups")
    assert page.status_code == 200 and 'data-testid="subscription-group-form"' not in page.text
    refused = viewer.post(
        f"{SETTINGS}/subscription-groups/save",
        data=harmless_write("subscription-groups", Role.VIEWER)[1],
        headers=FORM,
    )
    assert refused.status_code == 403
    assert "probe-viewer" not in {
        g["name"] for g in api(viewer, team.workspace_id, "/api/subscription-groups")
    }
    nav = data_testids(viewer.get(SETTINGS).text)
    assert "settings-nav-subscription-groups" in nav and "settings-nav-write-keys" not in nav


def test_the_last_admin_cannot_be_demoted_or_removed(team: Team) -> None:
    admin = team.as_(Role.ADMIN)
    for path, fields in (
        ("/members/role", {"email": "admin@team.example", "role": "Viewer"}),
        ("/members/remove", {"email": "admin@team.example"}),
    ):
        response = admin.post(f"{SETTINGS}{path}", data=fields, headers=FORM)
        assert response.status_code == 409 and "last Admin" in error_of(response)[0]
    assert (
        admin.post(
            f"{SETTINGS}/members/role", data={"email": "author@team.example", "role": "Admin"}, headers=FORM
        ).status_code
        == 200
    )
    assert (
        admin.post(
            f"{SETTINGS}/members/role", data={"email": "admin@team.example", "role": "Viewer"}, headers=FORM
        ).status_code
        == 200
    )


def test_a_child_without_origins_shows_its_parents(team: Team) -> None:
    page = team.as_(Role.ADMIN).get(f"{SETTINGS}/embed-origins")
    assert page.status_code == 200
    assert 'data-testid="embed-origins-inherited"' in page.text and "https://parent.example.com" in page.text
    assert "Team parent" in page.text


def test_signing_in_is_asked_for(team: Team) -> None:
    team.client.cookies.clear()
    page = team.client.get(f"{SETTINGS}/write-keys", follow_redirects=False)
    assert page.status_code == 302
    assert page.headers["location"].startswith(
        "/dashboard/login?redirectTo=%2Fdashboard%2Fsettings%2Fwrite-keys"
    )
    write = team.client.post(f"{SETTINGS}/write-keys/create", data={"writeKeyName": "x"}, headers=FORM)
    assert write.status_code == 401
