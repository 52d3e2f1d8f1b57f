"""`/api/admin/computed-properties/*`: trigger a recompute, then read periods and computed users."""

from __future__ import annotations

from sqlalchemy import select
from starlette.testclient import TestClient

from engine.storage.resource_models import Segment, UserProperty
from tests.gateway.api.conftest import ParentAccount, Tenant


def _auth(parent: ParentAccount) -> dict[str, str]:
    return {"authorization": f"Bearer {parent.admin_key}"}


def test_trigger_recompute_makes_events_visible_as_users(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    with client.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
        session.add(
            Segment(
                workspace_id=tenant.id,
                name="Paid",
                definition={
                    "entryNode": {
                        "id": "1",
                        "type": "Trait",
                        "path": "plan",
                        "operator": {"type": "Equals", "value": "paid"},
                    },
                    "nodes": [],
                },
            )
        )
    for user, plan in (("ann", "paid"), ("bob", "free")):
        response = client.post(
            "/api/public/apps/identify",
            json={
                "userId": user,
                "messageId": f"m-{user}",
                "traits": {"plan": plan, "email": f"{user}@example.com"},
            },
            headers={"authorization": tenant.write_key},
        )
        assert response.status_code == 204
    trigger = client.post(
        "/api/admin/computed-properties/trigger-recompute",
        json={"workspaceId": tenant.id},
        headers=_auth(parent),
    )
    assert (trigger.status_code, trigger.content) == (200, b"")

    users = client.post("/api/admin/users", json={"workspaceId": tenant.id}, headers=_auth(parent)).json()[
        "users"
    ]
    assert [user["id"] for user in users] == ["ann", "bob"]
    ann = users[0]
    values = {p["name"]: p["value"] for p in ann["properties"].values()}
    assert (values["id"], values["email"]) == ("ann", "ann@example.com")
    assert [s["name"] for s in ann["segments"]] == ["Paid"]
    assert users[1]["segments"] == []

    periods = client.get(
        "/api/admin/computed-properties/periods", params={"workspaceId": tenant.id}, headers=_auth(parent)
    ).json()["periods"]
    with client.app.state.sessions() as session:  # type: ignore[attr-defined]
        running = set(session.scalars(select(UserProperty.id).where(UserProperty.workspace_id == tenant.id)))
        running |= set(session.scalars(select(Segment.id).where(Segment.workspace_id == tenant.id)))
    assert {p["id"] for p in periods} == running
    assert all(
        p["lastRecomputed"].endswith("Z") and p["type"] in ("Segment", "UserProperty") for p in periods
    )
