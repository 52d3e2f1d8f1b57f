"""`/api/admin/content/templates`: Dittofeed's wire shapes for list, upsert (published definition and
draft), reset to a channel's default and delete; typed 400 bodies naming the field."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant, admin_key_for

SMS = {"type": "Sms", "body": "Hi {{ user.firstName }}"}
EMAIL = {"type": "Email", "from": "hello@acme.test", "subject": "Hi", "body": "<p>Hi</p>"}


class Api(AdminApi):
    prefix = "/api/admin/content/templates"

    def list(self, **query: Any) -> list[dict[str, Any]]:
        response = self.get(**query)
        assert response.status_code == 200, response.text
        templates: list[dict[str, Any]] = response.json()["templates"]
        return templates


@pytest.fixture
def api(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Api:
    return Api(client, parent.admin_key, tenant.id)


def test_upsert_by_name_then_by_id_and_list(api: Api) -> None:
    created = api.call("PUT", name="welcome", definition=SMS)
    assert created.status_code == 200, created.text
    body = created.json()
    assert set(body) == {"workspaceId", "id", "name", "type", "definition", "updatedAt"}
    assert (body["workspaceId"], body["type"], body["definition"]) == (api.workspace_id, "Sms", SMS)

    again = api.call("PUT", name="welcome", definition={**SMS, "body": "v2"}).json()
    assert again["id"] == body["id"] and again["definition"]["body"] == "v2"
    renamed = api.call("PUT", id=body["id"], name="greeting").json()
    assert (renamed["name"], renamed["definition"]["body"]) == ("greeting", "v2")  # untouched when not sent

    listed = {t["name"]: t for t in api.list()}
    assert listed["greeting"] == renamed
    assert [t["id"] for t in api.list(ids=body["id"])] == [body["id"]]


def test_a_draft_is_kept_apart_and_cleared_by_null_or_a_channel_change(api: Api) -> None:
    template = api.call("PUT", name="t", definition=SMS, draft={**SMS, "body": "draft"}).json()
    assert template["draft"]["body"] == "draft" and template["definition"] == SMS
    assert "draft" not in api.call("PUT", id=template["id"], name="t", draft=None).json()

    api.call("PUT", id=template["id"], name="t", draft={**SMS, "body": "draft"})
    moved = api.call("PUT", id=template["id"], name="t", definition=EMAIL).json()
    assert moved["type"] == "Email" and "draft" not in moved


def test_a_template_with_only_a_draft_takes_its_type_from_the_draft(api: Api) -> None:
    template = api.call("PUT", name="t", draft=EMAIL).json()
    assert (template["type"], "definition" in template) == ("Email", False)


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"type": "Fax", "body": "x"}, "body/definition/type"),
        ({"type": "Sms"}, "body/definition/body"),
        ({"type": "Email", "subject": "s", "body": "b"}, "body/definition/from"),
        ({**EMAIL, "emailContentsType": "LowCode"}, "body/definition/body"),
        ({"type": "Webhook", "body": "{}"}, "body/definition/identifierKey"),
        ("not an object", "body/definition"),
    ],
)
def test_bad_definitions_are_400s_naming_the_field(api: Api, definition: Any, field: str) -> None:
    response = api.call("PUT", name="bad", definition=definition)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(field)
    assert all(t["name"] != "bad" for t in api.list())


def test_typed_errors(api: Api) -> None:
    bad_id = api.call("PUT", id="not-a-uuid", name="x", definition=SMS)
    assert (bad_id.status_code, bad_id.json()["type"]) == (400, "IdError")
    missing_key = api.call("PUT", name="x", definition={**SMS, "identifierKey": "fax"})
    assert missing_key.status_code == 400
    assert missing_key.json()["type"] == "InvalidIdentifierKey"
    assert missing_key.json()["identifierKey"] == "fax"
    first = api.call("PUT", name="one", definition=SMS).json()
    api.call("PUT", name="two", definition=SMS)
    clash = api.call("PUT", id=first["id"], name="two")
    assert (clash.status_code, clash.json()["type"]) == (400, "UniqueConstraintViolation")


@pytest.mark.parametrize(
    ("channel", "contents_type", "expected"),
    [
        ("Email", None, {"type": "Email", "emailContentsType": "Code", "replyTo": ""}),
        ("Email", "LowCode", {"type": "Email", "emailContentsType": "LowCode"}),
        ("Sms", None, {"type": "Sms", "body": "Example message to {{ user.phone }}"}),
        ("Webhook", None, {"type": "Webhook", "identifierKey": "email"}),
    ],
)
def test_reset_writes_the_channel_default(
    api: Api, channel: str, contents_type: str | None, expected: dict[str, Any]
) -> None:
    extra = {"emailContentsType": contents_type} if contents_type else {}
    response = api.call("PUT", "/reset", name=f"new {channel}", type=channel, **extra)
    assert response.status_code == 200, response.text
    definition = response.json()["definition"]
    assert expected.items() <= definition.items()
    if channel == "Email":
        assert definition["subject"] == "Hi {{ user.firstName | default: 'there'}}!"


def test_reset_of_mobile_push_is_a_400_not_upstreams_500(api: Api) -> None:
    response = api.call("PUT", "/reset", name="push", type="MobilePush")
    assert response.status_code == 400
    assert "body/type" in response.json()["message"]


def test_delete_by_body_and_by_query(api: Api) -> None:
    first = api.call("PUT", name="a", definition=SMS).json()
    second = api.call("PUT", name="b", definition=SMS).json()
    assert api.call("DELETE", id=first["id"], type="Sms").status_code == 204
    assert api.call("DELETE", id=first["id"], type="Sms").status_code == 404
    gone = api.client.delete(
        f"{api.prefix}/v2",
        params={"workspaceId": api.workspace_id, "id": second["id"], "type": "Sms"},
        headers=api.headers,
    )
    assert gone.status_code == 204
    assert {t["name"] for t in api.list()} & {"a", "b"} == set()


def test_a_sibling_cannot_read_or_change_templates(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    sibling = parent.put_child("Sibling", f"sibling-{uuid.uuid4().hex[:6]}")
    template = Api(client, parent.admin_key, tenant.id).call("PUT", name="mine", definition=SMS).json()
    intruder = Api(client, admin_key_for(client, sibling.id), tenant.id)
    assert intruder.call("PUT", id=template["id"], name="stolen").status_code in (401, 403)
    own = Api(client, admin_key_for(client, sibling.id), sibling.id)
    assert own.call("DELETE", id=template["id"]).status_code == 404
    assert own.call("PUT", id=template["id"], name="x", definition=SMS).json().get("type") == (
        "UniqueConstraintViolation"
    )


def _render(
    api: Api, contents: dict[str, Any], user: dict[str, Any], channel: str = "Email"
) -> dict[str, Any]:
    response = api.call("POST", "/render", channel=channel, contents=contents, userProperties=user)
    assert response.status_code == 200, response.text
    rendered: dict[str, Any] = response.json()["contents"]
    return rendered


def test_render_each_entry_on_its_own(api: Api) -> None:
    rendered = _render(
        api,
        {
            "subject": {"type": "PlainText", "value": "Hi {{ user.firstName | default: 'there' }}"},
            "body": {
                "type": "Mjml",
                "value": "<mjml><mj-body><mj-text>{{ user.plan }}</mj-text></mj-body></mjml>",
            },
            "broken": {"type": "PlainText", "value": "{{ user.missing }}"},
        },
        {"id": "u1", "firstName": "Ann", "plan": "pro"},
    )
    assert rendered["subject"] == {"type": "Ok", "value": "Hi Ann"}
    body = rendered["body"]
    assert body["type"] == "Ok" and "pro" in body["value"] and "<mjml>" not in body["value"]
    assert rendered["broken"]["type"] == "Err" and "missing" in rendered["broken"]["err"]


def test_render_makes_hostile_traits_inert_in_email_html(api: Api) -> None:
    hostile = "<script>alert(1)</script>{{ secrets }}"
    rendered = _render(
        api,
        {
            "body": {
                "type": "Mjml",
                "value": "<mjml><mj-body><mj-text>{{ user.name }}</mj-text></mj-body></mjml>",
            }
        },
        {"id": "u1", "name": hostile},
    )
    html = rendered["body"]["value"]
    assert "<script>" not in html and "&lt;script&gt;" in html and "{{ secrets }}" in html


def test_render_builds_unsubscribe_links_from_the_workspace_secret(api: Api) -> None:
    rendered = _render(
        api,
        {"link": {"type": "PlainText", "value": "{% unsubscribe_url %}"}},
        {"id": "u1", "email": "ann@example.com"},
    )
    url = rendered["link"]["value"]
    assert url.startswith("http://localhost:3000/") and "ann%40example.com" in url
    no_email = _render(api, {"link": {"type": "PlainText", "value": "{% unsubscribe_url %}"}}, {"id": "u1"})
    assert no_email["link"] == {"type": "Ok", "value": ""}
