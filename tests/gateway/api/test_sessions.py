"""Embedded sessions: what `POST /api-l/sessions` mints, and every way a token is refused.

A token opens `/api-l/embedded/*` of one workspace, within its scope, from allowed origins, until it
expires or is revoked; it never opens an admin or settings route.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.credentials import delete_admin_key, find_admin_key
from engine.storage.models import Workspace, WorkspaceStatus
from gateway.app import create_app
from gateway.embedded_auth import mint_token
from gateway.settings import Settings
from gateway.tokens import Purpose, TokenSigner
from tests.gateway.api.conftest import ParentAccount, Tenant, admin_key_for, make_parent


def mint(parent: ParentAccount, workspace_id: str, key: str | None = None, **extra: Any) -> Any:
    return parent.client.post(
        "/api-l/sessions",
        json={"workspaceId": workspace_id, **extra},
        headers={"authorization": f"Bearer {key or parent.admin_key}"},
    )


def token_for(parent: ParentAccount, tenant: Tenant, **extra: Any) -> str:
    response = mint(parent, tenant.id, **extra)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"token"}
    token: str = response.json()["token"]
    return token


def embedded_get(client: TestClient, token: str, path: str, workspace_id: str, **headers: str) -> Any:
    return client.get(
        f"/api-l/embedded/{path}",
        params={"workspaceId": workspace_id},
        headers={"authorization": f"Bearer {token}", **headers},
    )


def put_segment(client: TestClient, token: str, workspace_id: str, name: str = "Everyone") -> Any:
    return client.put(
        "/api-l/embedded/segments",
        json={
            "workspaceId": workspace_id,
            "name": name,
            "definition": {"entryNode": {"type": "Everyone", "id": "1"}, "nodes": []},
        },
        headers={"authorization": f"Bearer {token}"},
    )


def test_a_parent_key_mints_a_token_that_opens_the_childs_embedded_api(
    parent: ParentAccount, tenant: Tenant
) -> None:
    token = token_for(parent, tenant)

    created = put_segment(parent.client, token, tenant.id)
    listed = embedded_get(parent.client, token, "segments", tenant.id)

    assert created.status_code == 200, created.text
    assert "Everyone" in [s["name"] for s in listed.json()["segments"]]
    assert listed.headers["referrer-policy"] == "no-referrer"
    assert listed.headers["content-security-policy"] == "frame-ancestors *"


def test_the_childs_own_admin_key_also_mints(parent: ParentAccount, tenant: Tenant) -> None:
    response = mint(parent, tenant.id, key=admin_key_for(parent.client, tenant.id))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ttlSeconds": 10}, "body/ttlSeconds"),
        ({"ttlSeconds": 10**9}, "body/ttlSeconds"),
        ({"components": ["Nope"]}, "body/components/0"),
        ({"allowedOrigins": ["https://app.example.com/path"]}, "body/allowedOrigins/0"),
        ({"allowedOrigins": ["javascript:alert(1)"]}, "body/allowedOrigins/0"),
        ({"resourceIds": "one"}, "body/resourceIds"),
    ],
)
def test_bad_session_bodies_are_400s_naming_the_field(
    parent: ParentAccount, tenant: Tenant, body: dict[str, Any], field: str
) -> None:
    response = mint(parent, tenant.id, **body)

    assert response.status_code == 400
    assert response.json()["message"].startswith(field)


def test_a_parent_workspace_cannot_be_the_session_target(parent: ParentAccount) -> None:
    response = mint(parent, parent.id)

    assert response.status_code == 400
    assert "parent workspace" in response.json()["message"]


def test_a_write_key_is_refused_with_a_message_naming_the_admin_key(
    parent: ParentAccount, tenant: Tenant
) -> None:
    response = parent.client.post(
        "/api-l/sessions", json={"workspaceId": tenant.id}, headers={"authorization": tenant.write_key}
    )
    as_bearer = parent.client.post(
        "/api-l/sessions",
        json={"workspaceId": tenant.id},
        headers={"authorization": "Bearer " + tenant.write_key.removeprefix("Basic ")},
    )

    assert response.status_code == 401
    assert "admin API key" in response.json()["message"]
    assert as_bearer.status_code == 401
    assert "write key cannot mint" in as_bearer.json()["message"]


def test_a_setting_allows_write_key_sessions_for_strict_compatibility(settings: Settings) -> None:
    with TestClient(
        create_app(dataclasses.replace(settings, allow_write_key_sessions=True), run_worker=False)
    ) as c:
        parent = make_parent(c, "Compat Parent")
        tenant = parent.put_child("Compat Child", "compat")
        other = parent.put_child("Other Child", "other")

        response = c.post(
            "/api-l/sessions", json={"workspaceId": tenant.id}, headers={"authorization": tenant.write_key}
        )
        cross = c.post(
            "/api-l/sessions", json={"workspaceId": other.id}, headers={"authorization": tenant.write_key}
        )

        assert response.status_code == 200
        assert embedded_get(c, response.json()["token"], "segments", tenant.id).status_code == 200
        assert cross.status_code == 401


class TestTokenAbuse:
    """Each abuse is refused with 401 (not a valid session) or 403 (valid, but not for this)."""

    def test_a_tampered_token(self, parent: ParentAccount, tenant: Tenant) -> None:
        token = token_for(parent, tenant)
        body, _, signature = token.rpartition(".")
        tampered = f"{body}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"

        response = embedded_get(parent.client, tampered, "segments", tenant.id)

        assert response.status_code == 401
        assert response.json()["message"] == "Session token is invalid"

    def test_an_expired_token(self, parent: ParentAccount, tenant: Tenant) -> None:
        signer = parent.client.app.state.signer  # type: ignore[attr-defined]
        token = mint_token(signer, workspace_id=tenant.id, ttl_seconds=-1, key_id=None)

        response = embedded_get(parent.client, token, "segments", tenant.id)

        assert response.status_code == 401
        assert response.json()["message"] == "Session token expired"

    def test_a_token_signed_with_another_key(self, parent: ParentAccount, tenant: Tenant) -> None:
        token = mint_token(
            TokenSigner("someone-elses-key"), workspace_id=tenant.id, ttl_seconds=600, key_id=None
        )

        assert embedded_get(parent.client, token, "segments", tenant.id).status_code == 401

    def test_a_value_signed_for_another_purpose(self, parent: ParentAccount, tenant: Tenant) -> None:
        signer = parent.client.app.state.signer  # type: ignore[attr-defined]
        cookie_value = signer.sign(Purpose.MEMBER_SESSION, {"ws": tenant.id, "iat": 0, "exp": 10**15})

        assert embedded_get(parent.client, cookie_value, "segments", tenant.id).status_code == 401

    def test_another_workspace(self, parent: ParentAccount, tenant: Tenant) -> None:
        other = parent.put_child("Tenant B", "tenant-b")
        token = token_for(parent, tenant)

        read = embedded_get(parent.client, token, "segments", other.id)
        write = put_segment(parent.client, token, other.id)

        assert read.status_code == 403
        assert write.status_code == 403
        assert "session's workspace" in read.json()["message"]

    def test_a_tombstoned_workspace(self, parent: ParentAccount, tenant: Tenant) -> None:
        token = token_for(parent, tenant)
        deleted = parent.client.request(
            "DELETE",
            "/api-l/admin/workspaces/",
            params={"workspaceId": tenant.id},
            headers={"authorization": f"Bearer {parent.admin_key}"},
        )
        assert deleted.is_success, deleted.text

        response = embedded_get(parent.client, token, "segments", tenant.id)

        assert response.status_code == 401
        assert "not active" in response.json()["message"]

    def test_a_paused_workspace(self, parent: ParentAccount, tenant: Tenant) -> None:
        token = token_for(parent, tenant)
        with parent.client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
            workspace = session.get(Workspace, tenant.id)
            assert workspace is not None
            workspace.status = WorkspaceStatus.PAUSED

        assert embedded_get(parent.client, token, "segments", tenant.id).status_code == 401

    def test_revoking_the_workspaces_sessions(self, parent: ParentAccount, tenant: Tenant) -> None:
        before = token_for(parent, tenant)
        revoked = parent.client.request(
            "DELETE",
            "/api-l/sessions",
            json={"workspaceId": tenant.id},
            headers={"authorization": f"Bearer {parent.admin_key}"},
        )
        after = token_for(parent, tenant)

        assert revoked.status_code == 204
        assert embedded_get(parent.client, before, "segments", tenant.id).status_code == 401
        assert embedded_get(parent.client, after, "segments", tenant.id).status_code == 200

    def test_revoking_the_parents_sessions_ends_its_childrens(
        self, parent: ParentAccount, tenant: Tenant
    ) -> None:
        token = token_for(parent, tenant)
        parent.client.request(
            "DELETE", "/api-l/sessions", headers={"authorization": f"Bearer {parent.admin_key}"}
        )

        assert embedded_get(parent.client, token, "segments", tenant.id).status_code == 401

    def test_deleting_the_minting_admin_key(self, parent: ParentAccount, tenant: Tenant) -> None:
        key = admin_key_for(parent.client, parent.id)
        token = (
            token_for(parent, tenant, key=key) if False else mint(parent, tenant.id, key=key).json()["token"]
        )
        with parent.client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
            found = find_admin_key(session, key)
            assert found is not None
            delete_admin_key(session, parent.id, found[0].id)

        response = embedded_get(parent.client, token, "segments", tenant.id)

        assert response.status_code == 401
        assert "admin API key" in response.json()["message"]

    def test_out_of_scope_components(self, parent: ParentAccount, tenant: Tenant) -> None:
        token = token_for(parent, tenant, components=["AnalysisChart"])

        chart = parent.client.get(
            "/api-l/embedded/analysis/summary",
            params={
                "workspaceId": tenant.id,
                "startDate": "2026-01-01T00:00:00Z",
                "endDate": "2026-01-02T00:00:00Z",
            },
            headers={"authorization": f"Bearer {token}"},
        )
        segments = put_segment(parent.client, token, tenant.id)
        templates = embedded_get(parent.client, token, "content/templates", tenant.id)
        journeys = embedded_get(parent.client, token, "journeys", tenant.id)

        assert chart.status_code == 200, chart.text
        assert templates.status_code == 200
        assert segments.status_code == 403
        assert "may not write segments" in segments.json()["message"]
        assert journeys.status_code == 403

    def test_out_of_scope_resources(self, parent: ParentAccount, tenant: Tenant) -> None:
        token = token_for(parent, tenant, resourceIds=["b1c1d1e1-0000-4000-8000-000000000001"])

        inside = parent.client.get(
            "/api-l/embedded/broadcasts",
            params={"workspaceId": tenant.id, "ids": "b1c1d1e1-0000-4000-8000-000000000001"},
            headers={"authorization": f"Bearer {token}"},
        )
        outside = parent.client.get(
            "/api-l/embedded/broadcasts",
            params={"workspaceId": tenant.id, "ids": "b1c1d1e1-0000-4000-8000-000000000002"},
            headers={"authorization": f"Bearer {token}"},
        )

        assert inside.status_code == 200, inside.text
        assert outside.status_code == 403
        assert "resourceIds" in outside.json()["message"]

    def test_a_wrong_origin(self, parent: ParentAccount, tenant: Tenant) -> None:
        token = token_for(parent, tenant, allowedOrigins=["https://app.parent.example"])

        evil = embedded_get(parent.client, token, "segments", tenant.id, origin="https://evil.example")
        allowed = embedded_get(
            parent.client, token, "segments", tenant.id, origin="https://app.parent.example"
        )
        itself = embedded_get(parent.client, token, "segments", tenant.id, origin="http://testserver")

        assert evil.status_code == 403
        assert "https://evil.example" in evil.json()["message"]
        assert allowed.status_code == 200
        assert itself.status_code == 200
        assert allowed.headers["content-security-policy"] == "frame-ancestors https://app.parent.example"

    def test_no_token_or_a_cookie_instead(self, parent: ParentAccount, tenant: Tenant) -> None:
        token = token_for(parent, tenant)

        missing = parent.client.get("/api-l/embedded/segments", params={"workspaceId": tenant.id})
        basic = parent.client.get(
            "/api-l/embedded/segments",
            params={"workspaceId": tenant.id},
            headers={"authorization": f"Basic {token}"},
        )
        parent.client.cookies.set("token", token)
        cookie = parent.client.get("/api-l/embedded/segments", params={"workspaceId": tenant.id})
        parent.client.cookies.clear()

        assert [missing.status_code, basic.status_code, cookie.status_code] == [401, 401, 401]

    def test_a_token_never_opens_admin_or_settings_routes(
        self, parent: ParentAccount, tenant: Tenant
    ) -> None:
        token = token_for(parent, tenant)
        bearer = {"authorization": f"Bearer {token}"}
        params = {"workspaceId": tenant.id}

        assert parent.client.get("/api/admin/segments", params=params, headers=bearer).status_code == 401
        assert (
            parent.client.get("/api-l/admin/workspaces/child", params=params, headers=bearer).status_code
            == 401
        )
        assert (
            parent.client.get(
                "/api-l/embedded/settings/email-providers", params=params, headers=bearer
            ).status_code
            == 404
        )
        assert (
            parent.client.get("/api-l/embedded/admin-keys", params=params, headers=bearer).status_code == 404
        )
        assert (
            parent.client.get("/api-l/embedded/permissions", params=params, headers=bearer).status_code == 404
        )


def test_tokens_signed_with_a_fallback_key_verify_until_it_is_dropped(settings: Settings) -> None:
    with TestClient(create_app(settings, run_worker=False)) as old_app:
        parent = make_parent(old_app, "Rotating Parent")
        tenant = parent.put_child("Rotating Child", "rotating")
        token = token_for(parent, tenant)

    rotated = dataclasses.replace(
        settings, secret_key="the-new-key", secret_key_fallbacks=(settings.secret_key,)
    )
    with TestClient(create_app(rotated, run_worker=False)) as new_app:
        assert embedded_get(new_app, token, "segments", tenant.id).status_code == 200
    dropped = dataclasses.replace(settings, secret_key="the-new-key")
    with TestClient(create_app(dropped, run_worker=False)) as newest_app:
        assert embedded_get(newest_app, token, "segments", tenant.id).status_code == 401


def test_workspace_allowed_origins_bound_the_sessions_and_frame_the_screens(
    parent: ParentAccount, tenant: Tenant
) -> None:
    headers = {"authorization": f"Bearer {parent.admin_key}"}
    stored = parent.client.put(
        "/api-l/admin/embed-settings",
        json={"workspaceId": parent.id, "allowedOrigins": ["https://app.parent.example"]},
        headers=headers,
    )
    inherited = parent.client.get(
        "/api-l/admin/embed-settings", params={"workspaceId": tenant.id}, headers=headers
    )
    outside = mint(parent, tenant.id, allowedOrigins=["https://elsewhere.example"])
    token = token_for(parent, tenant)

    response = embedded_get(parent.client, token, "segments", tenant.id)

    assert stored.status_code == 200, stored.text
    assert inherited.json()["allowedOrigins"] == ["https://app.parent.example"]
    assert outside.status_code == 400
    assert outside.json()["message"].startswith("body/allowedOrigins/0")
    assert response.headers["content-security-policy"] == "frame-ancestors https://app.parent.example"
