"""`/api/public/subscription-management/*` (§5.3): links from real messages unsubscribe and subscribe,
the page shows and sets every group, previews change nothing, RFC 8058 one-click works, forged hashes
change nothing, hostile data is escaped, and other workspaces are never touched.

Users come from identify events computed by the compute loop; links are built by the same code that
renders them into messages.
"""

from __future__ import annotations

import uuid
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.bootstrap import SUBSCRIPTION_SECRET_NAME
from engine.messaging.links import subscription_management_url, unsubscribe_url
from engine.messaging.render import RenderContext
from engine.messaging.subscriptions import is_subscribed
from engine.storage.models import Secret
from engine.storage.resource_models import SubscriptionGroup
from tests.gateway.api.conftest import ParentAccount, Tenant

HOSTILE = "<script>alert('x')</script>\"'&"
PAGE = "/api/public/subscription-management/page"


class ParsedPage(HTMLParser):
    """What a person sees on the page: checkboxes by their label, hidden fields, notices, elements."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[str] = []
        self.inputs: list[dict[str, str | None]] = []
        self.labels: dict[str, str] = {}
        self.notices: list[str] = []
        self.workspace = ""
        self._open: list[str] = []
        self._checkbox: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append(tag)
        if tag == "input":
            self.inputs.append(attributes)
            if attributes.get("type") == "checkbox":
                self._checkbox = attributes["name"]
            return
        kind = (attributes.get("class") or "").split(" ")[0]
        if tag == "p" and kind == "notice":
            self.notices.append("")
        self._open.append(kind if tag == "p" and kind else tag)

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        where = self._open[-1] if self._open else ""
        if where == "span" and self._checkbox:
            self.labels[self._checkbox] = self.labels.get(self._checkbox, "") + data
        elif where == "notice":
            self.notices[-1] += data
        elif where == "workspace":
            self.workspace += data

    @property
    def checked(self) -> dict[str, bool]:
        """Group name → whether its box is ticked."""
        return {
            self.labels[str(field["name"])]: "checked" in field
            for field in self.inputs
            if field.get("type") == "checkbox"
        }

    @property
    def hidden(self) -> dict[str, str | None]:
        return {
            str(field["name"]): field.get("value") for field in self.inputs if field.get("type") == "hidden"
        }

    @property
    def boxes(self) -> dict[str, str]:
        """Group name → the checkbox's field name."""
        return {
            self.labels[str(f["name"])]: str(f["name"]) for f in self.inputs if f.get("type") == "checkbox"
        }


class Recipients:
    """A tenant whose users ann and bob have an email address, with an opt-in Newsletter group."""

    def __init__(self, client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
        self.client, self.parent, self.tenant, self.id = client, parent, tenant, tenant.id
        self.admin = {"authorization": f"Bearer {parent.admin_key}"}
        self.identify("ann", email="ann@example.com")
        self.identify("bob", email="bob@example.com")
        self.compute()
        newsletter = self.client.put(
            "/api/admin/subscription-groups",
            json={"workspaceId": self.id, "name": "Newsletter", "channel": "Email", "type": "OptIn"},
            headers=self.admin,
        )
        assert newsletter.status_code == 200, newsletter.text
        with client.app.state.sessions() as session:  # type: ignore[attr-defined]
            secret = session.scalars(
                select(Secret.value).where(
                    Secret.workspace_id == self.id, Secret.name == SUBSCRIPTION_SECRET_NAME
                )
            ).one()
            assert secret is not None
            self.secret = secret
            self.groups: dict[str, str] = {
                name: group_id
                for name, group_id in session.execute(
                    select(SubscriptionGroup.name, SubscriptionGroup.id).where(
                        SubscriptionGroup.workspace_id == self.id
                    )
                )
            }
        self.email = next(group_id for name, group_id in self.groups.items() if name.endswith("- Email"))
        self.sms = next(group_id for name, group_id in self.groups.items() if name.endswith("- SMS"))
        self.newsletter = self.groups["Newsletter"]

    def identify(self, user: str, **traits: Any) -> None:
        response = self.client.post(
            "/api/public/apps/identify",
            json={"userId": user, "messageId": str(uuid.uuid4()), "traits": traits},
            headers={"authorization": self.tenant.write_key},
        )
        assert response.status_code == 204, response.text

    def compute(self) -> None:
        summary = self.client.app.state.compute.compute(self.id)  # type: ignore[attr-defined]
        assert summary.failed == 0

    def link(self, user: str, email: str, *, group: str | None = None, preview: bool = False) -> str:
        """The unsubscribe link of a message of `group`, else the subscription-management link."""
        context = RenderContext(
            workspace_id=self.id,
            user={"id": user, "email": email},
            subscription_group_id=group,
            identifier_key="email",
            secrets={SUBSCRIPTION_SECRET_NAME: self.secret},
            is_preview=preview,
            base_url="http://testserver",
        )
        return unsubscribe_url(context) if group else subscription_management_url(context)

    def states(self, user: str) -> dict[str, bool]:
        response = self.client.get(
            "/api/admin/users/subscriptions",
            params={"workspaceId": self.id, "userId": user},
            headers=self.admin,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["workspaceId"], body["userId"]) == (self.id, user)
        return {group["id"]: group["isSubscribed"] for group in body["subscriptionGroups"]}

    def gated(self, group_id: str, user: str) -> bool:
        """What the send pipeline's gate says."""
        with self.client.app.state.sessions() as session:  # type: ignore[attr-defined]
            return is_subscribed(session, self.id, session.get_one(SubscriptionGroup, group_id), user)

    def change_events(self) -> int:
        [(count,)] = self.client.app.state.event_store.query(  # type: ignore[attr-defined]
            "SELECT count() FROM user_events_v2"
            " WHERE workspace_id = {w:String} AND event = 'DFSubscriptionChange'",
            {"w": self.id},
        )
        return int(count)

    def put_changes(self, identifier: str, user_hash: str, changes: dict[str, bool]) -> Any:
        return self.client.put(
            "/api/public/subscription-management/user-subscriptions",
            json={
                "workspaceId": self.id,
                "identifier": identifier,
                "identifierKey": "email",
                "hash": user_hash,
                "changes": changes,
            },
        )


def _query(url: str) -> dict[str, str]:
    return {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items()}


def _forged(url: str) -> str:
    user_hash = _query(url)["h"]
    return url.replace(f"h={user_hash}", f"h={user_hash[:-1]}{'0' if user_hash[-1] != '0' else '1'}")


@pytest.fixture
def recipients(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Recipients:
    return Recipients(client, parent, tenant)


def test_the_json_api_applies_changes_for_a_valid_hash(recipients: Recipients) -> None:
    user_hash = _query(recipients.link("ann", "ann@example.com"))["h"]
    response = recipients.put_changes("ann@example.com", user_hash, {recipients.newsletter: True})
    assert (response.status_code, response.content) == (204, b"")
    assert recipients.gated(recipients.newsletter, "ann") is True
    assert recipients.states("ann")[recipients.newsletter] is True
    assert recipients.states("bob")[recipients.newsletter] is False


def test_an_unsubscribe_link_leaves_every_group_of_its_channel_and_no_other(recipients: Recipients) -> None:
    r = recipients
    user_hash = _query(r.link("ann", "ann@example.com"))["h"]
    assert r.put_changes("ann@example.com", user_hash, {r.newsletter: True}).status_code == 204

    response = r.client.get(r.link("ann", "ann@example.com", group=r.email))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    expected = {r.email: False, r.newsletter: False, r.sms: True}
    assert r.states("ann") == expected
    assert {group: r.gated(group, "ann") for group in expected} == expected
    page = ParsedPage(response.text)
    assert page.checked == {"Tenant A - Email": False, "Newsletter": False, "Tenant A - SMS": True}
    assert any("unsubscribed" in notice for notice in page.notices)

    r.compute()
    assert r.states("ann") == expected
    assert {group: r.gated(group, "ann") for group in expected} == expected
    assert r.states("bob") == {r.email: True, r.newsletter: False, r.sms: True}


def test_a_subscribe_link_joins_only_its_group(recipients: Recipients) -> None:
    r = recipients
    url = r.link("bob", "bob@example.com", group=r.newsletter).replace("sub=0", "sub=1")
    assert r.client.get(url).status_code == 200
    assert r.states("bob") == {r.email: True, r.newsletter: True, r.sms: True}
    r.compute()
    assert r.gated(r.newsletter, "bob") is True


def test_the_page_lists_every_group_and_its_form_sets_them_all(recipients: Recipients) -> None:
    r = recipients
    url = r.link("ann", "ann@example.com")
    page = ParsedPage(r.client.get(url).text)
    assert page.checked == {"Tenant A - Email": True, "Newsletter": False, "Tenant A - SMS": True}
    query = _query(url)
    assert page.hidden == {
        "w": r.id,
        "h": query["h"],
        "i": "ann@example.com",
        "ik": "email",
        "isPreview": "false",
    }

    form = {**page.hidden, page.boxes["Newsletter"]: "true"}
    response = r.client.post(PAGE, data=form, follow_redirects=False)
    assert response.status_code == 302
    location = response.headers["location"]
    assert urlsplit(location).path == "page" and _query(location)["success"] == "true"
    assert r.states("ann") == {r.email: False, r.newsletter: True, r.sms: False}
    assert r.gated(r.email, "ann") is False

    shown = ParsedPage(r.client.get(f"{PAGE}?{urlsplit(location).query}").text)
    assert shown.checked == {"Tenant A - Email": False, "Newsletter": True, "Tenant A - SMS": False}
    assert shown.notices == ["Your preferences have been saved."]
    r.compute()
    assert r.states("ann") == {r.email: False, r.newsletter: True, r.sms: False}


def test_one_click_unsubscribe_reads_the_link_from_the_query_string(recipients: Recipients) -> None:
    r = recipients
    url = r.link("ann", "ann@example.com", group=r.email)
    response = r.client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert r.states("ann") == {r.email: False, r.newsletter: False, r.sms: True}
    assert r.gated(r.email, "ann") is False


def test_a_forged_hash_is_refused_everywhere_and_writes_nothing(recipients: Recipients) -> None:
    r = recipients
    link = r.link("ann", "ann@example.com", group=r.email)
    forged = _forged(link)
    assert r.client.get(forged).status_code == 401
    assert r.client.get(forged).json() == {"message": "Unauthorized"}
    assert r.client.post(forged, data={"List-Unsubscribe": "One-Click"}).status_code == 401
    form = {
        "w": r.id,
        "h": _query(forged)["h"],
        "i": "ann@example.com",
        "ik": "email",
        f"sub_{r.email}": "true",
    }
    assert r.client.post(PAGE, data=form, follow_redirects=False).status_code == 401
    response = r.put_changes("ann@example.com", _query(forged)["h"], {r.email: False})
    assert (response.status_code, response.json()) == (401, {"message": "Invalid user hash."})
    # ann's genuine hash does not open bob's address.
    bob = r.put_changes("bob@example.com", _query(link)["h"], {r.email: False})
    assert bob.status_code == 401
    assert r.change_events() == 0
    assert r.states("ann") == r.states("bob") == {r.email: True, r.newsletter: False, r.sms: True}


def test_a_preview_skips_the_hash_and_changes_nothing(recipients: Recipients) -> None:
    r = recipients
    link = _forged(r.link("ann", "ann@example.com", group=r.email, preview=True))
    response = r.client.get(link)
    assert response.status_code == 200
    page = ParsedPage(response.text)
    assert page.hidden["isPreview"] == "true"
    assert any(notice.startswith("Preview") for notice in page.notices)

    submitted = r.client.post(
        PAGE, data={**page.hidden, page.boxes["Newsletter"]: "true"}, follow_redirects=False
    )
    assert submitted.status_code == 302
    assert _query(submitted.headers["location"]) == {
        "w": r.id,
        "i": "ann@example.com",
        "ik": "email",
        "h": _query(link)["h"],
        "isPreview": "true",
        "previewSubmitted": "true",
    }
    assert r.client.post(link, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert r.change_events() == 0
    assert r.states("ann") == {r.email: True, r.newsletter: False, r.sms: True}


def test_hostile_names_and_identifiers_are_shown_as_text(client: TestClient, parent: ParentAccount) -> None:
    tenant = parent.put_child(HOSTILE, "hostile")
    r = Recipients(client, parent, tenant)
    address = f"{HOSTILE}@example.com"
    r.identify("mallory", email=address)
    r.compute()
    created = client.put(
        "/api/admin/subscription-groups",
        json={"workspaceId": r.id, "name": HOSTILE, "channel": "Email", "type": "OptOut"},
        headers=r.admin,
    )
    assert created.status_code == 200
    response = client.get(r.link("mallory", address))
    assert response.status_code == 200, response.text
    page = ParsedPage(response.text)
    assert "script" not in page.elements
    assert page.checked[HOSTILE] is True
    assert page.hidden["i"] == address
    assert page.workspace == HOSTILE


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"w": None}, "querystring/w"),
        ({"h": None}, "querystring/h"),
        ({"w": "not-a-workspace"}, "querystring/w"),
        ({"sub": "2"}, "querystring/sub"),
        ({"s": "not-a-group"}, "querystring/s"),
        ({"s": str(uuid.uuid4())}, "querystring/s"),
    ],
)
def test_missing_or_garbled_link_parameters_are_400s_naming_them(
    recipients: Recipients, change: dict[str, str | None], field: str
) -> None:
    params: dict[str, str | None] = {
        **_query(recipients.link("ann", "ann@example.com", group=recipients.email)),
        **change,
    }
    query = {key: value for key, value in params.items() if value is not None}
    for response in (
        recipients.client.get(PAGE, params=query),
        recipients.client.post(PAGE, params=query, data={"List-Unsubscribe": "One-Click"}),
    ):
        assert response.status_code == 400, response.text
        assert field in response.json()["message"]
    assert recipients.change_events() == 0


@pytest.mark.parametrize(
    ("request_kwargs", "field"),
    [
        ({"data": {}}, "body/w"),
        ({"data": {"w": "x", "i": "a", "ik": "email"}}, "body/h"),
        (
            {"content": b"\xff\xfe=\xff", "headers": {"content-type": "application/x-www-form-urlencoded"}},
            "body/w",
        ),
        ({"content": b"--x\r\ngarbage", "headers": {"content-type": "multipart/form-data; boundary=x"}}, ""),
    ],
)
def test_garbled_form_posts_are_400s(
    recipients: Recipients, request_kwargs: dict[str, Any], field: str
) -> None:
    response = recipients.client.post(PAGE, follow_redirects=False, **request_kwargs)
    assert response.status_code == 400, response.text
    assert field in response.json()["message"]


def test_garbled_json_updates_are_400s(recipients: Recipients) -> None:
    url = "/api/public/subscription-management/user-subscriptions"
    assert recipients.client.put(url, content=b"{").status_code == 400
    response = recipients.client.put(url, json={"workspaceId": recipients.id, "identifier": "a"})
    assert response.status_code == 400 and "body/identifierKey" in response.json()["message"]
    unknown = recipients.put_changes(
        "ann@example.com", _query(recipients.link("ann", "ann@example.com"))["h"], {"nope": True}
    )
    assert unknown.status_code == 400 and "nope" in unknown.json()["message"]


def test_another_workspace_is_never_touched(recipients: Recipients) -> None:
    r = recipients
    sibling = Recipients(r.client, r.parent, r.parent.put_child("Tenant B", "tenant-b"))
    assert r.client.get(r.link("ann", "ann@example.com", group=r.email)).status_code == 200
    assert r.states("ann")[r.email] is False
    assert sibling.states("ann") == {sibling.email: True, sibling.newsletter: False, sibling.sms: True}
    # A link of one workspace naming another's group changes nothing anywhere.
    foreign = r.link("ann", "ann@example.com", group=sibling.email)
    assert r.client.get(foreign).status_code == 400
    sibling_hash = _query(sibling.link("ann", "ann@example.com"))["h"]
    assert r.put_changes("ann@example.com", sibling_hash, {sibling.email: False}).status_code == 401
    assert sibling.put_changes("ann@example.com", sibling_hash, {r.newsletter: True}).status_code == 400
    assert sibling.change_events() == 0
    assert sibling.states("ann") == {sibling.email: True, sibling.newsletter: False, sibling.sms: True}
