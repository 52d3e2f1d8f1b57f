"""The Webhook channel: a rendered `{config, secret?}` body becomes one HTTP request; the sent event
keeps the config part and the answer, never the secret."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engine.messaging.providers.base import (
    ProviderContext,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
)
from engine.messaging.providers.webhook import send_webhook
from tests.support.net import free_port
from tests.support.provider_servers import ProviderServers

MESSAGE_ID = "6f2d0c1e-8a7b-4c3d-9e2f-1a0b9c8d7e6f"
SECRET = "Bearer whk_live_0123456789"


def body(config: dict[str, Any], secret: dict[str, Any] | None = None) -> str:
    return json.dumps({"config": config} | ({"secret": secret} if secret is not None else {}))


def test_a_post_sends_config_and_secret_and_records_only_the_config(
    servers: ProviderServers, context: ProviderContext
) -> None:
    config = {
        "url": f"{servers.url}/hooks/users",
        "method": "POST",
        "headers": {"Authorization": "placeholder", "X-Source": "feedgate"},
        "params": {"list": "vip", "page": 2},
        "data": {"email": "bruno@customer.example", "plan": "pro"},
    }

    sent = send_webhook(body(config, {"headers": {"authorization": SECRET}}), MESSAGE_ID, context, to="bruno")

    request = servers.last("webhook")
    assert (request.method, request.path, request.query) == ("POST", "/hooks/users", "list=vip&page=2")
    assert request.headers["authorization"] == SECRET  # the secret wins, whatever its spelling
    assert request.headers["x-source"] == "feedgate"
    assert request.headers["df-message-id"] == MESSAGE_ID
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"email": "bruno@customer.example", "plan": "pro"}
    assert sent["type"] == "Webhook"
    assert sent["to"] == "bruno"
    assert sent["request"] == config
    assert sent["response"]["status"] == 200
    assert sent["response"]["body"] == {"received": True}
    assert sent["response"]["headers"]["content-type"] == "application/json"
    assert SECRET not in json.dumps(sent)


def test_the_method_defaults_to_get_as_with_axios(servers: ProviderServers, context: ProviderContext) -> None:
    send_webhook(body({"url": f"{servers.url}/hooks/ping"}), MESSAGE_ID, context)

    request = servers.last("webhook")
    assert request.method == "GET"
    assert request.body == b""


def test_a_secret_url_is_used_but_not_recorded(servers: ProviderServers, context: ProviderContext) -> None:
    secret_url = f"{servers.url}/hooks/token-abc"

    sent = send_webhook(body({"method": "PUT"}, {"url": secret_url}), MESSAGE_ID, context)

    assert servers.last("webhook").path == "/hooks/token-abc"
    assert sent["request"] == {"method": "PUT"}


def test_string_and_form_data_are_sent_as_axios_sends_them(
    servers: ProviderServers, context: ProviderContext
) -> None:
    url = f"{servers.url}/hooks/in"
    send_webhook(body({"url": url, "method": "POST", "data": "plain words"}), MESSAGE_ID, context)
    assert servers.last("webhook").body == b"plain words"

    form = {"url": url, "method": "POST", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}
    send_webhook(body({**form, "data": {"a": 1, "b": "x y"}}), MESSAGE_ID, context)
    assert servers.last("webhook").form() == {"a": "1", "b": "x y"}


@pytest.mark.parametrize(
    ("response_type", "answer", "recorded"),
    [
        (None, {"ok": 1}, {"ok": 1}),
        (None, "not json", "not json"),
        ("text", {"ok": 1}, '{"ok": 1}'),
    ],
)
def test_the_answer_body_is_parsed_per_response_type(
    response_type: str | None,
    answer: Any,
    recorded: Any,
    servers: ProviderServers,
    context: ProviderContext,
) -> None:
    servers.answer_next("webhook", 200, answer)
    config: dict[str, Any] = {"url": f"{servers.url}/hooks/x"}
    if response_type:
        config["responseType"] = response_type

    assert send_webhook(body(config), MESSAGE_ID, context)["response"]["body"] == recorded


def test_redirects_are_followed(servers: ProviderServers, context: ProviderContext) -> None:
    servers.answer_next("webhook", 302, "", {"location": f"{servers.url}/hooks/moved"})

    sent = send_webhook(body({"url": f"{servers.url}/hooks/old"}), MESSAGE_ID, context)

    assert [r.path for r in servers.sent("webhook")] == ["/hooks/old", "/hooks/moved"]
    assert sent["response"]["status"] == 200


@pytest.mark.parametrize(("status", "code"), [(404, "ERR_BAD_REQUEST"), (500, "ERR_BAD_RESPONSE")])
def test_an_answer_outside_2xx_is_rejected_with_code_and_response(
    status: int, code: str, servers: ProviderServers, context: ProviderContext
) -> None:
    servers.answer_next("webhook", status, {"error": "no such user"})

    with pytest.raises(ProviderRejected) as refused:
        send_webhook(
            body({"url": f"{servers.url}/hooks/x"}, {"headers": {"Authorization": SECRET}}),
            MESSAGE_ID,
            context,
        )

    details = refused.value.details
    assert (details["type"], details["code"]) == ("Webhook", code)
    assert details["response"]["status"] == status
    assert details["response"]["body"] == {"error": "no such user"}
    assert SECRET not in str(refused.value) + json.dumps(details)


def test_an_unreachable_endpoint_is_transient(context: ProviderContext) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook?token=secret-in-url"

    with pytest.raises(ProviderUnavailable) as unreachable:
        send_webhook(body({"url": url}), MESSAGE_ID, context)

    assert "secret-in-url" not in str(unreachable.value)


def test_an_endpoint_slower_than_the_timeout_is_transient(
    servers: ProviderServers, context: ProviderContext
) -> None:
    with pytest.raises(ProviderUnavailable, match="in time"):
        send_webhook(body({"url": f"{servers.url}/slow", "timeout": 100}), MESSAGE_ID, context)


@pytest.mark.parametrize(
    ("rendered", "named"),
    [
        ('{"config": {"url": "http://x"', "not valid JSON"),
        ('["config"]', "config"),
        ('{"secret": {"url": "http://x"}}', "config"),
        ('{"config": {"url": "http://x", "responseType": "blob"}}', "responseType"),
        ('{"config": {"method": "POST"}}', "url"),
        ('{"config": {"url": "file:///etc/passwd"}}', "http"),
        ('{"config": {"url": "http://x", "method": "FETCH"}}', "method"),
        ('{"config": {"url": "http://x", "headers": {"X-A": "a\\r\\nX-B: b"}}}', "header"),
        ('{"config": {"url": "http://x", "headers": {"X-A": "caf\u00e9"}}}', "header"),
    ],
)
def test_a_body_that_is_not_a_usable_request_is_misconfigured(
    rendered: str, named: str, servers: ProviderServers, context: ProviderContext
) -> None:
    with pytest.raises(ProviderMisconfigured, match=named):
        send_webhook(rendered, MESSAGE_ID, context)

    assert servers.sent("webhook") == []
