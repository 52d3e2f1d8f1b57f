"""Dashboard sign-in (§1.4, §1.5): OpenID login through a real provider (npm oidc-provider, PKCE
required on its side) with the app on `localhost` and the provider on `127.0.0.1`, sign-out at the
provider, the single-tenant password, workspace switching and the `/api/permissions` member-role API.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx2 as httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.testclient import TestClient

from engine import members
from engine.storage.models import Role, WorkspaceMember, WorkspaceMemberAccount, WorkspaceType
from engine.workspaces import create_workspace, upsert_child_workspace
from gateway.app import create_app
from gateway.member_cookie import COOKIE_NAME
from gateway.oidc import plan_end_session
from gateway.settings import OpenIdSettings, Settings
from gateway.tokens import Purpose
from tests.support.net import ThreadedServer, free_port
from tests.support.oidc_provider import (
    OpenIdProvider,
    confirm_sign_out_at_provider,
    read_forms,
    running_openid_provider,
    sign_in_at_provider,
)

CALLBACK = "/dashboard/oauth2/callback"
SIGNOUT_COMPLETE = "/dashboard/signout/complete"
TESTSERVER = "http://testserver"


@dataclass(frozen=True)
class Site:
    """The app on http://localhost:<port> in multi-tenant mode, signing in at `idp`."""

    url: str
    idp: OpenIdProvider
    app: Starlette

    @property
    def sessions(self) -> sessionmaker[Session]:
        factory: sessionmaker[Session] = self.app.state.sessions
        return factory


@dataclass(frozen=True)
class ProviderAndPort:
    idp: OpenIdProvider
    app_port: int


@pytest.fixture(scope="module")
def provider() -> Iterator[ProviderAndPort]:
    """One provider for the module; it knows the app's callback and sign-out return on `app_port`."""
    app_port = free_port()
    app_url = f"http://localhost:{app_port}"
    with running_openid_provider(
        free_port(),
        redirect_uris=[app_url + CALLBACK],
        post_logout_redirect_uris=[app_url + SIGNOUT_COMPLETE],
    ) as idp:
        yield ProviderAndPort(idp, app_port)


def multi_tenant(settings: Settings, idp: OpenIdProvider, dashboard_url: str, **open_id: str) -> Settings:
    return replace(
        settings,
        auth_mode="multi-tenant",
        dashboard_url=dashboard_url,
        open_id=OpenIdSettings(
            client_id=idp.client_id, client_secret=idp.client_secret, issuer=idp.issuer, **open_id
        ),
    )


@pytest.fixture
def site(settings: Settings, provider: ProviderAndPort) -> Iterator[Site]:
    url = f"http://localhost:{provider.app_port}"
    app = create_app(multi_tenant(settings, provider.idp, url), run_worker=False)
    server = ThreadedServer(app, host="localhost", port=provider.app_port).start()
    try:
        yield Site(url, provider.idp, app)
    finally:
        server.stop()


@pytest.fixture
def browser() -> Iterator[httpx.Client]:
    with httpx.Client(follow_redirects=True, timeout=15) as client:
        yield client


def give_role(
    sessions: sessionmaker[Session], email: str, role: Role = Role.ADMIN, name: str = "Acme"
) -> str:
    with sessions.begin() as session:
        workspace = create_workspace(session, name)
        members.create_member_role(session, workspace.id, email, role)
        return workspace.id


class Page(HTMLParser):
    """Text of the elements with an id, and the links of the page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.attributes: dict[str, dict[str, str | None]] = {}
        self.links: dict[str, str] = {}
        self._ids: list[str | None] = []
        self._href: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        element_id = attributes.get("id")
        if element_id:
            self.attributes[element_id] = attributes
            self.text.setdefault(element_id, "")
        if tag == "a":
            self._href = attributes.get("href")
        if tag not in ("input", "meta", "br"):
            self._ids.append(element_id)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._href = None
        if self._ids and tag not in ("input", "meta", "br"):
            self._ids.pop()

    def handle_data(self, data: str) -> None:
        for element_id in self._ids:
            if element_id:
                self.text[element_id] += data
        if self._href is not None and data.strip():
            self.links[data.strip()] = self._href


def signed_out(client: httpx.Client | TestClient, base: str) -> bool:
    """The dashboard sends this browser to the sign-in."""
    response = client.get(f"{base}/dashboard", follow_redirects=False)
    return response.status_code == 302 and urlsplit(response.headers["location"]).path == "/dashboard/login"


def login_redirect(browser: httpx.Client, site: Site) -> dict[str, str]:
    """Start a login and return the parameters of the authorize request it sends the browser to."""
    response = browser.get(f"{site.url}/dashboard/login", follow_redirects=False)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == site.idp.issuer
    return {key: values[0] for key, values in parse_qs(location.query).items()}


class Stop(Exception):
    def __init__(self, url: str) -> None:
        self.url = url


def callback_url_for(site: Site, login: str, *, redirect_to: str | None = None) -> tuple[httpx.Client, str]:
    """Sign in at the provider in a fresh browser and return it with the callback URL the provider
    sends it to, without following it."""

    def stop_at_callback(request: httpx.Request) -> None:
        if str(request.url).startswith(site.url + CALLBACK):
            raise Stop(str(request.url))

    client = httpx.Client(follow_redirects=True, timeout=15, event_hooks={"request": [stop_at_callback]})
    try:
        params = {"redirectTo": redirect_to} if redirect_to is not None else {}
        sign_in_at_provider(client, client.get(f"{site.url}/dashboard/login", params=params), login)
    except Stop as stop:
        client.event_hooks = {"request": [], "response": []}
        return client, stop.url
    client.close()
    raise AssertionError("the provider never redirected to the callback")


# --- OpenID login through the real provider -----------------------------------------------------------


def test_a_login_through_the_provider_lands_on_the_dashboard_with_the_members_email(
    site: Site, browser: httpx.Client
) -> None:
    workspace_id = give_role(site.sessions, "alice@example.test")

    # An unauthenticated visit goes to the provider and, after signing in, back to the dashboard.
    response = sign_in_at_provider(browser, browser.get(f"{site.url}/dashboard"), "alice")

    assert response.status_code == 200, response.text
    assert str(response.url) == f"{site.url}/dashboard"
    page = Page(response.text)
    assert page.text["member-email"] == "alice@example.test"
    assert page.text["current-workspace"] == "Acme"
    assert page.attributes["current-workspace"]["data-workspace-id"] == workspace_id
    with site.sessions() as session:
        member = session.scalars(select(WorkspaceMember)).one()
        # The ID token carries no email here (an access token was issued), so userinfo filled it in.
        assert (member.email, member.email_verified, member.name, member.nickname) == (
            "alice@example.test",
            True,
            "User alice",
            "alice",
        )
        account = session.scalars(select(WorkspaceMemberAccount)).one()
        assert (account.provider, account.provider_account_id) == ("oidc", "alice")


def test_the_authorize_request_carries_pkce_s256_a_state_and_a_nonce(
    site: Site, browser: httpx.Client
) -> None:
    first = login_redirect(browser, site)
    second = login_redirect(browser, site)

    assert first["response_type"] == "code"
    assert first["client_id"] == site.idp.client_id
    assert first["redirect_uri"] == site.url + CALLBACK
    assert set(first["scope"].split()) == {"openid", "email", "profile"}
    assert first["code_challenge_method"] == "S256"
    assert len(first["code_challenge"]) == 43  # base64url of a SHA-256 digest
    for key in ("state", "nonce", "code_challenge"):
        assert first[key] and first[key] != second[key], key


def test_the_provider_refuses_an_authorize_request_without_pkce_and_nobody_is_signed_in(
    site: Site, browser: httpx.Client
) -> None:
    params = login_redirect(browser, site)
    del params["code_challenge"], params["code_challenge_method"]
    stripped = urlunsplit(urlsplit(site.idp.issuer + "/auth")._replace(query=urlencode(params)))

    # The provider sends the refusal back to our callback, which shows it and signs nobody in.
    response = browser.get(stripped)

    assert urlsplit(str(response.url)).path == CALLBACK
    assert response.status_code == 401
    message = Page(response.text).text["error"]
    assert "invalid_request" in message and "PKCE" in message
    assert signed_out(browser, site.url)


def test_a_callback_with_a_state_this_browser_did_not_start_is_refused(site: Site) -> None:
    give_role(site.sessions, "mallory@example.test")
    victim = httpx.Client(follow_redirects=False, timeout=15)
    attacker, callback = callback_url_for(site, "mallory")
    try:
        # Login injection: the attacker's own callback URL, opened in the victim's browser.
        victim.get(f"{site.url}/dashboard/login")
        injected = victim.get(callback)
        assert injected.status_code == 400
        assert "state" in Page(injected.text).text["error"]
        assert signed_out(victim, site.url)

        forged = victim.get(site.url + CALLBACK, params={"code": "made-up", "state": "made-up"})
        missing = victim.get(site.url + CALLBACK, params={"code": "made-up"})
        assert (forged.status_code, missing.status_code) == (400, 400)
        assert signed_out(victim, site.url)

        # The browser that started the login completes it, once.
        completed = attacker.get(callback, follow_redirects=False)
        assert (completed.status_code, completed.headers["location"]) == (302, "/dashboard")
        replayed = attacker.get(callback, follow_redirects=False)
        assert replayed.status_code == 400
    finally:
        victim.close()
        attacker.close()


def test_an_id_token_for_another_nonce_is_refused(site: Site) -> None:
    give_role(site.sessions, "alice@example.test")
    browser, callback = callback_url_for(site, "alice")
    signer = site.app.state.signer
    try:
        # The same login, but the nonce remembered in this browser's session is not the one sent.
        session, _ = signer.load(Purpose.MEMBER_SESSION, browser.cookies[COOKIE_NAME], max_age=60)
        [pending] = [key for key in session if key.startswith("_state_")]
        session[pending]["data"]["nonce"] = "another-nonce"
        browser.cookies.clear()
        cookie = f"{COOKIE_NAME}={signer.sign(Purpose.MEMBER_SESSION, session)}"
        response = browser.get(callback, headers={"cookie": cookie}, follow_redirects=False)
    finally:
        browser.close()

    assert response.status_code == 401
    assert "nonce" in Page(response.text).text["error"]


def test_an_email_the_provider_does_not_verify_is_refused(site: Site, browser: httpx.Client) -> None:
    response = sign_in_at_provider(browser, browser.get(f"{site.url}/dashboard/login"), "unverified-eve")

    assert urlsplit(str(response.url)).path == CALLBACK
    assert response.status_code == 401
    assert "not verified" in Page(response.text).text["error"]
    assert signed_out(browser, site.url)
    with site.sessions() as session:
        assert session.scalars(select(WorkspaceMember)).all() == []


def test_a_member_without_any_role_is_sent_to_onboarding(site: Site, browser: httpx.Client) -> None:
    response = sign_in_at_provider(browser, browser.get(f"{site.url}/dashboard/login"), "newcomer")

    assert response.history[-1].headers["location"] == "/dashboard-l/onboarding"


def test_login_returns_to_the_page_that_asked_for_it_but_never_to_another_site(site: Site) -> None:
    give_role(site.sessions, "alice@example.test")
    wanted = "/dashboard?tab=journeys"
    for asked, expected in [
        (wanted, wanted),
        ("https://evil.test/", "/dashboard"),
        ("//evil.test/x", "/dashboard"),
        ("/\\evil.test", "/dashboard"),
    ]:
        browser, callback = callback_url_for(site, "alice", redirect_to=asked)
        try:
            response = browser.get(callback, follow_redirects=False)
        finally:
            browser.close()
        assert (response.status_code, response.headers["location"]) == (302, expected), asked


def test_signout_ends_the_session_here_and_at_the_provider(site: Site, browser: httpx.Client) -> None:
    give_role(site.sessions, "alice@example.test")
    sign_in_at_provider(browser, browser.get(f"{site.url}/dashboard/login"), "alice")
    assert not signed_out(browser, site.url)

    response = browser.get(f"{site.url}/dashboard/signout", follow_redirects=False)

    location = urlsplit(response.headers["location"])
    assert response.status_code == 302
    assert urlunsplit(location._replace(query="")) == site.idp.end_session_endpoint
    assert parse_qs(location.query) == {
        "post_logout_redirect_uri": [site.url + SIGNOUT_COMPLETE],
        "client_id": [site.idp.client_id],
    }
    assert signed_out(browser, site.url)

    # At the provider: confirm, come back through /dashboard/signout/complete to the dashboard, which
    # asks the provider for a login again (its session ended too, so it shows the login form).
    landed = confirm_sign_out_at_provider(browser, browser.get(response.headers["location"]))
    paths = [urlsplit(str(r.url)).path for r in landed.history]
    assert SIGNOUT_COMPLETE in paths and "/dashboard/login" in paths
    assert [form.fields.get("prompt") for form in read_forms(landed.text)] == ["login"]


def test_signout_follows_the_configured_end_session_endpoint_and_return_parameter(settings: Settings) -> None:
    idp = OpenIdProvider("http://127.0.0.1:9", "gateway", "secret", [])  # nothing listens there
    configured = multi_tenant(
        settings,
        idp,
        TESTSERVER,
        end_session_endpoint="https://login.example.test/logout?tenant=acme",
        return_to_query_param="returnTo",
    )
    with TestClient(create_app(configured, run_worker=False)) as client:
        response = client.get("/dashboard/signout", follow_redirects=False)

    location = urlsplit(response.headers["location"])
    assert (location.netloc, location.path) == ("login.example.test", "/logout")
    assert parse_qs(location.query) == {
        "tenant": ["acme"],
        "returnTo": [TESTSERVER + SIGNOUT_COMPLETE],
        "client_id": ["gateway"],
    }


def test_an_unreachable_provider_fails_the_login_with_a_page_not_a_crash(settings: Settings) -> None:
    idp = OpenIdProvider("http://127.0.0.1:9", "gateway", "secret", [])  # nothing listens there
    with TestClient(create_app(multi_tenant(settings, idp, TESTSERVER), run_worker=False)) as client:
        started = client.get("/dashboard/login", follow_redirects=False)
        callback = client.get(CALLBACK, params={"code": "c", "state": "s"})

    assert (started.status_code, callback.status_code) == (503, 503)
    assert "could not be loaded" in Page(started.text).text["error"]


@pytest.mark.parametrize(
    ("provider_name", "metadata", "expected"),
    [
        (
            "auth0",
            {},
            ("https://acme.eu.auth0.com/v2/logout", "returnTo"),
        ),
        (
            "cognito",
            {"authorization_endpoint": "https://acme.auth.eu-west-1.amazoncognito.com/oauth2/authorize"},
            ("https://acme.auth.eu-west-1.amazoncognito.com/logout", "logout_uri"),
        ),
        (
            "keycloak",
            {"end_session_endpoint": "https://kc.test/realms/acme/protocol/openid-connect/logout"},
            ("https://kc.test/realms/acme/protocol/openid-connect/logout", "post_logout_redirect_uri"),
        ),
    ],
)
def test_provider_presets_name_the_end_session_endpoint_and_return_parameter(
    provider_name: str, metadata: dict[str, str], expected: tuple[str, str]
) -> None:
    open_id = OpenIdSettings(provider=provider_name, client_id="cid", issuer="https://acme.eu.auth0.com/")

    plan = plan_end_session(open_id, metadata)

    assert plan is not None
    assert (plan.endpoint, plan.return_param, dict(plan.extra)) == (*expected, {"client_id": "cid"})
    url = urlsplit(plan.url("https://app.test/dashboard/signout/complete"))
    assert parse_qs(url.query)[expected[1]] == ["https://app.test/dashboard/signout/complete"]


def test_a_provider_without_an_end_session_endpoint_signs_out_locally() -> None:
    assert plan_end_session(OpenIdSettings(client_id="cid", issuer="https://idp.test"), {}) is None


# --- single-tenant ------------------------------------------------------------------------------------


@pytest.fixture
def single_tenant(settings: Settings) -> Iterator[TestClient]:
    configured = replace(
        settings, auth_mode="single-tenant", password="correct horse", dashboard_url=TESTSERVER
    )
    with TestClient(create_app(configured, run_worker=False), headers={"origin": TESTSERVER}) as client:
        with client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
            create_workspace(session, "Only")
        yield client


def test_single_tenant_login_with_the_right_password_opens_the_dashboard(single_tenant: TestClient) -> None:
    assert signed_out(single_tenant, "")

    response = single_tenant.post("/api/public/single-tenant/login", json={"password": "correct horse"})

    assert (response.status_code, response.content) == (200, b"")
    page = Page(single_tenant.get("/dashboard").text)
    assert (page.text["member-email"], page.text["current-workspace"]) == ("anonymous@email.com", "Only")


def test_single_tenant_login_with_a_wrong_password_is_refused(single_tenant: TestClient) -> None:
    response = single_tenant.post("/api/public/single-tenant/login", json={"password": "correct horse!"})

    assert (response.status_code, response.json()) == (401, {"error": "Invalid password."})
    assert COOKIE_NAME not in response.cookies
    assert signed_out(single_tenant, "")


def test_single_tenant_login_names_a_missing_password(single_tenant: TestClient) -> None:
    response = single_tenant.post("/api/public/single-tenant/login", json={"pass": "x"})

    assert response.status_code == 400
    assert "password" in response.json()["message"]


def test_the_single_tenant_login_page_posts_its_form_and_lands_on_the_dashboard(
    single_tenant: TestClient,
) -> None:
    assert urlsplit(str(single_tenant.get("/dashboard").url)).path == "/dashboard/auth/single-tenant"
    [form] = read_forms(single_tenant.get("/dashboard/auth/single-tenant").text)

    wrong = single_tenant.post(form.action, data={"password": "nope"})
    assert wrong.status_code == 401
    assert Page(wrong.text).text["error"] == "Invalid password."

    right = single_tenant.post(form.action, data={"password": "correct horse"}, follow_redirects=False)
    assert (right.status_code, right.headers["location"]) == (303, "/dashboard")
    assert Page(single_tenant.get("/dashboard").text).text["member-email"] == "anonymous@email.com"


def test_single_tenant_signout_clears_the_session(single_tenant: TestClient) -> None:
    single_tenant.post("/api/public/single-tenant/login", json={"password": "correct horse"})

    response = single_tenant.get("/api/public/single-tenant/signout", follow_redirects=False)

    assert (response.status_code, response.headers["location"]) == (302, "/dashboard/auth/single-tenant")
    assert signed_out(single_tenant, "")


def test_single_tenant_routes_do_not_exist_in_other_modes(settings: Settings) -> None:
    with TestClient(create_app(settings, run_worker=False)) as anonymous:  # the default mode
        assert anonymous.post("/api/public/single-tenant/login", json={"password": "x"}).status_code == 404
        assert anonymous.get("/api/public/single-tenant/signout").status_code == 404
        assert anonymous.get("/dashboard/auth/single-tenant").status_code == 404
        assert anonymous.get(CALLBACK, params={"code": "c", "state": "s"}).status_code == 404


# --- workspace switching and the member-role API (a member signed in by cookie) ------------------------


@pytest.fixture
def multi(settings: Settings) -> Iterator[TestClient]:
    idp = OpenIdProvider("http://127.0.0.1:9", "gateway", "secret", [])  # never contacted here
    with TestClient(
        create_app(multi_tenant(settings, idp, TESTSERVER), run_worker=False), headers={"origin": TESTSERVER}
    ) as client:
        yield client


def sign_in_as(client: TestClient, member_id: str) -> None:
    """Set the session cookie the OpenID callback sets, for tests about what comes after it."""
    signer = client.app.state.signer  # type: ignore[attr-defined]
    client.cookies.set(COOKIE_NAME, signer.sign(Purpose.MEMBER_SESSION, {"member_id": member_id}))


@dataclass(frozen=True)
class Org:
    parent: str
    child: str
    stranger: str
    admin: str
    viewer: str


@pytest.fixture
def org(multi: TestClient) -> Org:
    with multi.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
        parent = create_workspace(session, "Acme", workspace_type=WorkspaceType.PARENT)
        child = upsert_child_workspace(session, parent, "Acme Bakery", "bakery")
        stranger = create_workspace(session, "Stranger")
        members.create_member_role(session, parent.id, "admin@acme.test", Role.ADMIN)
        members.create_member_role(session, parent.id, "viewer@acme.test", Role.VIEWER)
        members.create_member_role(session, stranger.id, "other@stranger.test", Role.ADMIN)
        ids = {
            email: members.upsert_member_from_profile(
                session, {"sub": email, "email": email, "email_verified": True}, "oidc"
            ).id
            for email in ("admin@acme.test", "viewer@acme.test")
        }
        return Org(parent.id, child.id, stranger.id, ids["admin@acme.test"], ids["viewer@acme.test"])


def test_select_workspace_switches_the_current_workspace(multi: TestClient, org: Org) -> None:
    sign_in_as(multi, org.admin)
    page = Page(multi.get("/dashboard").text)
    assert page.text["current-workspace"] == "Acme"

    response = multi.get(page.links["Acme Bakery"], follow_redirects=False)

    assert (response.status_code, response.headers["location"]) == (302, "/dashboard")
    assert Page(multi.get("/dashboard").text).text["current-workspace"] == "Acme Bakery"


@pytest.mark.parametrize("hostile", ["https://evil.test/", "//evil.test/x", "/\\evil.test", "javascript:1"])
def test_select_workspace_only_keeps_a_same_origin_path(multi: TestClient, org: Org, hostile: str) -> None:
    sign_in_as(multi, org.admin)
    kept = multi.get(
        "/dashboard/select-workspace",
        params={"workspaceId": org.child, "redirectTo": "/dashboard?tab=journeys"},
        follow_redirects=False,
    )
    refused = multi.get(
        "/dashboard/select-workspace",
        params={"workspaceId": org.child, "redirectTo": hostile},
        follow_redirects=False,
    )
    assert kept.headers["location"] == "/dashboard?tab=journeys"
    assert refused.headers["location"] == "/dashboard"


def test_select_workspace_refuses_a_workspace_of_someone_else(multi: TestClient, org: Org) -> None:
    sign_in_as(multi, org.admin)

    foreign = multi.get("/dashboard/select-workspace", params={"workspaceId": org.stranger})
    malformed = multi.get("/dashboard/select-workspace", params={"workspaceId": "not-a-uuid"})

    assert foreign.status_code == 403
    assert malformed.status_code == 400
    assert "workspaceId" in Page(malformed.text).text["error"]
    assert Page(multi.get("/dashboard").text).text["current-workspace"] == "Acme"


def test_select_workspace_needs_a_signed_in_member(multi: TestClient, org: Org) -> None:
    response = multi.get(
        "/dashboard/select-workspace", params={"workspaceId": org.child}, follow_redirects=False
    )

    location = urlsplit(response.headers["location"])
    assert (response.status_code, location.path) == (302, "/dashboard/login")
    assert parse_qs(location.query)["redirectTo"] == [f"/dashboard/select-workspace?workspaceId={org.child}"]


def test_an_admin_manages_member_roles_of_the_current_workspace(multi: TestClient, org: Org) -> None:
    sign_in_as(multi, org.admin)

    created = multi.post(
        "/api/permissions", json={"workspaceId": org.parent, "email": "new@acme.test", "role": "Author"}
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "role": "Author",
        "workspaceMemberId": created.json()["workspaceMemberId"],
        "workspaceId": org.parent,
        "workspaceName": "Acme",
    }
    duplicate = multi.post(
        "/api/permissions", json={"workspaceId": org.parent, "email": "new@acme.test", "role": "Admin"}
    )
    assert duplicate.status_code == 400

    updated = multi.put(
        "/api/permissions", json={"workspaceId": org.parent, "email": "new@acme.test", "role": "Viewer"}
    )
    assert (updated.status_code, updated.json()["role"]) == (200, "Viewer")

    listed = multi.get("/api/permissions", params={"workspaceId": org.parent}).json()["memberRoles"]
    assert {entry["member"]["email"]: [r["role"] for r in entry["roles"]] for entry in listed} == {
        "admin@acme.test": ["Admin"],
        "viewer@acme.test": ["Viewer"],
        "new@acme.test": ["Viewer"],
    }

    deleted = multi.request(
        "DELETE", "/api/permissions", json={"workspaceId": org.parent, "email": "new@acme.test"}
    )
    again = multi.request(
        "DELETE", "/api/permissions", json={"workspaceId": org.parent, "email": "new@acme.test"}
    )
    missing = multi.put(
        "/api/permissions", json={"workspaceId": org.parent, "email": "new@acme.test", "role": "Admin"}
    )
    assert (deleted.status_code, again.status_code, missing.status_code) == (204, 404, 404)


def test_the_member_role_api_needs_admin_even_to_read(multi: TestClient, org: Org) -> None:
    sign_in_as(multi, org.viewer)

    read = multi.get("/api/permissions", params={"workspaceId": org.parent})
    write = multi.post(
        "/api/permissions", json={"workspaceId": org.parent, "email": "x@acme.test", "role": "Admin"}
    )

    assert (read.status_code, write.status_code) == (403, 403)


def test_the_member_role_api_stays_in_the_current_workspace(multi: TestClient, org: Org) -> None:
    sign_in_as(multi, org.admin)

    other = multi.get("/api/permissions", params={"workspaceId": org.stranger})
    planted = multi.post(
        "/api/permissions", json={"workspaceId": org.stranger, "email": "spy@acme.test", "role": "Admin"}
    )
    anonymous = TestClient(multi.app).get("/api/permissions", params={"workspaceId": org.parent})

    assert (other.status_code, planted.status_code, anonymous.status_code) == (403, 403, 401)
    with multi.app.state.sessions() as session:  # type: ignore[attr-defined]
        assert session.scalar(select(WorkspaceMember).where(WorkspaceMember.email == "spy@acme.test")) is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "role": "Admin"}, "email"),
        ({"email": "a@acme.test", "role": "Owner"}, "role"),
        ({"role": "Admin"}, "email"),
    ],
)
def test_the_member_role_api_names_a_bad_field(
    multi: TestClient, org: Org, body: dict[str, str], field: str
) -> None:
    sign_in_as(multi, org.admin)

    response = multi.post("/api/permissions", json={"workspaceId": org.parent, **body})

    assert response.status_code == 400
    assert f"body/{field}" in response.json()["message"]
