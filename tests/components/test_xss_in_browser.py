"""Hostile input across every screen, in real Chromium: nothing a tenant's end users, its API clients or
its template authors store ever runs as script in feedgate's pages.

One site for the module: the demo (parent "Demo SaaS", child "Acme Bakery") served with the sample parent
page, in multi-tenant mode with a console member who is Admin of the child. A corpus of payloads, each of
which sets the canary `window.__xss` if it ever runs, is planted once in everything a screen shows: user
ids and trait values (and trait keys), event names and properties, email and SMS templates (names and
every field of their bodies), segments, subscription groups, user properties, broadcasts, journeys, and
deliveries (subject, to, from, body). Each payload also gets a resource of its own, so the tables list it
alone; the editors open a resource that carries the whole corpus.

Then every screen is opened in both shells: embedded (framed cross-site by the sample parent page, the
screens not on that page navigated to inside its frame) and the member console (top level), with the
previews opened (delivery previews, the email and SMS editors' live previews, the broadcast content step).
After each screen: no dialog opened, the canary is undefined in every frame, no element carries a
`javascript:` link, and no request went to a `javascript:` URL. Screenshots land in the artifacts
directory.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import clickhouse_connect
import httpx2 as httpx
import pytest
from playwright.sync_api import Dialog, Frame, Page, Request
from starlette.applications import Starlette

from engine.events import build_rows
from engine.storage.models import Role, WorkspaceMember, WorkspaceMemberRole
from gateway import operator
from gateway.app import create_app
from gateway.member_cookie import COOKIE_NAME
from gateway.sample_parent import PAGE_PATH, SampleParent, sample_parent_routes
from gateway.settings import Settings
from gateway.tokens import Purpose
from tests.support.browser import chromium, screenshot_path
from tests.support.net import ThreadedServer

# What every payload runs if it ever executes.
JS = "window.__xss=1"
PAYLOADS: list[str] = [
    f"<script>{JS}</script>",
    f'<img src=x onerror="{JS}">',
    f"<svg onload={JS}>",
    f"<svg><script>{JS}</script></svg>",
    f"<details open ontoggle={JS}>",
    f'"><img src=x onerror={JS}>',
    f"'><img src=x onerror={JS}>",
    f'" autofocus onfocus="{JS}" x="',
    f"' autofocus onfocus='{JS}' x='",
    f"</textarea><img src=x onerror={JS}>",
    f"</title><img src=x onerror={JS}>",
    f"</style><img src=x onerror={JS}>",
    f"</script><script>{JS}</script>",
    f"javascript:{JS}",
    f'<a href="javascript:{JS}">open</a>',
    f'<iframe src="javascript:{JS}"></iframe>',
    f'<form><button formaction="javascript:{JS}">go</button></form>',
    # Liquid: output and tags, in names (never evaluated) and bodies (evaluated, then escaped).
    f'{{{{ "<img src=x onerror={JS}>" }}}}',
    f"{{% if true %}}<img src=x onerror={JS}>{{% endif %}}",
    f"{{{{ '<svg onload={JS}>' | append: '' }}}}",
    # Breaking out of template literals, JSON and inline handlers.
    f"${{{JS}}}`;{JS};`",
    f'"}};{JS};//',
    f"');{JS};//",
    # Unicode: JS line terminators, fullwidth brackets, zero-width and bidi characters, mutation XSS.
    f"\u2028\u2029<img src=x onerror={JS}>",
    f"\uff1cimg src=x onerror={JS}\uff1e",
    f"<scr\u200bipt>{JS}</scr\u200bipt>",
    f"\u202e<img src=x onerror={JS}>",
    f"<math><mtext><table><mglyph><style><img src=x onerror={JS}>",
]
EVERYTHING = " ".join(PAYLOADS)
SMS_BODY = f"{EVERYTHING} Hi {{{{ user.firstName }}}} {{{{ user.plan }}}}"
EMAIL_BODY = f"<p>{EVERYTHING}</p><p>Hi {{{{ user.firstName }}}}</p>"
# Checks run in every frame after every screen.
FIND_JAVASCRIPT_URLS = """() => {
  const found = [];
  for (const element of document.querySelectorAll("[href], [src], [action], [formaction]")) {
    for (const name of ["href", "src", "action", "formaction"]) {
      const value = element.getAttribute(name);
      if (value === null) continue;
      let protocol = "";
      try { protocol = new URL(value, document.baseURI).protocol; } catch (error) { continue; }
      if (protocol === "javascript:") found.push(`${element.tagName} ${name}=${value}`);
    }
  }
  return found;
}"""


@dataclass
class Planted:
    """The ids of the resources the editors open: the ones carrying the whole corpus."""

    email_template: str = ""
    sms_template: str = ""
    segment: str = ""
    broadcast: str = ""
    journey: str = ""
    # Every resource made, to check the tables list them all.
    names: list[str] = field(default_factory=list)


@dataclass
class Site:
    url: str
    account: SampleParent
    api: httpx.Client
    member_cookie: str
    planted: Planted

    def admin(self, method: str, path: str, **body: Any) -> Any:
        response = self.api.request(method, path, json={"workspaceId": self.account.child_id, **body})
        assert response.is_success, (path, response.text)
        return response.json() if response.content else None

    def token(self) -> str:
        """A session for the child that the sample parent page's origin may frame."""
        minted = self.admin("POST", "/api-l/sessions", allowedOrigins=[self.url])
        return str(minted["token"])

    @property
    def embed_base(self) -> str:
        """The same server on the other host name: framed from `url`, it is another site."""
        return self.url.replace("127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, chdb_dir: str) -> Iterator[Site]:
    data_dir = tmp_path_factory.mktemp("xss")
    database = f"t_{uuid.uuid4().hex[:16]}"
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'feedgate.db'}",
        clickhouse_url=f"chdb://{chdb_dir}",
        clickhouse_database=database,
        secret_key="test-secret-key",
        auth_mode="multi-tenant",
    )
    operator.seed_demo(settings)
    account = operator.prepare_sample_parent(settings)
    assert account is not None
    app = create_app(settings, run_worker=False, extra_routes=sample_parent_routes(account))
    server = ThreadedServer(app).start()
    headers = {"authorization": f"Bearer {account.admin_key}"}
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
            site = Site(
                server.url, account, api, member_cookie=console_member(app, account), planted=Planted()
            )
            plant(site, app)
            yield site
    finally:
        server.stop()
        clickhouse_connect.get_client(dsn=f"chdb://{chdb_dir}").command(
            f"DROP DATABASE IF EXISTS `{database}`"
        )


def console_member(app: Starlette, account: SampleParent) -> str:
    """A member (with a hostile email, as an OpenID provider could send) who is Admin of the child; the
    signed cookie value of their session."""
    with app.state.sessions.begin() as session:
        member = WorkspaceMember(email=f'"><img src=x onerror={JS}>@evil.test', email_verified=True)
        session.add(member)
        session.flush()
        session.add(
            WorkspaceMemberRole(workspace_id=account.child_id, workspace_member_id=member.id, role=Role.ADMIN)
        )
        member_id = member.id
    return str(app.state.signer.sign(Purpose.MEMBER_SESSION, {"member_id": member_id}))


# -- planting the corpus -----------------------------------------------------------------------------


def plant(site: Site, app: Starlette) -> None:
    write_key = site.api.put(
        "/api-l/admin/workspaces/child",
        json={"workspaceId": site.account.parent_id, "name": "Acme Bakery", "externalId": "acme-bakery"},
    ).json()["writeKey"]
    public = {"authorization": write_key}
    for index, payload in enumerate(PAYLOADS):
        traits = {
            payload: payload,
            "firstName": payload,
            "plan": payload,
            "email": f"user{index}@example.com",
        }
        for kind, extra in (("identify", {"traits": traits}), ("track", {"event": payload})):
            body = {"userId": payload, "messageId": f"xss-{kind}-{index}", **extra}
            if kind == "track":
                body["properties"] = {payload: payload, "note": payload}
            response = site.api.post(f"/api/public/apps/{kind}", json=body, headers=public)
            assert response.status_code == 204, response.text
        resources = plant_resources(site, f"#{index} {payload}", payload, payload)
        send_and_record(site, app, resources, user_id=payload, tag=str(index), value=payload)
    everything = plant_resources(site, f"All {EVERYTHING}", EVERYTHING, EMAIL_BODY, sms_body=SMS_BODY)
    send_and_record(site, app, everything, user_id=EVERYTHING, tag="all", value=EVERYTHING)
    site.planted.email_template = everything["email"]
    site.planted.sms_template = everything["sms"]
    site.planted.segment = everything["segment"]
    site.planted.broadcast = everything["broadcast"]
    site.planted.journey = everything["journey"]
    # Links into the host app from hostile ids; a `javascript:` template must never make a link.
    site.admin(
        "PUT",
        "/api/admin/component-configurations/",
        name="DeliveriesTable",
        definition={
            "type": "DeliveriesTable",
            "userUriTemplate": "https://app.example.com/users/{userId}",
            "templateUriTemplate": "https://app.example.com/templates/{templateId}",
            "originUriTemplate": f"javascript:{JS}//{{originId}}",
        },
    )


def plant_resources(
    site: Site, name: str, value: str, email_body: str, *, sms_body: str | None = None
) -> dict[str, str]:
    """A template of each channel, a segment, a subscription group, a user property, a broadcast and a
    journey, named `name` (each kind prefixed), with `value` wherever their definitions hold text."""
    ids: dict[str, str] = {}
    email = {
        "type": "Email",
        "from": value,
        "subject": f"{value} {{{{ user.firstName }}}}",
        "body": email_body,
    }
    ids["email"] = site.admin("PUT", "/api/admin/content/templates", name=f"Email {name}", definition=email)[
        "id"
    ]
    sms = {"type": "Sms", "body": sms_body or f"{value} {{{{ user.firstName }}}}"}
    ids["sms"] = site.admin("PUT", "/api/admin/content/templates", name=f"SMS {name}", definition=sms)["id"]
    trait = {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Equals", "value": value}}
    ids["segment"] = site.admin(
        "PUT", "/api/admin/segments", name=f"Segment {name}", definition={"entryNode": trait, "nodes": []}
    )["id"]
    ids["group"] = site.admin(
        "PUT", "/api/admin/subscription-groups", name=f"Group {name}", channel="Email", type="OptOut"
    )["id"]
    site.admin(
        "PUT",
        "/api/admin/user-properties",
        name=f"Property {name}",
        definition={"type": "Trait", "path": "plan"},
    )
    ids["broadcast"] = site.admin(
        "PUT",
        "/api/admin/broadcasts/v2",
        name=f"Broadcast {name}",
        segmentId=ids["segment"],
        messageTemplateId=ids["email"],
        subscriptionGroupId=ids["group"],
    )["id"]
    draft = {
        "entryNode": {"type": "EntryNode", "segment": ids["segment"], "child": "message"},
        "exitNode": {"type": "ExitNode"},
        "nodes": [
            {
                "type": "MessageNode",
                "id": "message",
                "name": value,
                "variant": {"type": "Email", "templateId": ids["email"]},
                "child": "ExitNode",
            }
        ],
    }
    ids["journey"] = site.admin("PUT", "/api/admin/journeys", name=f"Journey {name}", draft=draft)["id"]
    site.planted.names += [f"{kind} {name}" for kind in ("Email", "SMS", "Segment", "Broadcast", "Journey")]
    return ids


def send_and_record(
    site: Site, app: Starlette, ids: dict[str, str], *, user_id: str, tag: str, value: str
) -> None:
    """A real send of the email template through the Test provider to a user with hostile traits, and
    recorded deliveries (as a provider's events would make them) whose every variant field is hostile."""
    sent = site.admin(
        "POST",
        "/api/admin/content/templates/batch-send",
        templateId=ids["email"],
        channel="Email",
        users=[{"id": user_id, "properties": {"email": f"xss-{tag}@example.com", "firstName": value}}],
    )
    assert [result["type"] for result in sent["results"]] == ["Success"], sent
    now = datetime.now(UTC)
    variants = {
        "email": {
            "type": "Email",
            "from": value,
            "to": value,
            "subject": value,
            "body": value,
            "replyTo": value,
        },
        "sms": {"type": "Sms", "to": value, "body": value},
    }
    for channel, variant in variants.items():
        properties = {
            "templateId": ids[channel],
            "messageId": f"xss-{channel}-{tag}",
            "broadcastId": ids["broadcast"],
            "journeyId": ids["journey"],
            "variant": variant,
        }
        raw = {
            "userId": user_id,
            "messageId": f"xss-{channel}-{tag}",
            "event": "DFInternalMessageSent",
            "timestamp": now.isoformat().replace("+00:00", "Z"),
            "properties": properties,
        }
        app.state.event_writer.write(build_rows(site.account.child_id, "track", raw, now))


# -- watching the browser ----------------------------------------------------------------------------


@dataclass
class Watch:
    """What the hostile values could have done in a page: dialogs opened and requests made."""

    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> Page:
        def refuse(dialog: Dialog) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        def record(request: Request) -> None:
            self.requests.append(request.url)

        page.on("dialog", refuse)
        page.on("request", record)
        return page

    def assert_inert(self, page: Page, screen: str) -> None:
        assert self.dialogs == [], screen
        assert [url for url in self.requests if url.lower().startswith("javascript:")] == [], screen
        for frame in scripted_frames(page.main_frame):
            assert frame.evaluate("typeof window.__xss") == "undefined", (screen, frame.url)
            assert frame.evaluate(FIND_JAVASCRIPT_URLS) == [], (screen, frame.url)


def scripted_frames(frame: Frame) -> Iterator[Frame]:
    """`frame` and the frames below it that may run scripts: a frame sandboxed without `allow-scripts`
    (the email previews, whose document is the author's HTML) runs nothing, nor does anything inside it,
    and no script can even be evaluated there."""
    yield frame
    for child in frame.child_frames:
        sandbox = child.frame_element().get_attribute("sandbox")
        if sandbox is not None and "allow-scripts" not in sandbox.split():
            continue
        yield from scripted_frames(child)


# -- the screens -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Screen:
    """One screen: its path below the shell, what shows it is ready, and how its previews open."""

    slug: str
    path: str
    ready: str
    preview: str = ""
    # Text the screen must show: the hostile value, as text.
    shows: str = ""


def screens(planted: Planted) -> list[Screen]:
    broadcast = [
        Screen(
            f"broadcast-{step.lower()}",
            f"/broadcasts/v2?id={planted.broadcast}&step={step}",
            "[data-testid=broadcast-head]",
            "broadcast-content" if step == "CONTENT" else "",
        )
        for step in ("RECIPIENTS", "CONTENT", "CONFIGURATION")
    ]
    return [
        Screen("deliveries", "/deliveries/v2", "[data-testid=delivery-row]", "deliveries", PAYLOADS[1]),
        Screen("analysis", "/analysis-chart", "[data-testid=analysis-chart]"),
        Screen("segments", "/segments", "[data-testid=segments-table]", shows=f"Segment #1 {PAYLOADS[1]}"),
        Screen("segment-editor", f"/segments/v1?id={planted.segment}", "[data-testid=segment-name]"),
        Screen("templates", "/templates", "[data-testid=templates-table]", shows=f"Email #1 {PAYLOADS[1]}"),
        Screen("email-editor", f"/templates/email?id={planted.email_template}", "#email-form", "email"),
        Screen("sms-editor", f"/templates/sms?id={planted.sms_template}", "#sms-form", "sms"),
        Screen(
            "broadcasts", "/broadcasts", "[data-testid=broadcasts-table]", shows=f"Broadcast #1 {PAYLOADS[1]}"
        ),
        *broadcast,
        Screen("journeys", "/journeys", "[data-testid=journeys-table]", shows=f"Journey #1 {PAYLOADS[1]}"),
        Screen("journey-editor", f"/journeys/v2?id={planted.journey}", "[data-testid=journeys-link]"),
    ]


CONSOLE_ONLY = [
    Screen(f"settings-{slug}", f"/settings/{slug}", "[data-testid=settings-nav-index]")
    for slug in (
        "providers",
        "write-keys",
        "admin-keys",
        "members",
        "embed-origins",
        "subscription-groups",
        "component-configurations",
    )
]


def open_previews(page: Page, frame: Frame, screen: Screen) -> None:
    """Open what the screen previews, in the way a member would."""
    if screen.preview == "deliveries":
        toggles = frame.locator("[data-testid=delivery-preview-toggle]")
        for index in range(toggles.count()):
            toggles.nth(index).click()
        frame.locator("[data-testid=delivery-preview-email]").first.wait_for(state="attached")
    elif screen.preview in ("email", "sms"):
        # The live preview, refreshed through htmx as when the author types.
        frame.wait_for_function(
            f"() => Boolean(document.querySelector('#{screen.preview}-form')?.['htmx-internal-data'])"
        )
        with page.expect_response(lambda response: response.url.split("?")[0].endswith("/preview")):
            frame.locator(f"#{screen.preview}-form").evaluate("form => form.requestSubmit()")
    elif screen.preview == "broadcast-content":
        frame.locator("[data-testid=email-preview-frame]").first.wait_for(state="attached")


def show(page: Page, frame: Frame, watch: Watch, screen: Screen, shell: str) -> None:
    frame.locator(screen.ready).first.wait_for()
    if screen.shows:
        assert screen.shows in frame.locator("body").inner_text(), screen.slug
    open_previews(page, frame, screen)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=screenshot_path(f"xss-{shell}-{screen.slug}"), full_page=True)
    watch.assert_inert(page, f"{shell} {screen.slug}")


# -- the tests ---------------------------------------------------------------------------------------


def test_the_tables_list_every_hostile_resource(site: Site) -> None:
    """The corpus really is planted (so the browser test below looks at it)."""
    templates = site.api.get("/api/admin/content/templates", params={"workspaceId": site.account.child_id})
    names = {template["name"] for template in templates.json()["templates"]}
    assert {name for name in site.planted.names if name.startswith(("Email ", "SMS "))} <= names


def test_hostile_values_never_run_in_any_screen(site: Site) -> None:
    every = screens(site.planted)
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        watch = Watch()
        page = watch.attach(context.new_page())

        # Embedded: the sample parent page frames four screens cross-site; the rest open in its frame.
        page.goto(f"{site.url}{PAGE_PATH}")
        framed = {
            "deliveries": "Deliveries",
            "analysis": "Analysis",
            "segments": "Segments",
            "templates": "Templates",
        }
        for screen in every:
            if screen.slug in framed:
                page.get_by_role("button", name=framed[screen.slug], exact=True).click()
                frame = embedded_frame(page, screen.path)
            else:
                page.get_by_role("button", name="Deliveries", exact=True).click()
                frame = first_frame(page)
                frame.goto(embedded_url(site, screen.path), wait_until="load")
            assert frame.url.startswith(site.embed_base), frame.url
            show(page, frame, watch, screen, "embedded")

        # The member console, at the top level.
        context.add_cookies([{"name": COOKIE_NAME, "value": site.member_cookie, "url": site.url}])
        console = watch.attach(context.new_page())
        for screen in [*every, *CONSOLE_ONLY]:
            separator = "&" if "?" in screen.path else "?"
            query = urlencode({"workspaceId": site.account.child_id})
            response = console.goto(f"{site.url}/dashboard{screen.path}{separator}{query}")
            assert response is not None and response.status == 200, screen.path
            show(console, console.main_frame, watch, screen, "console")
        context.close()


def embedded_url(site: Site, path: str) -> str:
    separator = "&" if "?" in path else "?"
    query = urlencode({"token": site.token(), "workspaceId": site.account.child_id})
    return f"{site.embed_base}/dashboard-l/embedded{path}{separator}{query}"


def embedded_frame(page: Page, path: str) -> Frame:
    for frame in page.frames:
        if urlsplit(frame.url).path == f"/dashboard-l/embedded{path}":
            return frame
    raise AssertionError(f"no frame shows {path}: {[frame.url for frame in page.frames]}")


def first_frame(page: Page) -> Frame:
    """The sample parent page's first iframe, wherever it was navigated to."""
    handle = page.locator("#frame-1").element_handle()
    frame = handle.content_frame() if handle is not None else None
    assert frame is not None
    return frame
