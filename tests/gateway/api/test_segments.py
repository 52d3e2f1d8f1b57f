"""`/api/admin/segments`: Dittofeed's wire shapes for upsert, list, status and delete; manual segments
written as DFManualSegmentUpdate events with upstream's messageIds; CSV upload and download; and a
child's key kept out of its siblings' segments."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
from starlette.testclient import TestClient

from engine.assignments import Assignment, write_assignments
from tests.gateway.api.conftest import AdminApi, ParentAccount, Tenant, admin_key_for

TRAIT = {
    "entryNode": {"type": "Trait", "id": "1", "path": "plan", "operator": {"type": "Exists"}},
    "nodes": [],
}
MANUAL = {"entryNode": {"type": "Manual", "id": "1", "version": 1}, "nodes": []}


class Api(AdminApi):
    """The segments endpoints of one workspace, called with one admin key."""

    prefix = "/api/admin/segments"

    def put(self, **body: Any) -> dict[str, Any]:
        response = self.call("PUT", **body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def events(self, event_type: str) -> list[dict[str, Any]]:
        store = self.client.app.state.event_store  # type: ignore[attr-defined]
        rows = store.query(
            "SELECT message_id, message_raw FROM user_events_v2"
            " WHERE workspace_id = {w:String} AND event_type = {t:String} ORDER BY message_raw",
            {"w": self.workspace_id, "t": event_type},
        )
        return [{"messageId": message_id, **json.loads(raw)} for message_id, raw in rows]

    def upload(self, content: str, **headers: str) -> httpx.Response:
        return self.client.post(
            "/api/admin/segments/upload-csv",
            files={"file": ("users.csv", content.encode(), "text/csv")},
            headers={**self.headers, "df-workspace-id": self.workspace_id, **headers},
        )


def _api(client: TestClient, parent: ParentAccount, tenant: Tenant) -> Api:
    return Api(client, parent.admin_key, tenant.id)


def _message_id(workspace_id: str, segment_id: str, version: int, user_id: str) -> str:
    return str(uuid.uuid5(uuid.UUID(workspace_id), f"manual-update-{segment_id}-{version}-{user_id}"))


def test_upsert_list_status_delete(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    api = _api(client, parent, tenant)
    created = api.put(name="Paid", definition=TRAIT)
    assert set(created) == {
        "id",
        "workspaceId",
        "name",
        "definition",
        "resourceType",
        "status",
        "createdAt",
        "updatedAt",
        "definitionUpdatedAt",
    }
    assert (created["workspaceId"], created["definition"], created["status"]) == (tenant.id, TRAIT, "Running")
    listed = api.get(resourceType="Declarative").json()["segments"]
    assert listed == [created]
    every = api.get().json()["segments"]
    assert {s["resourceType"] for s in every} == {"Declarative", "Internal"}
    assert [s["id"] for s in api.get(**{"ids[]": created["id"]}).json()["segments"]] == [created["id"]]

    paused = api.call("PATCH", "/status", id=created["id"], status="Paused")
    assert (paused.status_code, paused.json()["status"]) == (200, "Paused")
    assert api.call("PATCH", "/status", id=str(uuid.uuid4()), status="Paused").status_code == 404

    assert api.call("DELETE", id=created["id"]).status_code == 204
    assert api.call("DELETE", id=created["id"]).status_code == 404
    second = api.put(name="Second", definition=TRAIT)
    response = client.delete(
        "/api/admin/segments/v2", params={"workspaceId": tenant.id, "id": second["id"]}, headers=api.headers
    )
    assert response.status_code == 204
    assert api.get(resourceType="Declarative").json() == {"segments": []}


def test_unknown_fields_and_the_definition_round_trip(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    api = _api(client, parent, tenant)
    definition = {
        "entryNode": {"type": "And", "id": "root", "children": ["a", "b"]},
        "nodes": [
            {"type": "Trait", "id": "a", "path": "plan", "operator": {"type": "Equals", "value": 2.0}},
            {
                "type": "Performed",
                "id": "b",
                "event": "LOGIN",
                "times": 1,
                "timesOperator": ">=",
                "ui": {"x": 1},
            },
        ],
    }
    created = api.put(name="Logged-in payers", definition=definition, unknownField=True)
    assert created["definition"] == definition
    assert api.get(ids=created["id"]).json()["segments"][0]["definition"] == definition


def test_invalid_bodies_are_400s_naming_the_field(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    api = _api(client, parent, tenant)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"definition": TRAIT}, "body/name"),
        ({"name": 3, "definition": TRAIT}, "body/name"),
        (
            {"name": "x", "definition": {"entryNode": {"type": "Nope", "id": "1"}, "nodes": []}},
            "body/definition/entryNode/type",
        ),
        (
            {"name": "x", "definition": {**TRAIT, "nodes": [{"type": "Everyone", "id": "2"}]}},
            "body/definition/nodes/0/type",
        ),
        (
            {
                "name": "x",
                "definition": {"entryNode": {"type": "RandomBucket", "id": "1", "percent": 2}, "nodes": []},
            },
            "body/definition/entryNode/percent",
        ),
        ({"name": "x", "definition": TRAIT, "status": "Stopped"}, "body/status"),
        ({"name": "x"}, "body/definition"),
    ]
    for body, field in cases:
        response = api.call("PUT", **body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["message"].startswith(field + " "), response.json()
    response = client.put(
        "/api/admin/segments", content=b'{"workspaceId": "x", "name": NaN}', headers=api.headers
    )
    assert response.status_code == 400


def test_typed_upsert_errors(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    api = _api(client, parent, tenant)
    taken = api.put(name="Taken", definition=TRAIT)
    other = api.put(name="Other", definition=TRAIT)
    response = api.call("PUT", name="x", id="123", definition=TRAIT)
    assert (response.status_code, response.json()) == (
        400,
        {"type": "IdError", "message": "Invalid segment id, must be a valid v4 UUID"},
    )
    response = api.call("PUT", name=taken["name"], id=other["id"])
    assert (response.status_code, response.json()["type"]) == (400, "UniqueConstraintViolation")
    # createOnly answers with the existing segment, unchanged.
    assert api.put(name="Taken", definition=MANUAL, createOnly=True) == taken


def test_manual_update_writes_upstreams_events(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    api = _api(client, parent, tenant)
    segment = api.put(name="Hand-picked", definition=MANUAL)
    assert segment["status"] == "NotStarted"
    before = datetime.now(UTC).timestamp()
    response = api.call(
        "POST", "/manual-segment/update", segmentId=segment["id"], userIds=["u1", "u2"], sync=True
    )
    assert (response.status_code, response.content) == (200, b"")
    version = api.get(ids=segment["id"]).json()["segments"][0]["definition"]["entryNode"]["version"]
    assert int(before) <= version <= int(datetime.now(UTC).timestamp())
    events = api.events("track")
    assert [e["messageId"] for e in events] == [
        _message_id(tenant.id, segment["id"], version, u) for u in ("u1", "u2")
    ]
    assert {e["event"] for e in events} == {"DFManualSegmentUpdate"}
    assert events[0]["properties"] == {"segmentId": segment["id"], "version": version, "inSegment": 1}

    appended = api.call(
        "POST", "/manual-segment/update", segmentId=segment["id"], userIds=["u3", "u1"], append=True
    )
    assert appended.status_code == 200
    assert len(api.events("track")) == 3  # u1's event at this version was already stored
    assert api.get(ids=segment["id"]).json()["segments"][0]["definition"]["entryNode"]["version"] == version

    assert api.call("POST", "/manual-segment/clear", segmentId=segment["id"]).status_code == 200
    cleared = api.get(ids=segment["id"]).json()["segments"][0]
    assert cleared["definition"]["entryNode"]["version"] > version
    assert len(api.events("track")) == 3

    status = api.get("/manual-segment/status", segmentId=segment["id"])
    assert status.status_code == 200 and status.json()["lastComputedAt"].endswith("Z")
    assert api.get("/manual-segment/status", segmentId=str(uuid.uuid4())).status_code == 404


def test_manual_update_refusals(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    api = _api(client, parent, tenant)
    computed = api.put(name="Computed", definition=TRAIT)
    manual = api.put(name="Manual", definition=MANUAL)
    response = api.call("POST", "/manual-segment/update", segmentId=computed["id"], userIds=["u1"])
    assert (response.status_code, response.json()) == (
        400,
        {"message": "segment must have a manual entry node"},
    )
    response = api.call("POST", "/manual-segment/update", segmentId=manual["id"], userIds=["u1", ""])
    assert (response.status_code, response.json()["message"]) == (400, "body/userIds/1 must not be empty")
    response = api.call("POST", "/manual-segment/update", segmentId=str(uuid.uuid4()), userIds=["u1"])
    assert response.status_code == 404
    response = api.call("PATCH", "/status", id=manual["id"], status="Running")
    assert response.status_code == 400 and "message" in response.json()
    assert api.events("track") == []


def test_csv_upload_identifies_users_and_replaces_members(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    api = _api(client, parent, tenant)
    segment = api.put(name="Uploaded", definition=MANUAL)
    content = '\ufeffid,email,plan\nu1,ann@example.com,"pro, yearly"\n\nu2,,free\n'
    response = api.upload(content, **{"df-segment-id": segment["id"]})
    assert (response.status_code, response.content) == (200, b"")
    identifies = sorted(api.events("identify"), key=lambda e: e["userId"])
    assert [(e["userId"], e["traits"], e["context"]) for e in identifies] == [
        ("u1", {"email": "ann@example.com", "plan": "pro, yearly"}, {"source": "DfManualSegment"}),
        ("u2", {"email": "", "plan": "free"}, {"source": "DfManualSegment"}),
    ]
    version = api.get(ids=segment["id"]).json()["segments"][0]["definition"]["entryNode"]["version"]
    assert sorted(e["messageId"] for e in api.events("track")) == sorted(
        _message_id(tenant.id, segment["id"], version, u) for u in ("u1", "u2")
    )
    # Appending keeps the version.
    response = api.upload("id\nu3\n", **{"df-segment-id": segment["id"], "df-manual-segment-append": "true"})
    assert response.status_code == 200
    assert api.get(ids=segment["id"]).json()["segments"][0]["definition"]["entryNode"]["version"] == version
    assert _message_id(tenant.id, segment["id"], version, "u3") in {
        e["messageId"] for e in api.events("track")
    }


def test_csv_upload_refusals(client: TestClient, parent: ParentAccount, tenant: Tenant) -> None:
    api = _api(client, parent, tenant)
    manual = api.put(name="Manual", definition=MANUAL)
    computed = api.put(name="Computed", definition=TRAIT)
    on_manual = {"df-segment-id": manual["id"]}
    cases: list[tuple[httpx.Response, int, dict[str, Any]]] = [
        (api.upload("email\na@example.com\n", **on_manual), 400, {"message": 'csv must have "id" header'}),
        (
            api.upload("id,plan\n,pro\nu1,free\n,x\n", **on_manual),
            400,
            {
                "message": "csv rows contained errors",
                "rowErrors": [
                    {"row": 0, "error": 'row must have a non-empty "id" field'},
                    {"row": 2, "error": 'row must have a non-empty "id" field'},
                ],
            },
        ),
        (
            api.upload("id\nu1\n", **{"df-segment-id": computed["id"]}),
            400,
            {"message": "segment must have a manual entry node"},
        ),
    ]
    for response, status, body in cases:
        assert (response.status_code, response.json()) == (status, body)
    not_utf8 = client.post(
        "/api/admin/segments/upload-csv",
        files={"file": ("users.csv", b"id\n\xff\n", "text/csv")},
        headers={**api.headers, "df-workspace-id": tenant.id, **on_manual},
    )
    assert (not_utf8.status_code, not_utf8.json()) == (400, {"message": "misformatted file: not UTF-8 text"})
    no_file = client.post(
        "/api/admin/segments/upload-csv",
        data={"note": "x"},
        headers={**api.headers, "df-workspace-id": tenant.id, **on_manual},
    )
    assert (no_file.status_code, no_file.json()) == (400, {"message": "missing file"})
    assert api.upload("id\nu1\n").status_code == 400  # no df-segment-id


def test_download_lists_current_assignments(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    api = _api(client, parent, tenant)
    vip = api.put(name="VIP", definition=TRAIT)
    beta = api.put(name="Beta, early", definition=TRAIT)
    email = _property_id(client, api, tenant, "email")
    internal = next(
        s
        for s in api.get(resourceType="Internal").json()["segments"]
        if s["name"].startswith("subscriptionGroup-")
        and not s["name"].startswith("subscriptionGroup-unsubscribed-")
        and s["definition"]["entryNode"]["subscriptionGroupId"] == _email_group(client, api, tenant)
    )
    store = client.app.state.event_store  # type: ignore[attr-defined]
    write_assignments(
        store,
        [
            Assignment.of_segment(tenant.id, internal["id"], "u1", False),
            Assignment.of_segment(tenant.id, vip["id"], "u2", True),
            Assignment.of_segment(tenant.id, vip["id"], "u1", True),
            Assignment.of_segment(tenant.id, beta["id"], "u1", True),
            Assignment.of_property(tenant.id, email, "u1", "ann@example.com"),
        ],
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    write_assignments(
        store, [Assignment.of_segment(tenant.id, vip["id"], "u2", False)], at=datetime(2026, 1, 2, tzinfo=UTC)
    )
    before = datetime.now(UTC).strftime("%Y-%m-%d")
    response = api.get("/download")
    after = datetime.now(UTC).strftime("%Y-%m-%d")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] in {
        f"attachment; filename=segment-assignments-{day}.csv" for day in (before, after)
    }
    assert response.text.split("\n") == [
        "segmentName,segmentId,userId,inSegment,subscriptionGroupName,email,deviceToken,phone",
        f'"Beta, early",{beta["id"]},u1,true,,ann@example.com,,',
        f"VIP,{vip['id']},u1,true,,ann@example.com,,",
        f"VIP,{vip['id']},u2,false,,,,",
        f"{internal['name']},{internal['id']},u1,false,Tenant A - Email,ann@example.com,,",
    ]


def test_download_cells_never_run_as_spreadsheet_formulas(
    client: TestClient, parent: ParentAccount, tenant: Tenant
) -> None:
    api = _api(client, parent, tenant)
    sneaky = api.put(name='=HYPERLINK("http://evil.test")', definition=TRAIT)
    email = _property_id(client, api, tenant, "email")
    write_assignments(
        client.app.state.event_store,  # type: ignore[attr-defined]
        [
            Assignment.of_segment(tenant.id, sneaky["id"], "-u9", True),
            Assignment.of_property(tenant.id, email, "-u9", "@SUM(A1)"),
        ],
        at=datetime(2026, 1, 1, tzinfo=UTC),
    )

    rows = list(csv.reader(io.StringIO(api.get("/download").text)))

    assert ['\'=HYPERLINK("http://evil.test")', sneaky["id"], "'-u9", "true", "", "'@SUM(A1)", "", ""] in rows


def _property_id(client: TestClient, api: Api, tenant: Tenant, name: str) -> str:
    listed = client.get("/api/admin/user-properties", params={"workspaceId": tenant.id}, headers=api.headers)
    property_id: str = next(p["id"] for p in listed.json()["userProperties"] if p["name"] == name)
    return property_id


def _email_group(client: TestClient, api: Api, tenant: Tenant) -> str:
    groups = client.get(
        "/api/admin/resources",
        params={"workspaceId": tenant.id, "subscriptionGroups": "true"},
        headers=api.headers,
    ).json()["subscriptionGroups"]
    group_id: str = next(g["id"] for g in groups if g["channel"] == "Email")
    return group_id


def test_a_childs_key_cannot_touch_a_siblings_segments(client: TestClient, parent: ParentAccount) -> None:
    first = parent.put_child("First", "first")
    second = parent.put_child("Second", "second")
    theirs = Api(client, parent.admin_key, second.id).put(name="Theirs", definition=MANUAL)
    mine = Api(client, admin_key_for(client, first.id), first.id)
    intruder = Api(client, mine.key, second.id)
    assert intruder.get().status_code == 401
    assert intruder.call("PUT", name="Mine", definition=TRAIT).status_code == 401
    assert intruder.call("DELETE", id=theirs["id"]).status_code == 401
    assert (
        intruder.call("POST", "/manual-segment/update", segmentId=theirs["id"], userIds=["u"]).status_code
        == 401
    )
    assert intruder.upload("id\nu\n", **{"df-segment-id": theirs["id"]}).status_code == 401
    # Naming its own workspace, the key still finds nothing of the sibling's.
    assert mine.call("PATCH", "/status", id=theirs["id"], status="Paused").status_code == 404
    assert mine.call("DELETE", id=theirs["id"]).status_code == 404
    assert (
        mine.call("POST", "/manual-segment/update", segmentId=theirs["id"], userIds=["u"]).status_code == 404
    )
    assert (
        mine.call("PUT", id=theirs["id"], name="Hijack", definition=TRAIT).json()["type"]
        == "UniqueConstraintViolation"
    )
    assert mine.upload("id\nu\n", **{"df-segment-id": theirs["id"]}).status_code == 404
    still = Api(client, parent.admin_key, second.id).get(ids=theirs["id"]).json()["segments"]
    assert still == [theirs]
    assert Api(client, parent.admin_key, second.id).events("track") == []
