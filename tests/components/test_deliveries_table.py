"""The deliveries table screen (`/deliveries/v2`, component DeliveriesTable): real deliveries of the
session's workspace, filtered, sorted and paged as `GET deliveries` does, previews that render inert,
the stored DeliveriesTable configuration applied on the server (columns, links into the host app),
and the session's scope."""

from __future__ import annotations

from datetime import UTC, datetime
from html import unescape
from html.parser import HTMLParser
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from components.deliveries_table import COLUMNS, expand_uri_template
from tests.gateway.api.conftest import ParentAccount, Tenant
from tests.support.delivery_events import SMS, WEBHOOK, DeliveryEvents

EMBED = "/dashboard-l/embedded/deliveries/v2"
CONSOLE = "/dashboard/deliveries/v2"
HOSTILE = "<img src=x onerror=alert(1)>"
EMAIL = {
    "type": "Email",
    "from": "news@acme.test",
    "to": "ada@example.com",
    "subject": "Welcome aboard",
    "body": '<p class="hello">Hello &amp; welcome</p>',
    "provider": {"type": "SendGrid", "messageId": "sg-1"},
}
TODAY = datetime.now(UTC).date().isoformat()


class Workspace:
    """A tenant's resources and deliveries, made through the admin API and the event writer."""

    def __init__(self, client: TestClient, parent: ParentAccount, workspace_id: str) -> None:
        self.client, self.parent, self.id = client, parent, workspace_id
        self.events = DeliveryEvents(client, workspace_id)
        # The ids of the resources made here, by name.
        self.ids: dict[str, str] = {}

    def admin_put(self, path: str, **body: Any) -> dict[str, Any]:
        response = self.client.put(
            path,
            json={"workspaceId": self.id, **body},
            headers={"authorization": f"Bearer {self.parent.admin_key}"},
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def template(self, name: str) -> str:
        definition = {"type": "Email", "from": "news@acme.test", "subject": "Hi", "body": "<p>Hi</p>"}
        return self.made(
            name, self.admin_put("/api/admin/content/templates", name=name, definition=definition)
        )

    def journey(self, name: str) -> str:
        draft: dict[str, list[Any]] = {"nodes": [], "edges": []}
        return self.made(name, self.admin_put("/api/admin/journeys", name=name, draft=draft))

    def broadcast(self, name: str) -> str:
        return self.made(name, self.admin_put("/api/admin/broadcasts/v2", name=name))

    def made(self, name: str, resource: dict[str, Any]) -> str:
        self.ids[name] = str(resource["id"])
        return self.ids[name]

    def configure(self, **definition: Any) -> None:
        self.admin_put(
            "/api/admin/component-configurations/",
            name="DeliveriesTable",
            definition={"type": "DeliveriesTable", **definition},
        )

    def token(self, **extra: Any) -> str:
        response = self.client.post(
            "/api-l/sessions",
            json={"workspaceId": self.id, **extra},
            headers={"authorization": f"Bearer {self.parent.admin_key}"},
        )
        assert response.status_code == 200, response.text
        return str(response.json()["token"])


@pytest.fixture
def acme(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Workspace:
    """Three deliveries of the tenant (email of a journey, SMS of a broadcast, anonymous webhook) and a
    sibling's delivery that must never show."""
    workspace = Workspace(client, parent, tenant.id)
    welcome = workspace.template("Welcome email")
    onboarding = workspace.journey("Onboarding")
    spring_sale = workspace.broadcast("Spring sale")
    events = workspace.events
    events.sent(
        "m-email",
        "ada",
        "2026-03-01T10:01:00Z",
        template=welcome,
        variant=EMAIL,
        tags={"journeyId": onboarding},
    )
    events.status("DFEmailOpened", "m-email", "ada", "2026-03-01T10:05:00Z")
    events.sent(
        "m-sms",
        "bob",
        "2026-03-01T10:02:00Z",
        template="t-sms",
        variant=SMS,
        tags={"broadcastId": spring_sale},
    )
    events.status("DFSmsDelivered", "m-sms", "bob", "2026-03-01T10:03:00Z")
    events.sent(
        "m-hook", "anon-1", "2026-03-01T10:03:00Z", template="t-hook", variant=WEBHOOK, anonymous=True
    )
    sibling = parent.put_child("Tenant B", "tenant-b")
    DeliveryEvents(client, sibling.id).sent(
        "m-sibling", "ada", "2026-03-01T10:04:00Z", template="t", variant=EMAIL
    )
    return workspace


# -- reading the HTML --------------------------------------------------------------------------------


class Elements(HTMLParser):
    """Every start tag of a page with its attributes (entities decoded, as a browser reads them)."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def all(self, tag: str, **wanted: str) -> list[dict[str, str | None]]:
        return [
            attrs
            for name, attrs in self.found
            if name == tag and all(attrs.get(key.replace("_", "-")) == value for key, value in wanted.items())
        ]


def row_ids(html: str) -> list[str | None]:
    return [attrs["data-message-id"] for attrs in Elements(html).all("tr", data_testid="delivery-row")]


def columns_of(html: str) -> list[str | None]:
    return [attrs["data-column"] for attrs in Elements(html).all("th")]


def open_embedded(client: TestClient, workspace: Workspace, token: str, **params: Any) -> httpx.Response:
    return client.get(EMBED, params={"token": token, "workspaceId": workspace.id, **params})


def fragment(client: TestClient, workspace: Workspace, token: str, *pairs: tuple[str, str]) -> httpx.Response:
    """What the toolbar's htmx request gets: the results alone, the token in the header."""
    return client.get(
        EMBED,
        params=httpx.QueryParams([("workspaceId", workspace.id), *pairs]),
        headers={"authorization": f"Bearer {token}", "hx-request": "true", "hx-target": "deliveries-results"},
    )


def link(html: str, testid: str) -> str:
    [attrs] = Elements(html).all("a", data_testid=testid)
    href = attrs["href"]
    assert href is not None
    return href


# -- the screen --------------------------------------------------------------------------------------


def test_embedded_table_shows_the_workspace_deliveries(client: TestClient, acme: Workspace) -> None:
    token = acme.token(components=["DeliveriesTable"])
    response = open_embedded(client, acme, token)
    assert response.status_code == 200, response.text
    html = response.text
    assert row_ids(html) == ["m-hook", "m-sms", "m-email"]
    assert "m-sibling" not in html
    assert columns_of(html) == list(COLUMNS)
    # Names of the real resources, humanised statuses and channels, the snippet, the recipients.
    for text in ["Onboarding", "Spring sale", "Welcome email", "Opened", "Delivered (SMS)", "Welcome aboard"]:
        assert text in html, text
    for text in ["news@acme.test", "ada@example.com", "+15550001", "SMS", "Webhook", "anonymous"]:
        assert text in html, text
    # The pickers offer the workspace's resources.
    options = {attrs.get("value") for attrs in Elements(html).all("option")}
    assert {f"journey:{acme.ids['Onboarding']}", f"broadcast:{acme.ids['Spring sale']}"} <= options
    assert acme.ids["Welcome email"] in options
    # The session token never reaches a rendered URL.
    assert token not in html


def test_previews_show_what_was_sent(client: TestClient, acme: Workspace) -> None:
    html = open_embedded(client, acme, acme.token()).text
    [email] = Elements(html).all("iframe", data_testid="delivery-preview-email")
    assert email["sandbox"] == ""
    assert email["srcdoc"] == EMAIL["body"]
    assert "Your code is 1234" in html  # the SMS text
    assert "https://hooks.example.com/in" in html  # the webhook request
    assert len(Elements(html).all("details", **{"class": "delivery-preview-toggle"})) == 3
    assert len(Elements(html).all("tr", data_testid="delivery-detail")) == 3


def test_hostile_values_render_inert(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    workspace = Workspace(client, parent, tenant.id)
    script_body = '<script>alert("body")</script><img src=x onerror=alert(2)>'
    variant = {**EMAIL, "subject": HOSTILE, "from": f'"{HOSTILE}" <x@acme.test>', "body": script_body}
    workspace.events.sent("m-evil", HOSTILE, "2026-03-01T10:00:00Z", template=HOSTILE, variant=variant)
    workspace.events.sent(
        "m-evil-sms", "eve", "2026-03-01T10:01:00Z", template="t", variant={**SMS, "body": HOSTILE}
    )
    workspace.configure(userUriTemplate="https://app.example.com/users/{userId}")
    html = open_embedded(client, workspace, workspace.token()).text
    assert HOSTILE not in html and "<script>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    elements = Elements(html)
    # No element the values could have made: the only images and scripts are the layout's own.
    assert elements.all("img") == []
    assert [attrs["src"] for attrs in elements.all("script")] == ["/static/htmx.min.js", "/static/embed.js"]
    # The HTML body reaches the browser only as the sandboxed iframe's document.
    [email] = elements.all("iframe", data_testid="delivery-preview-email")
    assert (email["sandbox"], email["srcdoc"]) == ("", script_body)
    user_links = [attrs["href"] for attrs in elements.all("a", data_testid="delivery-user-link")]
    assert user_links == [
        "https://app.example.com/users/eve",
        "https://app.example.com/users/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E",
    ]


def test_column_allow_list_decides_the_columns(client: TestClient, acme: Workspace) -> None:
    acme.configure(columnAllowList=["status", "userId", "template", "status"])
    html = open_embedded(client, acme, acme.token()).text
    assert columns_of(html) == ["status", "userId", "template"]
    assert {attrs["data-column"] for attrs in Elements(html).all("td")} == {"status", "userId", "template"}
    # No preview column: no previews are sent at all.
    assert "delivery-preview" not in html and "srcdoc" not in html
    assert "Welcome aboard" not in html  # the snippet
    # The configuration shapes embedded screens; the member console shows every column.
    console = client.get(CONSOLE)
    assert console.status_code == 200, console.text
    assert columns_of(console.text) == list(COLUMNS)


def test_a_parents_configuration_applies_to_its_child(client: TestClient, acme: Workspace) -> None:
    Workspace(client, acme.parent, acme.parent.id).configure(columnAllowList=["userId"])
    assert columns_of(open_embedded(client, acme, acme.token()).text) == ["userId"]
    acme.configure(columnAllowList=["channel", "status"])
    assert columns_of(open_embedded(client, acme, acme.token()).text) == ["channel", "status"]


def test_uri_templates_link_into_the_host_app(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    workspace = Workspace(client, parent, tenant.id)
    template = workspace.template("Receipt")
    journey = workspace.journey("Checkout")
    workspace.events.sent(
        "m-1",
        "ada lovelace/1",
        "2026-03-01T10:00:00Z",
        template=template,
        variant=EMAIL,
        tags={"journeyId": journey},
    )
    workspace.configure(
        userUriTemplate="https://app.example.com/users/{userId}?message={messageId}",
        templateUriTemplate="https://app.example.com/templates/{templateId}?name={templateName}",
        originUriTemplate="https://app.example.com/{originType}s/{originId}?name={originName}&x={unknown}",
    )
    html = open_embedded(client, workspace, workspace.token()).text
    elements = Elements(html)
    assert link(html, "delivery-user-link") == "https://app.example.com/users/ada%20lovelace%2F1?message=m-1"
    assert (
        link(html, "delivery-template-link") == f"https://app.example.com/templates/{template}?name=Receipt"
    )
    assert (
        link(html, "delivery-origin-link") == f"https://app.example.com/journeys/{journey}?name=Checkout&x="
    )
    for testid in ["delivery-user-link", "delivery-template-link", "delivery-origin-link"]:
        [attrs] = elements.all("a", data_testid=testid)
        assert (attrs["target"], attrs["rel"]) == ("_top", "noopener")
    # Without templates, and in the console, the values are plain text.
    workspace.configure()
    plain = open_embedded(client, workspace, workspace.token()).text
    assert "ada lovelace/1" in plain and "delivery-user-link" not in plain


def test_unsafe_uri_templates_make_no_link(client: TestClient, acme: Workspace) -> None:
    acme.configure(
        userUriTemplate="javascript:alert('{userId}')",
        templateUriTemplate="/templates/{templateId}",
        originUriTemplate=" JavaScript:alert(1)//https://{originId}",
    )
    html = open_embedded(client, acme, acme.token()).text
    assert "javascript:" not in html.lower()
    assert "delivery-user-link" not in html
    assert "delivery-template-link" not in html
    assert "delivery-origin-link" not in html
    assert "Onboarding" in html  # still named, only not linked


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("https://app.test/u/{userId}", "https://app.test/u/a%2Fb%3Fc%23d"),
        ("HTTP://app.test/{userId}", "HTTP://app.test/a%2Fb%3Fc%23d"),
        ("https://{userId}.app.test/", "https://a%2Fb%3Fc%23d.app.test/"),
        ("https://app.test/{missing}", "https://app.test/"),
        ("javascript:alert({userId})", None),
        ("JaVaScRiPt:alert(1)//http://x", None),
        ("data:text/html,{userId}", None),
        ("//app.test/{userId}", None),
        ("/users/{userId}", None),
        ("https:/no-host/{userId}", None),
        ("\thttps://app.test/", None),
        ("https://app.test/ {userId}", None),
        ("", None),
        (None, None),
    ],
)
def test_expand_uri_template(template: str | None, expected: str | None) -> None:
    assert expand_uri_template(template, {"userId": "a/b?c#d"}) == expected


def test_filters_narrow_the_table(client: TestClient, acme: Workspace) -> None:
    token = acme.token(components=["DeliveriesTable"])
    onboarding, sale, welcome = acme.ids["Onboarding"], acme.ids["Spring sale"], acme.ids["Welcome email"]
    for pairs, expected in [
        ([], ["m-hook", "m-sms", "m-email"]),
        ([("channels", "Sms")], ["m-sms"]),
        ([("channels", "")], ["m-hook", "m-sms", "m-email"]),  # an untouched picker filters nothing
        ([("statuses", "DFEmailOpened")], ["m-email"]),
        ([("templateIds", welcome)], ["m-email"]),
        ([("origin", f"journey:{onboarding}")], ["m-email"]),
        ([("origin", f"broadcast:{sale}")], ["m-sms"]),
        ([("journeyId", onboarding)], ["m-email"]),  # a host's deep link, in the API's names
        ([("userId", " bob ")], ["m-sms"]),
        ([("userId", "anon-1")], ["m-hook"]),
        ([("startDate", TODAY), ("endDate", TODAY)], ["m-hook", "m-sms", "m-email"]),  # the whole day
        ([("endDate", "2000-01-01")], []),
        ([("startDate", "2999-01-01")], []),
        ([("channels", "Email"), ("statuses", "DFInternalMessageSent")], []),
    ]:
        response = fragment(client, acme, token, *pairs)
        assert response.status_code == 200, (pairs, response.text)
        assert "<html" not in response.text  # the results alone
        assert row_ids(response.text) == expected, pairs
        if not expected:
            assert "No deliveries match these filters." in response.text


def test_sorting(client: TestClient, acme: Workspace) -> None:
    token = acme.token()
    ascending = fragment(client, acme, token, ("sortBy", "status"), ("sortDirection", "Asc"))
    assert row_ids(ascending.text) == ["m-email", "m-hook", "m-sms"]
    oldest = fragment(client, acme, token, ("sortDirection", "Asc"))
    assert row_ids(oldest.text) == ["m-email", "m-sms", "m-hook"]


def test_cursor_pagination(client: TestClient, acme: Workspace) -> None:
    token = acme.token()
    first = fragment(client, acme, token, ("channels", "Email"), ("channels", "Sms"), ("limit", "1"))
    assert row_ids(first.text) == ["m-sms"]
    assert "page-previous" not in first.text and "page-first" not in first.text
    second_url = link(first.text, "page-next")
    # The pager keeps the filters and the page size, and never carries the token.
    assert second_url.startswith(f"{EMBED}?workspaceId={acme.id}&")
    assert (
        "channels=Email&channels=Sms" in second_url and "limit=1" in second_url and "token" not in second_url
    )
    headers = {"authorization": f"Bearer {token}", "hx-request": "true", "hx-target": "deliveries-results"}
    second = client.get(second_url, headers=headers)
    assert row_ids(second.text) == ["m-email"]
    assert "Rows 2–2" in second.text
    third = client.get(link(second.text, "page-next"), headers=headers)
    assert row_ids(third.text) == []
    assert "page-next" not in third.text
    back = client.get(link(second.text, "page-previous"), headers=headers)
    assert row_ids(back.text) == ["m-sms"]
    assert row_ids(client.get(link(third.text, "page-first"), headers=headers).text) == ["m-sms"]


def test_download_link_fetches_the_csv_of_the_filters(client: TestClient, acme: Workspace) -> None:
    token = acme.token(components=["DeliveriesTable"])
    html = fragment(client, acme, token, ("channels", "Email")).text
    [attrs] = Elements(html).all("a", data_testid="deliveries-download")
    href = attrs["href"]
    assert href is not None and token not in href
    assert href.startswith(f"/api-l/embedded/deliveries/download?workspaceId={acme.id}&channels=Email")
    assert attrs["data-download"] == f"deliveries-{TODAY}.csv"
    assert attrs["hx-boost"] == "false"
    # embed.js fetches it with the session token in the header.
    response = client.get(href, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    header, row = response.text.split("\n")
    assert header.startswith("sentAt,updatedAt,journeyId")
    assert ",m-email," in row


def test_bad_filters_are_a_400_naming_the_field(client: TestClient, acme: Workspace) -> None:
    token = acme.token()
    for pairs, field in [
        ([("channels", "Fax")], "channels"),
        ([("origin", "segment:1")], "origin"),
        ([("startDate", "yesterday")], "startDate"),
        ([("sortBy", "subject")], "sortBy"),
        ([("limit", "1000")], "limit"),
    ]:
        response = fragment(client, acme, token, *pairs)
        assert response.status_code == 400, (pairs, response.text)
        assert field in response.text, pairs
        page = open_embedded(client, acme, token, **dict(pairs))
        assert page.status_code == 400 and "<html" in page.text


def test_session_scope(client: TestClient, acme: Workspace) -> None:
    assert open_embedded(client, acme, acme.token(components=["DeliveriesTable"])).status_code == 200
    assert open_embedded(client, acme, acme.token()).status_code == 200  # no components: every screen
    out_of_scope = open_embedded(client, acme, acme.token(components=["Segment"]))
    assert out_of_scope.status_code == 403
    assert "m-email" not in out_of_scope.text
    assert client.get(EMBED, params={"workspaceId": acme.id}).status_code == 401
    assert open_embedded(client, acme, "not-a-token").status_code == 401
    # A token of one workspace does not open another's table.
    sibling = acme.parent.put_child("Tenant C", "tenant-c")
    assert open_embedded(client, Workspace(client, acme.parent, sibling.id), acme.token()).status_code == 403


def test_resource_ids_narrow_pickers_and_filters(client: TestClient, acme: Workspace) -> None:
    onboarding, sale = acme.ids["Onboarding"], acme.ids["Spring sale"]
    token = acme.token(resourceIds=[onboarding])
    html = open_embedded(client, acme, token).text
    options = {attrs.get("value") for attrs in Elements(html).all("option")}
    assert f"journey:{onboarding}" in options and f"broadcast:{sale}" not in options
    assert row_ids(fragment(client, acme, token, ("origin", f"journey:{onboarding}")).text) == ["m-email"]
    refused = fragment(client, acme, token, ("origin", f"broadcast:{sale}"))
    assert refused.status_code == 403
    assert "resourceIds" in refused.text


def test_console_in_anonymous_mode(client: TestClient, parent: ParentAccount) -> None:
    # Anonymous mode opens the first workspace: the parent, here.
    workspace = Workspace(client, parent, parent.id)
    workspace.events.sent("m-own", "ada", "2026-03-01T10:00:00Z", template="t", variant=EMAIL)
    workspace.configure(userUriTemplate="https://app.example.com/users/{userId}")
    response = client.get(CONSOLE)
    assert response.status_code == 200, response.text
    assert row_ids(response.text) == ["m-own"]
    assert "delivery-user-link" not in response.text  # host links belong to embeds
    download = link(response.text, "deliveries-download")
    assert download.startswith(f"/api/deliveries/download?workspaceId={parent.id}&")
    csv = client.get(download)
    assert csv.status_code == 200 and ",m-own," in csv.text
    assert row_ids(client.get(CONSOLE, params={"channels": "Sms"}).text) == []


def test_full_page_for_boosted_and_history_requests(client: TestClient, acme: Workspace) -> None:
    token = acme.token()
    headers = {"authorization": f"Bearer {token}", "hx-request": "true"}
    boosted = client.get(EMBED, params={"workspaceId": acme.id}, headers={**headers, "hx-boosted": "true"})
    assert "<html" in boosted.text and 'id="deliveries-filters"' in boosted.text
    restore = client.get(
        EMBED,
        params={"workspaceId": acme.id},
        headers={**headers, "hx-target": "deliveries-results", "hx-history-restore-request": "true"},
    )
    assert "<html" in restore.text
    assert unescape(link(boosted.text, "filter-reset")) == f"{EMBED}?workspaceId={acme.id}"
