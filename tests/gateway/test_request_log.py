"""Access logs: one JSON line per request with its id, route template, status, duration and workspace;
never a credential, whether it came in a header, a cookie or the query string."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from engine.storage.models import WorkspaceType
from gateway.app import create_app
from gateway.body_limit import BodyLimit
from gateway.operator import create_workspace_with_key
from gateway.request_log import ACCESS_LOGGER, RequestLog, note_workspace, redact_query
from gateway.settings import Settings


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


@pytest.fixture
def access_lines() -> Iterator[list[dict[str, Any]]]:
    access = logging.getLogger(ACCESS_LOGGER)
    handler, level = _Lines(), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    yield handler.lines
    access.removeHandler(handler)
    access.setLevel(level)


async def show_item(request: Request) -> Response:
    note_workspace(request, "ws-1")
    return JSONResponse({"id": request.path_params["item_id"]})


async def fail(request: Request) -> Response:
    raise RuntimeError("boom")


@pytest.fixture
def tiny() -> Iterator[TestClient]:
    app = Starlette(
        routes=[
            Route("/items/{item_id}", show_item, methods=["GET", "POST"], name="items:show"),
            Route("/fail", fail, name="fail"),
        ],
        middleware=[Middleware(RequestLog), Middleware(BodyLimit, limit=16)],
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_one_line_per_request_with_template_status_duration_and_workspace(
    tiny: TestClient, access_lines: list[dict[str, Any]]
) -> None:
    response = tiny.get("/items/secret-user-42")

    assert response.status_code == 200
    [line] = access_lines
    assert line["event"] == "request"
    assert (line["method"], line["route"], line["status"]) == ("GET", "/items/{item_id}", 200)
    assert line["workspace_id"] == "ws-1"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["request_id"] == response.headers["x-request-id"]
    assert "secret-user-42" not in json.dumps(line)


def test_a_sane_caller_request_id_is_kept_and_echoed(
    tiny: TestClient, access_lines: list[dict[str, Any]]
) -> None:
    offered = "3f2b9c1e-7d4a-4c1b-9d3e-0a1b2c3d4e5f"
    response = tiny.get("/items/1", headers={"x-request-id": offered})

    assert response.headers["x-request-id"] == offered
    assert access_lines[0]["request_id"] == offered


@pytest.mark.parametrize("offered", ["x" * 129, "id with spaces", '"quoted"', "a{b}", ""])
def test_an_unusable_request_id_is_replaced_by_a_fresh_one(
    tiny: TestClient, access_lines: list[dict[str, Any]], offered: str
) -> None:
    response = tiny.get("/items/1", headers={"x-request-id": offered})

    assigned = response.headers["x-request-id"]
    assert assigned != offered and len(assigned) == 32
    assert access_lines[0]["request_id"] == assigned


def test_each_request_without_an_id_gets_its_own(
    tiny: TestClient, access_lines: list[dict[str, Any]]
) -> None:
    first = tiny.get("/items/1").headers["x-request-id"]
    second = tiny.get("/items/1").headers["x-request-id"]
    assert first != second


def test_credentials_never_reach_the_line(tiny: TestClient, access_lines: list[dict[str, Any]]) -> None:
    tiny.get(
        "/items/1?token=tok-SECRET&code=oidc-SECRET&apiKey=key-SECRET&workspaceId=ws-9&limit=5",
        headers={"authorization": "Bearer auth-SECRET", "cookie": "feedgate_session=cookie-SECRET"},
    )

    [line] = access_lines
    assert "SECRET" not in json.dumps(line)
    assert (
        line["query"]
        == "token=%5Bredacted%5D&code=%5Bredacted%5D&apiKey=%5Bredacted%5D&workspaceId=ws-9&limit=5"
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("token=abc", "token=%5Bredacted%5D"),
        ("writeKey=abc&id=1", "writeKey=%5Bredacted%5D&id=1"),
        ("state=s&iss=https%3A%2F%2Fidp", "state=%5Bredacted%5D&iss=https%3A%2F%2Fidp"),
        ("access_token=a&client_secret=b", "access_token=%5Bredacted%5D&client_secret=%5Bredacted%5D"),
        ("", ""),
    ],
)
def test_redact_query_hides_credential_parameters(query: str, expected: str) -> None:
    assert redact_query(query) == expected


def test_no_matching_route_is_logged_without_a_template(
    tiny: TestClient, access_lines: list[dict[str, Any]]
) -> None:
    assert tiny.get("/nowhere/at/all").status_code == 404
    [line] = access_lines
    assert (line["route"], line["status"], line["workspace_id"]) == (None, 404, None)


def test_a_response_before_routing_still_names_the_route(
    tiny: TestClient, access_lines: list[dict[str, Any]]
) -> None:
    assert tiny.post("/items/1", content=b"x" * 100).status_code == 413
    [line] = access_lines
    assert (line["route"], line["status"]) == ("/items/{item_id}", 413)


def test_a_crashing_handler_is_logged_as_500(tiny: TestClient, access_lines: list[dict[str, Any]]) -> None:
    assert tiny.get("/fail").status_code == 500
    [line] = access_lines
    assert (line["route"], line["status"]) == ("/fail", 500)


@pytest.fixture
def logged_app(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, run_worker=False)) as client:
        yield client


def test_the_real_app_logs_templates_and_refused_keys(
    logged_app: TestClient, access_lines: list[dict[str, Any]]
) -> None:
    logged_app.get("/api/")
    logged_app.get(
        "/api/admin/segments/?workspaceId=7c1f4ad2-0b7e-4f4e-9f49-1d1c6b1f0e11",
        headers={"authorization": "Bearer not-a-real-key-SECRET"},
    )

    assert [(line["route"], line["status"]) for line in access_lines] == [
        ("/api/", 200),
        ("/api/admin/segments/", 401),
    ]
    assert "SECRET" not in json.dumps(access_lines)


def test_a_member_request_is_logged_with_its_workspace(
    logged_app: TestClient, access_lines: list[dict[str, Any]]
) -> None:
    with logged_app.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
        created = create_workspace_with_key(session, "Logged", WorkspaceType.ROOT)

    assert logged_app.get(f"/api/segments?workspaceId={created.workspace_id}").status_code == 200

    assert access_lines[-1]["workspace_id"] == created.workspace_id


def test_an_admin_key_request_is_logged_with_the_workspace_it_targets(
    logged_app: TestClient, access_lines: list[dict[str, Any]]
) -> None:
    with logged_app.app.state.sessions.begin() as session:  # type: ignore[attr-defined]
        created = create_workspace_with_key(session, "Logged", WorkspaceType.ROOT)

    response = logged_app.get(
        f"/api/admin/segments/?workspaceId={created.workspace_id}",
        headers={"authorization": f"Bearer {created.admin_api_key}"},
    )

    assert response.status_code == 200
    assert access_lines[-1]["workspace_id"] == created.workspace_id
    assert created.admin_api_key not in json.dumps(access_lines)
