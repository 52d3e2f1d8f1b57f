"""`/api/admin/component-configurations` (Dittofeed §3.3) on SQLite and Postgres: upstream's bodies
and statuses, a parent's key managing its child's configurations and never the other way round; and
the configurations enforced on `/api-l/embedded/*` requests (an AnalysisChart's hard-coded filter
changes what chart-data returns, a Broadcast's hidden option and a MessageTemplate's editor types
are refused), while admin requests stay unrestricted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from gateway.settings import Settings
from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant, admin_key_for
from tests.support.delivery_events import EMAIL, SMS, DeliveryEvents

PATH = "/api/admin/component-configurations"
START = "2026-03-02T10:00:00.000Z"
END = "2026-03-02T11:00:00.000Z"
CODE_EMAIL = {"type": "Email", "from": "a@acme.test", "subject": "Hi", "body": "<p>Hi</p>"}
LOW_CODE_EMAIL = {**CODE_EMAIL, "emailContentsType": "LowCode", "body": {"type": "doc", "content": []}}


@pytest.fixture
def settings(settings: Settings, sql_url: str) -> Settings:
    """The app on each SQL store (the default fixture runs on SQLite only)."""
    return Settings(**{**settings.__dict__, "database_url": sql_url})


class ConfigurationsApi(AdminApi):
    prefix = PATH

    def put(self, **body: Any) -> httpx.Response:
        return self.call("PUT", **body)

    def delete(self, configuration_id: str, path: str = "") -> httpx.Response:
        params = {"workspaceId": self.workspace_id, "id": configuration_id}
        return self.client.delete(f"{self.prefix}{path}", params=params, headers=self.headers)

    def listed(self) -> list[dict[str, Any]]:
        response = self.get()
        assert response.status_code == 200, response.text
        configurations: list[dict[str, Any]] = response.json()["componentConfigurations"]
        return configurations


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def api(client: TestClient, parent: ParentAccount, tenant: Tenant) -> ConfigurationsApi:
    """The child's configurations, managed with the parent's key."""
    return ConfigurationsApi(client, parent.admin_key, tenant.id)


# -- the admin API -----------------------------------------------------------------------------------


def test_put_list_and_delete_with_and_without_the_trailing_slash(
    api: ConfigurationsApi, tenant: Tenant
) -> None:
    assert api.listed() == []
    definition = {
        "type": "Broadcast",
        "hideScheduledSelect": True,
        "stepsAllowList": ["RECIPIENTS", "CONTENT"],
    }
    created = ok(api.put(name="Broadcast", definition=definition))
    assert created == {"id": created["id"], "workspaceId": tenant.id, "definition": definition}
    assert uuid.UUID(created["id"])
    # Upserted by name: the same row, the new definition; `name` is never answered (upstream's schema).
    updated = ok(
        api.call("PUT", "/", name="Broadcast", definition={"type": "Broadcast", "hideRateLimit": True})
    )
    assert updated == {**created, "definition": {"type": "Broadcast", "hideRateLimit": True}}
    assert api.listed() == [updated]
    assert ok(api.get("/")) == {"componentConfigurations": [updated]}

    deleted = api.delete(created["id"], "/")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert api.listed() == []
    # Deleting again, or something that never existed, is still a 204.
    assert api.delete(created["id"]).status_code == 204
    assert api.delete("not-a-uuid").status_code == 204


def test_a_malformed_definition_is_a_400_naming_the_field(api: ConfigurationsApi) -> None:
    for definition, field in [
        ({"type": "Broadcast", "stepsAllowList": ["RECIPIENTS", "SEND"]}, "body/definition/stepsAllowList/1"),
        ({"type": "Nope"}, "body/definition/type"),
        (None, "body/definition"),
        ([1], "body/definition"),
        ({"type": "AnalysisChart", "hardcodedFilters": {"channels": ["Fax"]}},
         "body/definition/hardcodedFilters/channels/0"),
    ]:  # fmt: skip
        response = api.put(name="Broadcast", definition=definition)
        assert response.status_code == 400, response.text
        assert response.json()["message"].startswith(f"{field} ")
    missing_name = api.put(definition={"type": "Broadcast"})
    assert missing_name.status_code == 400
    assert "name" in missing_name.json()["message"]
    assert api.listed() == []


def test_rename_lookup_and_the_typed_400s(api: ConfigurationsApi) -> None:
    created = ok(api.put(name="Draft", definition={"type": "MessageTemplate"}))
    assert ok(api.put(name="MessageTemplate", id=created["id"])) == created
    assert ok(api.put(name="MessageTemplate")) == created
    for missing in (api.put(name="Nothing"), api.put(name="X", id=str(uuid.uuid4()))):
        assert (missing.status_code, missing.json()) == (400, {"type": "NotFound"})

    other = ok(api.put(name="Spare", definition={"type": "MessageTemplate"}))
    for clash in (
        api.put(name="MessageTemplate", id=other["id"]),
        api.put(name="MessageTemplate", id=str(uuid.uuid4()), definition={"type": "MessageTemplate"}),
    ):
        assert clash.status_code == 400
        assert clash.json() == {
            "type": "UniqueConstraintViolation",
            "message": "Names must be unique in workspace. Id's must be globally unique.",
        }
    bad_id = api.put(name="MessageTemplate", id="nope", definition={"type": "MessageTemplate"})
    assert (bad_id.status_code, bad_id.json()["type"]) == (400, "IdError")


def test_a_parent_key_manages_its_childs_configurations_and_not_the_reverse(
    client: TestClient, parent: ParentAccount, tenant: Tenant, api: ConfigurationsApi
) -> None:
    childs_row = ok(api.put(name="DeliveriesTable", definition={"type": "DeliveriesTable"}))
    as_parent = ConfigurationsApi(client, parent.admin_key, parent.id)
    parents_row = ok(as_parent.put(name="DeliveriesTable", definition={"type": "DeliveriesTable"}))

    child_key = admin_key_for(client, tenant.id)
    as_child = ConfigurationsApi(client, child_key, tenant.id)
    assert as_child.listed() == [childs_row]
    child_on_parent = ConfigurationsApi(client, child_key, parent.id)
    for attempt in (
        child_on_parent.get(),
        child_on_parent.put(name="DeliveriesTable", definition={"type": "DeliveriesTable", "hideX": 1}),
        child_on_parent.delete(parents_row["id"]),
    ):
        assert (attempt.status_code, attempt.json()) == (401, {"message": "API key not valid"})
    # Naming the parent's row from the child's own workspace neither updates nor deletes it.
    stolen = as_child.put(name="Mine", id=parents_row["id"], definition={"type": "DeliveriesTable"})
    assert (stolen.status_code, stolen.json()["type"]) == (400, "UniqueConstraintViolation")
    assert as_child.delete(parents_row["id"]).status_code == 204
    assert as_parent.listed() == [parents_row]

    assert api.delete(childs_row["id"]).status_code == 204
    assert as_child.listed() == []


def test_no_or_a_wrong_key_is_a_401(client: TestClient, tenant: Tenant) -> None:
    assert client.get(PATH, params={"workspaceId": tenant.id}).status_code == 401
    wrong = ConfigurationsApi(client, "0" * 64, tenant.id)
    assert wrong.put(name="Broadcast", definition={"type": "Broadcast"}).status_code == 401


# -- enforced on embedded requests -------------------------------------------------------------------


class Embedded:
    """Calls to `/api-l/embedded/*` with a session token minted for the child."""

    def __init__(self, client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
        minted = client.post(
            "/api-l/sessions",
            json={"workspaceId": tenant.id},
            headers={"authorization": f"Bearer {parent.admin_key}"},
        )
        token = ok(minted)["token"]
        self.client, self.workspace_id = client, tenant.id
        self.headers = {"authorization": f"Bearer {token}"}

    def query(self, path: str, *pairs: tuple[str, str]) -> httpx.Response:
        params = httpx.QueryParams([("workspaceId", self.workspace_id), *pairs])
        return self.client.get(f"/api-l/embedded{path}", params=params, headers=self.headers)

    def put(self, path: str, **body: Any) -> httpx.Response:
        return self.client.put(
            f"/api-l/embedded{path}", json={"workspaceId": self.workspace_id, **body}, headers=self.headers
        )


def _seed_deliveries(client: TestClient, workspace_id: str) -> None:
    """Email messages of journey j-1 at 10:05 and 10:20 and an Sms of broadcast b-1 at 10:40."""
    events = DeliveryEvents(client, workspace_id)
    for message_id, minute, variant, tags in [
        ("e1", 5, EMAIL, {"journeyId": "j-1"}),
        ("e2", 20, EMAIL, {"journeyId": "j-1"}),
        ("s1", 40, SMS, {"broadcastId": "b-1"}),
    ]:
        moment = datetime(2026, 3, 2, 10, minute, tzinfo=UTC)
        events.sent(message_id, "ada", moment.isoformat(), template="t", variant=variant, tags=tags,
                    processed_at=moment)  # fmt: skip


def _chart(reply: httpx.Response) -> list[tuple[str, int]]:
    return [(point["timestamp"], point["count"]) for point in ok(reply)["data"]]


def test_a_hardcoded_chart_filter_changes_what_embedded_chart_data_returns(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    _seed_deliveries(client, tenant.id)
    # Set on the parent: every child without its own AnalysisChart configuration inherits it.
    as_parent = ConfigurationsApi(client, parent.admin_key, parent.id)
    chart = {"type": "AnalysisChart", "hardcodedFilters": {"journeyIds": ["j-1"]}}
    ok(as_parent.put(name="AnalysisChart", definition=chart))
    embedded = Embedded(client, parent, tenant)
    admin = AdminApi(client, parent.admin_key, tenant.id)
    asked = (("startDate", START), ("endDate", END), ("granularity", "1hour"))
    other_journey = ("filters[journeyIds][0]", "j-2")
    the_broadcast = ("filters[broadcastIds][0]", "b-1")

    # The admin API answers what was asked: nothing was sent by j-2.
    unrestricted = client.get(
        "/api/admin/analysis/chart-data",
        params=httpx.QueryParams([("workspaceId", tenant.id), *asked, other_journey]),
        headers=admin.headers,
    )
    assert _chart(unrestricted) == []
    # The embedded chart counts j-1's two messages whatever journey the request names, and none else.
    hour = "2026-03-02T10:00:00.000Z"
    assert _chart(embedded.query("/analysis/chart-data", *asked, other_journey)) == [(hour, 2)]
    assert _chart(embedded.query("/analysis/chart-data", *asked)) == [(hour, 2)]
    assert _chart(embedded.query("/analysis/chart-data", *asked, the_broadcast)) == []
    summary = embedded.query("/analysis/summary", ("startDate", START), ("endDate", END))
    assert ok(summary)["summary"]["sent"] == 2


def test_embedded_chart_requests_outside_the_allowed_ones_are_403s(
    client: TestClient, parent: ParentAccount, tenant: Tenant, api: ConfigurationsApi
) -> None:
    _seed_deliveries(client, tenant.id)
    definition = {
        "type": "AnalysisChart",
        "allowedGroupBy": ["journey"],
        "allowedFilters": ["channels"],
        "allowedChannels": ["Sms"],
    }
    ok(api.put(name="AnalysisChart", definition=definition))
    embedded = Embedded(client, parent, tenant)
    asked = (("startDate", START), ("endDate", END), ("granularity", "1hour"))

    for pairs, field in [
        ((("groupBy", "provider"),), "querystring/groupBy"),
        ((("filters[userIds][0]", "ada"),), "querystring/filters/userIds"),
        ((("filters[channels][0]", "Email"),), "querystring/filters/channels"),
    ]:
        refused = embedded.query("/analysis/chart-data", *asked, *pairs)
        assert refused.status_code == 403, refused.text
        assert refused.json()["message"].startswith(f"{field} ")
    email_summary = embedded.query("/analysis/summary", ("startDate", START), ("endDate", END),
                                   ("filters[channel]", "Email"))  # fmt: skip
    assert email_summary.status_code == 403
    assert email_summary.json()["message"].startswith("querystring/filters/channel ")

    # A request naming no channel is narrowed to the allowed ones; the always-allowed groupings work.
    hour = "2026-03-02T10:00:00.000Z"
    assert _chart(embedded.query("/analysis/chart-data", *asked)) == [(hour, 1)]
    by_channel = ok(embedded.query("/analysis/chart-data", *asked, ("groupBy", "channel")))["data"]
    assert [(point["groupKey"], point["count"]) for point in by_channel] == [("Sms", 1)]
    summary = ok(embedded.query("/analysis/summary", ("startDate", START), ("endDate", END)))["summary"]
    assert summary == {"deliveries": 0, "sent": 1, "opens": 0, "clicks": 0, "bounces": 0}


def test_an_embedded_broadcast_write_may_not_set_a_hidden_option(
    client: TestClient, parent: ParentAccount, tenant: Tenant, api: ConfigurationsApi
) -> None:
    definition = {"type": "Broadcast", "hideRateLimit": True, "emailProviderOverrideAllowList": ["SendGrid"]}
    ok(api.put(name="Broadcast", definition=definition))
    embedded = Embedded(client, parent, tenant)
    limited = {"type": "V2", "message": {"type": "Email"}, "rateLimit": 5}

    refused = embedded.put("/broadcasts/v2", name="Sale", config=limited)
    assert refused.status_code == 403, refused.text
    assert refused.json()["message"].startswith("body/config/rateLimit ")
    smtp = {"type": "V2", "message": {"type": "Email", "providerOverride": "Smtp"}}
    refused = embedded.put("/broadcasts/v2", name="Sale", config=smtp)
    assert refused.status_code == 403
    assert refused.json()["message"].startswith("body/config/message/providerOverride ")

    sendgrid = {"type": "V2", "message": {"type": "Email", "providerOverride": "SendGrid"}}
    created = ok(embedded.put("/broadcasts/v2", name="Sale", config=sendgrid))
    assert created["config"] == sendgrid
    # The parent's backend is not held to the screen's configuration.
    admin = AdminApi(client, parent.admin_key, tenant.id)
    updated = admin.client.put(
        "/api/admin/broadcasts/v2",
        json={"workspaceId": tenant.id, "id": created["id"], "config": limited},
        headers=admin.headers,
    )
    assert ok(updated)["config"] == limited
    # Writing back the rate limit the broadcast already has is not setting it.
    renamed = ok(embedded.put("/broadcasts/v2", id=created["id"], name="Big sale", config=limited))
    assert (renamed["name"], renamed["config"]) == ("Big sale", limited)


def test_an_embedded_template_write_keeps_to_the_allowed_email_editors(
    client: TestClient, parent: ParentAccount, tenant: Tenant, api: ConfigurationsApi
) -> None:
    low_code_only = {"type": "MessageTemplate", "allowedEmailContentsTypes": ["LowCode"]}
    ok(api.put(name="MessageTemplate", definition=low_code_only))
    embedded = Embedded(client, parent, tenant)

    refused = embedded.put("/content/templates", name="Welcome", definition=CODE_EMAIL)
    assert refused.status_code == 403, refused.text
    assert refused.json()["message"].startswith("body/definition/emailContentsType ")
    refused = embedded.put("/content/templates", name="Welcome", draft=CODE_EMAIL)
    assert refused.json()["message"].startswith("body/draft/emailContentsType ")
    reset = embedded.put("/content/templates/reset", name="Welcome", type="Email", emailContentsType="Code")
    assert reset.status_code == 403
    assert reset.json()["message"].startswith("body/emailContentsType ")
    assert embedded.put("/content/templates/reset", name="Welcome", type="Email").status_code == 403

    created = ok(embedded.put("/content/templates", name="Welcome", definition=LOW_CODE_EMAIL))
    assert created["definition"] == LOW_CODE_EMAIL
    assert ok(embedded.put("/content/templates", name="Text", definition={"type": "Sms", "body": "Hi"}))
    # The admin API is not held to it.
    admin = AdminApi(client, parent.admin_key, tenant.id)
    code = admin.client.put(
        "/api/admin/content/templates",
        json={"workspaceId": tenant.id, "name": "Code one", "definition": CODE_EMAIL},
        headers=admin.headers,
    )
    assert ok(code)["definition"] == CODE_EMAIL
