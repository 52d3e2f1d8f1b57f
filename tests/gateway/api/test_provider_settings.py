"""`/api/admin/settings/{email,sms,mobile-push}-providers` (Dittofeed §6.11): configurations stored
whole, defaults chosen by id or type, and secrets never read back in full."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant


class Api(AdminApi):
    prefix = "/api/admin/settings"


@pytest.fixture
def api(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Api:
    return Api(client, parent.admin_key, tenant.id)


def test_a_configuration_is_stored_whole_and_listed_with_its_secrets_masked(api: Api) -> None:
    config = {"type": "SendGrid", "apiKey": "SG.abcdefghijklmnop-1234", "webhookKey": "MFkwEwYHKoZIzj0CAQY"}
    assert api.call("PUT", "/email-providers", config=config).status_code == 201
    assert (
        api.call(
            "PUT", "/email-providers", config={"type": "SendGrid", "apiKey": "SG.other-key-5678"}
        ).status_code
        == 201
    )

    listed = {p["type"]: p for p in api.get("/email-providers").json()["emailProviders"]}
    assert listed["SendGrid"]["config"] == {"type": "SendGrid", "apiKey": "••••5678"}  # replaced, not merged
    assert listed["SendGrid"]["isDefault"] is False
    assert "Test" in listed
    assert "SG.other-key-5678" not in api.get("/email-providers").text


def test_the_default_is_chosen_by_type_or_by_setting_it_with_the_configuration(api: Api) -> None:
    smtp = {"type": "Smtp", "host": "mail.example.com", "port": "587", "password": "hunter2-hunter2"}
    assert api.call("PUT", "/email-providers", config=smtp, setDefault=True).status_code == 201
    listed = {p["type"]: p for p in api.get("/email-providers").json()["emailProviders"]}
    assert listed["Smtp"]["isDefault"] and listed["Smtp"]["config"]["password"] == "••••ter2"

    twilio = {"type": "Twilio", "accountSid": "AC123", "messagingServiceSid": "MG1", "authToken": "t" * 32}
    assert api.call("PUT", "/sms-providers", config=twilio).status_code == 201
    assert api.call("PUT", "/sms-providers/default", smsProvider="Twilio").status_code == 201
    sms = {p["type"]: p for p in api.get("/sms-providers").json()["smsProviders"]}
    assert sms["Twilio"]["isDefault"] and not sms["Test"]["isDefault"]
    assert (
        api.call("PUT", "/email-providers/default", emailProvider="Test", fromAddress=None).status_code == 201
    )
    listed = {p["type"]: p for p in api.get("/email-providers").json()["emailProviders"]}
    assert listed["Test"]["isDefault"] and not listed["Smtp"]["isDefault"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/email-providers", {"config": {"type": "Carrier-Pigeon"}}, "config/type"),
        ("/email-providers", {"config": {"type": "Smtp", "hostname": "x"}}, "config/hostname"),
        ("/email-providers", {"config": {"type": "Smtp", "port": 25}}, "config/port"),
        ("/sms-providers", {"config": {"type": "SendGrid"}}, "config/type"),
        ("/email-providers/default", {"emailProvider": "Nope"}, "emailProvider"),
        ("/email-providers/default", {}, "emailProvider"),
    ],
)
def test_bad_settings_are_400s_naming_the_field(
    api: Api, path: str, body: dict[str, object], field: str
) -> None:
    response = api.call("PUT", path, **body)
    assert response.status_code == 400, response.text
    assert field in response.json()["message"]


def test_an_unknown_provider_id_is_404(api: Api) -> None:
    response = api.call(
        "PUT", "/email-providers/default", emailProviderId="00000000-0000-4000-8000-000000000000"
    )
    assert response.status_code == 404
