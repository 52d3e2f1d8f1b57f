"""The demo's sample parent page: it mints sessions through the API like a real parent backend and
frames the screens from the other host name, with its own origin as the only allowed frame ancestor."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest

from gateway import operator
from gateway.app import create_app
from gateway.sample_parent import PAGE_PATH, SampleParent, sample_parent_routes
from gateway.settings import Settings
from tests.support.net import ThreadedServer


@pytest.fixture
def demo(settings: Settings) -> Iterator[tuple[str, SampleParent]]:
    operator.seed_demo(settings)
    account = operator.prepare_sample_parent(settings)
    assert account is not None
    server = ThreadedServer(
        create_app(settings, run_worker=False, extra_routes=sample_parent_routes(account))
    )
    server.start()
    try:
        yield server.url, account
    finally:
        server.stop()


def test_the_page_frames_every_screen_from_the_other_host_with_a_fresh_token(
    demo: tuple[str, SampleParent],
) -> None:
    url, account = demo

    page = httpx.get(f"{url}{PAGE_PATH}")
    sources = [src.replace("&amp;", "&") for src in re.findall(r'<iframe[^>]* src="([^"]+)"', page.text)]

    assert page.status_code == 200
    assert len(sources) >= 4
    for source in sources:
        parts = urlsplit(source)
        assert parts.hostname == "localhost"
        assert parts.path.startswith("/dashboard-l/embedded/")
        query = parse_qs(parts.query)
        assert query["workspaceId"] == [account.child_id]
        session = httpx.get(
            url.replace("127.0.0.1", "localhost") + "/api-l/embedded/segments",
            params={"workspaceId": account.child_id},
            headers={"authorization": f"Bearer {query['token'][0]}"},
        )
        assert session.status_code == 200
        assert session.headers["content-security-policy"] == f"frame-ancestors {url}"
    assert account.admin_key not in page.text


def test_preparing_again_replaces_the_pages_admin_key(settings: Settings) -> None:
    operator.seed_demo(settings)
    first = operator.prepare_sample_parent(settings)
    second = operator.prepare_sample_parent(settings)

    assert first is not None and second is not None
    assert first.admin_key != second.admin_key
    assert (first.parent_id, first.child_id) == (second.parent_id, second.child_id)


def test_a_fresh_token_for_a_screen_whose_session_ended(demo: tuple[str, SampleParent]) -> None:
    url, _ = demo

    response = httpx.post(f"{url}{PAGE_PATH}token")

    assert response.status_code == 200
    assert response.json()["token"]


def test_an_origin_left_out_of_the_allowed_ones_is_explained_not_a_500(
    demo: tuple[str, SampleParent],
) -> None:
    url, account = demo
    httpx.put(
        f"{url}/api-l/admin/embed-settings",
        json={"workspaceId": account.child_id, "allowedOrigins": ["https://app.acme.test"]},
        headers={"authorization": f"Bearer {account.admin_key}"},
    ).raise_for_status()

    page = httpx.get(f"{url}{PAGE_PATH}")
    renewal = httpx.post(f"{url}{PAGE_PATH}token")

    assert page.status_code == 409
    assert f"<code>{url}</code>" in page.text
    assert "allowedOrigins" in page.text
    assert renewal.status_code == 409 and "allowedOrigins" in renewal.json()["message"]
