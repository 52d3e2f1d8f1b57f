"""`GET /api/public/view-in-browser` serves a sent email's stored HTML to whoever holds its link, under
a policy that runs nothing in it; a wrong hash, a missing email and disabled blob storage are refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from engine.messaging.links import VIEW_IN_BROWSER_SECRET_NAME, view_in_browser_hash, view_in_browser_url
from engine.messaging.render import RenderContext
from engine.messaging.view_in_browser import store_email_body
from gateway.app import create_app
from gateway.settings import BlobStorageSettings, Settings

WORKSPACE = "11111111-1111-4111-8111-111111111111"
MESSAGE = "msg-1"
HTML = "<!doctype html><html><body><p>Hello Ann — ünïcode</p><script>alert(1)</script></body></html>"
PATH = "/api/public/view-in-browser"


@pytest.fixture
def settings_with_blobs(settings: Settings) -> Settings:
    return replace(settings, blob_storage=BlobStorageSettings(enabled=True))


@pytest.fixture
def client(settings_with_blobs: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings_with_blobs, run_worker=False)) as test_client:
        yield test_client


def _hash(secret: str, workspace_id: str = WORKSPACE, message_id: str = MESSAGE) -> str:
    return view_in_browser_hash(workspace_id=workspace_id, message_id=message_id, secret=secret)


def _view(client: TestClient, h: str, w: str = WORKSPACE, m: str = MESSAGE) -> httpx.Response:
    return client.get(PATH, params={"w": w, "m": m, "h": h})


def _store(client: TestClient, html: str = HTML, message_id: str = MESSAGE) -> None:
    store_email_body(client.app.state.blob_store, WORKSPACE, message_id, html)  # type: ignore[attr-defined]


def test_the_stored_email_is_served_as_html(client: TestClient, settings: Settings) -> None:
    _store(client)
    response = _view(client, _hash(settings.secret_key))
    assert response.status_code == 200
    assert response.text == HTML
    assert response.headers["content-type"] == "text/html; charset=utf-8"


def test_the_email_is_served_under_a_policy_that_runs_no_script(
    client: TestClient, settings: Settings
) -> None:
    _store(client)
    response = _view(client, _hash(settings.secret_key))
    directives = {
        part.split()[0]: part.split()[1:]
        for part in response.headers["content-security-policy"].split(";")
        if part.strip()
    }
    assert directives["default-src"] == ["'none'"]
    assert "script-src" not in directives  # falls back to default-src 'none'
    assert "sandbox" in directives and "allow-scripts" not in directives["sandbox"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'none'"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_the_link_the_liquid_tag_builds_opens_the_email(client: TestClient, settings: Settings) -> None:
    _store(client)
    context = RenderContext(
        workspace_id=WORKSPACE,
        user={"id": "u-1"},
        message_id=MESSAGE,
        secrets={VIEW_IN_BROWSER_SECRET_NAME: settings.secret_key},
        base_url="https://feedgate.example.com",
    )
    url = urlsplit(view_in_browser_url(context))
    response = client.get(f"{url.path}?{url.query}")
    assert (response.status_code, response.text) == (200, HTML)


def test_a_hash_made_with_a_retired_secret_key_still_opens_the_email(
    settings_with_blobs: Settings,
) -> None:
    rotated = replace(settings_with_blobs, secret_key="new-key", secret_key_fallbacks=("test-secret-key",))
    with TestClient(create_app(rotated, run_worker=False)) as client:
        _store(client)
        assert _view(client, _hash("test-secret-key")).status_code == 200
        assert _view(client, _hash("new-key")).status_code == 200


@pytest.mark.parametrize("bad", ["0" * 64, "ünïcode-hash", "not hex at all"])
def test_a_wrong_hash_is_401(client: TestClient, bad: str) -> None:
    _store(client)
    response = _view(client, bad)
    assert response.status_code == 401 and "Hello Ann" not in response.text


def test_an_empty_hash_is_400_naming_it(client: TestClient) -> None:
    response = _view(client, "")
    assert response.status_code == 400 and "querystring/h" in response.json()["message"]


def test_a_hash_for_one_message_opens_no_other(client: TestClient, settings: Settings) -> None:
    _store(client, message_id="msg-2")
    other_message = _hash(settings.secret_key, message_id=MESSAGE)
    other_workspace = _hash(settings.secret_key, workspace_id="22222222-2222-4222-8222-222222222222")
    for wrong in (other_message, other_workspace, _hash("other-secret", message_id="msg-2")):
        assert _view(client, wrong, m="msg-2").status_code == 401


def test_an_email_never_stored_is_404(client: TestClient, settings: Settings) -> None:
    assert _view(client, _hash(settings.secret_key, message_id="never"), m="never").status_code == 404


def test_with_blob_storage_disabled_a_valid_link_is_400(settings: Settings) -> None:
    with TestClient(create_app(settings, run_worker=False)) as client:
        assert client.app.state.blob_store is None  # type: ignore[attr-defined]
        response = _view(client, _hash(settings.secret_key))
        assert response.status_code == 400
        assert "Blob storage" in response.json()["message"]
        # The hash is checked first, as upstream: a wrong one is still 401.
        assert _view(client, "0" * 64).status_code == 401


@pytest.mark.parametrize("missing", ["w", "m", "h"])
def test_a_missing_parameter_is_400_naming_it(client: TestClient, settings: Settings, missing: str) -> None:
    params = {"w": WORKSPACE, "m": MESSAGE, "h": _hash(settings.secret_key)}
    del params[missing]
    response = client.get(PATH, params=params)
    assert response.status_code == 400
    assert f"querystring/{missing}" in response.json()["message"]
