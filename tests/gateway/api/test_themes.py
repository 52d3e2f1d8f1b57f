"""`/api-l/admin/theme`: a parent's theme is its children's default; a child overrides field by field;
the screens carry the effective theme as CSS variables, and hostile values never reach a page."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
from starlette.testclient import TestClient

from tests.gateway.api.conftest import ParentAccount, Tenant, admin_key_for, make_parent

PATH = "/api-l/admin/theme"


def put_theme(client: TestClient, key: str, workspace_id: str, theme: Any) -> httpx.Response:
    return client.put(
        PATH, json={"workspaceId": workspace_id, "theme": theme}, headers={"authorization": f"Bearer {key}"}
    )


def open_screen(client: TestClient, parent: ParentAccount, workspace_id: str) -> str:
    minted = client.post(
        "/api-l/sessions",
        json={"workspaceId": workspace_id},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert minted.status_code == 200, minted.text
    page = client.get(
        "/dashboard-l/embedded/segments",
        params={"token": minted.json()["token"], "workspaceId": workspace_id},
    )
    assert page.status_code == 200, page.text
    return page.text


def test_child_inherits_the_parent_theme_and_overrides_it_field_by_field(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    assert (
        put_theme(client, parent.admin_key, parent.id, {"colorPrimary": "#aa0000", "radius": 2}).status_code
        == 200
    )
    response = put_theme(
        client, parent.admin_key, tenant.id, {"radius": 12, "fontFamily": "Open Sans, sans-serif"}
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "workspaceId": tenant.id,
        "theme": {"radius": 12, "fontFamily": "Open Sans, sans-serif"},
        "effectiveTheme": {"colorPrimary": "#aa0000", "radius": 12, "fontFamily": "Open Sans, sans-serif"},
    }
    page = open_screen(client, parent, tenant.id)
    assert (
        '<style id="workspace-theme">:root { --fg-color-primary: #aa0000; --fg-radius: 12px; '
        '--fg-font-family: "Open Sans", sans-serif; }</style>' in page
    )


def test_deleting_the_child_theme_falls_back_to_the_parent(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    put_theme(client, parent.admin_key, parent.id, {"colorPrimary": "#00aa00"})
    put_theme(client, parent.admin_key, tenant.id, {"colorPrimary": "#0000aa"})

    deleted = client.delete(
        PATH, params={"workspaceId": tenant.id}, headers={"authorization": f"Bearer {parent.admin_key}"}
    )

    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["theme"] == {}
    assert deleted.json()["effectiveTheme"] == {"colorPrimary": "#00aa00"}
    assert "--fg-color-primary: #00aa00;" in open_screen(client, parent, tenant.id)


def test_no_theme_renders_no_style_block(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    assert 'id="workspace-theme"' not in open_screen(client, parent, tenant.id)


def test_a_hostile_value_is_a_400_naming_the_field_and_nothing_is_stored(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    put_theme(client, parent.admin_key, tenant.id, {"colorPrimary": "#123456"})

    response = put_theme(
        client,
        parent.admin_key,
        tenant.id,
        {"colorPrimary": "#fff", "colorText": "red}</style><script>x()</script>"},
    )

    assert response.status_code == 400
    assert "body/theme/colorText" in response.json()["message"]
    page = open_screen(client, parent, tenant.id)
    assert "--fg-color-primary: #123456;" in page
    assert "<script>x()" not in page


def test_a_child_key_cannot_theme_its_parent_or_a_sibling(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    sibling = parent.put_child("Tenant B", "tenant-b")
    child_key = admin_key_for(client, tenant.id)
    stranger = make_parent(client, "Other SaaS")

    assert put_theme(client, child_key, parent.id, {"radius": 1}).status_code == 401
    assert put_theme(client, child_key, sibling.id, {"radius": 1}).status_code == 401
    assert put_theme(client, stranger.admin_key, tenant.id, {"radius": 1}).status_code == 401
    assert put_theme(client, child_key, tenant.id, {"radius": 1}).status_code == 200


def test_theme_must_be_an_object(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    response = put_theme(client, parent.admin_key, tenant.id, "dark")

    assert response.status_code == 400
    assert "body/theme" in response.json()["message"]
