"""`/api/admin/user-properties`: Dittofeed's wire shapes for list, upsert, status and delete, the
protected `id` and `anonymousId`, typed 400 bodies, and a child's key kept out of its siblings'."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.testclient import TestClient

from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant, admin_key_for

PLAN = {"type": "Trait", "path": "plan"}


class Api(AdminApi):
    prefix = "/api/admin/user-properties"

    def by_name(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.get().json()["userProperties"]}


def test_list_upsert_status_delete(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    api = Api(client, parent.admin_key, tenant.id)
    defaults = api.by_name()
    assert {"id", "anonymousId", "email", "phone", "firstName"} <= set(defaults)
    assert defaults["id"]["definition"] == {"type": "Id"}
    created = api.call("PUT", name="plan", definition=PLAN, exampleValue='"pro"')
    assert created.status_code == 200, created.text
    body = created.json()
    assert set(body) == {
        "id", "workspaceId", "name", "definition", "exampleValue", "status",
        "createdAt", "updatedAt", "definitionUpdatedAt",
    }  # fmt: skip
    assert (body["workspaceId"], body["definition"], body["status"]) == (tenant.id, PLAN, "Running")
    assert api.by_name()["plan"] == body
    narrowed = api.get(ids=body["id"], names="email").json()["userProperties"]
    assert sorted(p["name"] for p in narrowed) == ["email", "plan"]

    paused = api.call("PATCH", "/status", id=body["id"], status="Paused")
    assert (paused.status_code, paused.json()["status"]) == (200, "Paused")
    assert api.call("DELETE", id=body["id"]).status_code == 204
    assert api.call("DELETE", id=body["id"]).status_code == 404
    assert "plan" not in api.by_name()


def test_definitions_round_trip_exactly(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    api = Api(client, parent.admin_key, tenant.id)
    definition = {
        "type": "Group",
        "entry": "any",
        "nodes": [
            {"type": "AnyOf", "id": "any", "children": ["t", "p"]},
            {"type": "Trait", "id": "t", "path": "email", "note": "kept"},
            {"type": "Performed", "id": "p", "event": "SIGNUP", "path": "email"},
        ],
    }
    assert api.call("PUT", name="contact", definition=definition).json()["definition"] == definition
    assert api.by_name()["contact"]["definition"] == definition


def test_protected_and_typed_errors(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    api = Api(client, parent.admin_key, tenant.id)
    protected = {"type": "ProtectedUserProperty", "message": "User property name is protected"}
    ids = {name: p["id"] for name, p in api.by_name().items()}
    for response, body in [
        (api.call("PUT", name="id", definition=PLAN), protected),
        (api.call("PUT", name="anonymousId", definition={"type": "AnonymousId"}), protected),
        (api.call("PATCH", "/status", id=ids["anonymousId"], status="Paused"), protected),
        (
            api.call("PUT", name="x", id="nope", definition=PLAN),
            {"type": "IdError", "message": "Invalid user property id, must be a valid v4 UUID"},
        ),
        (
            api.call("PUT", name="email", id=str(uuid.uuid4()), definition=PLAN),
            {
                "type": "UserPropertyAlreadyExists",
                "message": "Names must be unique in workspace. Id's must be globally unique.",
            },
        ),
        (
            api.call("PATCH", "/status", id=str(uuid.uuid4()), status="Paused"),
            {"type": "NotFound", "message": "User property not found"},
        ),
    ]:
        assert (response.status_code, response.json()) == (400, body)
    assert api.call("DELETE", id=ids["id"]).status_code == 404
    assert api.by_name()["id"]["status"] == "Running"


def test_invalid_bodies_are_400s_naming_the_field(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    api = Api(client, parent.admin_key, tenant.id)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"definition": PLAN}, "body/name"),
        ({"name": "x", "definition": {"type": "Trait"}}, "body/definition/path"),
        ({"name": "x", "definition": {"type": "Nope"}}, "body/definition/type"),
        ({"name": "x", "definition": PLAN, "exampleValue": 3}, "body/exampleValue"),
        ({"name": "x", "definition": PLAN, "status": "Done"}, "body/status"),
    ]
    for body, field in cases:
        response = api.call("PUT", **body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["message"].startswith(field + " "), response.json()


def test_a_childs_key_cannot_touch_a_siblings_properties(client: TestClient, parent: ParentAccount) -> None:
    first = parent.put_child("First", "first")
    second = parent.put_child("Second", "second")
    key = admin_key_for(client, first.id)
    theirs = Api(client, parent.admin_key, second.id).by_name()["email"]
    intruder = Api(client, key, second.id)
    assert intruder.get().status_code == 401
    assert intruder.call("PUT", name="plan", definition=PLAN).status_code == 401
    assert intruder.call("DELETE", id=theirs["id"]).status_code == 401
    mine = Api(client, key, first.id)
    assert mine.call("DELETE", id=theirs["id"]).status_code == 404
    assert mine.call("PATCH", "/status", id=theirs["id"], status="Paused").json()["type"] == "NotFound"
    hijack = mine.call("PUT", id=theirs["id"], name="stolen", definition=PLAN)
    assert hijack.json()["type"] == "UserPropertyAlreadyExists"
    assert Api(client, parent.admin_key, second.id).by_name()["email"] == theirs
