"""The Webhook channel (Dittofeed §7.4): a template whose Liquid-rendered body is the JSON
`{config: RequestConfig, secret?: RequestConfig}` describing one HTTP request, axios-style
(`url, method, headers, params, data, responseType, timeout`).

`secret` overrides `config` (headers and params key by key) and is never recorded: the sent event keeps
only the `config` part. Every request carries `df-message-id`. As with axios, the method defaults to
GET, redirects are followed and only a 2xx answer is a success.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from engine.messaging.providers.base import (
    ProviderContext,
    ProviderDetails,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
)

WEBHOOK = "Webhook"
MESSAGE_ID_HEADER = "df-message-id"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
MAX_TIMEOUT_SECONDS = 60.0
# The answer is recorded in the sent event; a larger one is cut.
MAX_RECORDED_BODY_BYTES = 256 * 1024

Scalar = str | int | float | bool


class RequestConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    url: str | None = None
    method: str | None = None
    headers: dict[str, Scalar] | None = None
    params: dict[str, Any] | None = None
    data: Any = None
    responseType: Literal["json", "text"] | None = None  # the wire name
    timeout: float | None = None  # milliseconds, as axios counts


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    config: RequestConfig
    secret: RequestConfig | None = None


def send_webhook(
    rendered_body: str, message_id: str, context: ProviderContext, *, to: str | None = None
) -> ProviderDetails:
    """Send the request a rendered webhook template describes; returns the DFInternalMessageSent variant.

    :raises ProviderMisconfigured: the body is not the expected JSON or names no usable URL/method.
    :raises ProviderRejected: the endpoint answered outside 2xx (details: `{type, code, response}`).
    :raises ProviderUnavailable: the endpoint could not be reached or did not answer in time.
    """
    recorded_config, request = parse_webhook_body(rendered_body)
    url = _checked_url(request.url)
    method = (request.method or "GET").upper()
    if method not in METHODS:
        raise ProviderMisconfigured(
            f"Webhook method {request.method!r} is not one of {', '.join(sorted(METHODS))}"
        )
    headers = _headers(request.headers or {}, message_id)
    content = _content(request.data, headers)
    try:
        with context.http.stream(
            method,
            url,
            headers=headers,
            params=_params(request.params or {}),
            content=content,
            timeout=_timeout(request.timeout, context),
            follow_redirects=True,
        ) as answer:
            body = _read_limited(answer)
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable("Webhook did not answer in time") from exc
    except httpx.TooManyRedirects as exc:
        raise ProviderRejected(
            "Webhook redirected too many times", {"type": WEBHOOK, "code": "ERR_FR_TOO_MANY_REDIRECTS"}
        ) from exc
    except httpx.RequestError as exc:  # the URL or a header value cannot be sent, or the host is unreachable
        raise ProviderUnavailable(f"Webhook could not be reached ({type(exc).__name__})") from exc
    response = {
        "status": answer.status_code,
        "headers": {name: ", ".join(answer.headers.get_list(name)) for name in answer.headers},
        "body": _decoded(body, answer, request.responseType),
    }
    if not answer.is_success:
        code = "ERR_BAD_RESPONSE" if answer.status_code >= 500 else "ERR_BAD_REQUEST"
        raise ProviderRejected(
            f"Webhook answered {answer.status_code}", {"type": WEBHOOK, "code": code, "response": response}
        )
    sent: ProviderDetails = {"type": WEBHOOK}
    if to is not None:
        sent["to"] = to
    sent["request"] = recorded_config
    sent["response"] = response
    return sent


def parse_webhook_body(rendered_body: str) -> tuple[dict[str, Any], RequestConfig]:
    """The body's `config` as written (what may be recorded) and the request to make (config with the
    secret merged over it)."""
    try:
        parsed = json.loads(rendered_body)
    except json.JSONDecodeError as exc:
        raise ProviderMisconfigured(
            f"Webhook template body is not valid JSON ({exc.msg}, line {exc.lineno})"
        ) from exc
    try:
        body = WebhookBody.model_validate(parsed)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "body"
        raise ProviderMisconfigured(
            f"Webhook template body is not {{config, secret?}}: {where}: {problem['msg']}"
        ) from exc
    recorded = parsed["config"]
    if body.secret is None:
        return recorded, body.config
    merged = body.config.model_dump(exclude_none=True)
    for name, value in body.secret.model_dump(exclude_none=True).items():
        if name == "headers":
            merged[name] = _with_overrides(merged.get(name, {}), value)
        elif name == "params":
            merged[name] = {**merged.get(name, {}), **value}
        else:
            merged[name] = value
    return recorded, RequestConfig.model_validate(merged)


def _checked_url(url: str | None) -> str:
    if not url:
        raise ProviderMisconfigured("Webhook template body has no config.url (nor secret.url)")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ProviderMisconfigured("Webhook url is not a valid URL") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ProviderMisconfigured("Webhook url must be an http(s) URL with a host")
    return url


def _with_overrides(base: Mapping[str, Scalar], overrides: Mapping[str, Scalar]) -> dict[str, Scalar]:
    """Header names compare without case: an override replaces the base header of any spelling."""
    replaced = {name.lower() for name in overrides}
    return {**{k: v for k, v in base.items() if k.lower() not in replaced}, **overrides}


def _headers(headers: Mapping[str, Scalar], message_id: str) -> dict[str, str]:
    sent = {
        name: _text(value)
        for name, value in _with_overrides(headers, {MESSAGE_ID_HEADER: message_id}).items()
    }
    for name, value in sent.items():
        invalid_name = not name or not name.isascii() or any(c in name for c in " :\r\n")
        if invalid_name or not value.isascii() or "\r" in value or "\n" in value:
            raise ProviderMisconfigured(f"Webhook header {name!r} has an invalid name or value")
    return sent


def _params(params: Mapping[str, Any]) -> dict[str, str | list[str]]:
    return {
        name: [_text(v) for v in value] if isinstance(value, list) else _text(value)
        for name, value in params.items()
        if value is not None
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _content(data: Any, headers: dict[str, str]) -> bytes | None:
    """axios's encoding: a string as is, a form-encoded object when the content type asks for it,
    anything else as JSON."""
    if data is None:
        return None
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if isinstance(data, str):
        if content_type is None:
            headers["Content-Type"] = "text/plain;charset=utf-8"
        return data.encode()
    if (
        isinstance(data, dict)
        and content_type
        and content_type.startswith("application/x-www-form-urlencoded")
    ):
        return urlencode({k: _text(v) for k, v in data.items()}).encode()
    if content_type is None:
        headers["Content-Type"] = "application/json"
    return json.dumps(data, separators=(",", ":")).encode()


def _timeout(milliseconds: float | None, context: ProviderContext) -> httpx.Timeout:
    if milliseconds is None or milliseconds <= 0:  # axios: 0 means "no timeout"; ours stays bounded
        return context.http.timeout
    return httpx.Timeout(min(milliseconds / 1000.0, MAX_TIMEOUT_SECONDS))


def _read_limited(answer: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in answer.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_RECORDED_BODY_BYTES:
            break
    return b"".join(chunks)[:MAX_RECORDED_BODY_BYTES]


def _decoded(body: bytes, answer: httpx.Response, response_type: str | None) -> Any:
    text = body.decode(answer.encoding or "utf-8", errors="replace")
    if response_type == "text" or not text:
        return text
    try:
        return json.loads(text)
    except ValueError:  # axios falls back to the text when the answer is not JSON
        return text
