"""Engine errors map to HTTP statuses in one place and keep Dittofeed's body shapes."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from engine import errors
from gateway.errors import EXCEPTION_HANDLERS, STATUS_BY_ERROR, status_for


def _app_raising(error: Exception) -> Starlette:
    def endpoint(request: Request) -> Response:
        raise error

    return Starlette(routes=[Route("/", endpoint)], exception_handlers=EXCEPTION_HANDLERS)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidInput("body.messageId is required", field="body.messageId"), 400),
        (errors.NotAuthenticated("API key not valid"), 401),
        (errors.PermissionDenied("no"), 403),
        (errors.NotFound("no such segment"), 404),
        (errors.Conflict("exists"), 409),
        (errors.PayloadTooLarge("too big"), 413),
        (errors.Unavailable("down"), 503),
    ],
)
def test_each_engine_error_has_its_status_and_message(error: errors.EngineError, status: int) -> None:
    response = TestClient(_app_raising(error)).get("/")
    assert response.status_code == status
    assert response.json() == {"message": error.message}


def test_typed_bodies_pass_through() -> None:
    error = errors.InvalidInput("exists", body={"type": "WorkspaceAlreadyExists"})
    response = TestClient(_app_raising(error)).get("/")
    assert (response.status_code, response.json()) == (400, {"type": "WorkspaceAlreadyExists"})


def test_subclasses_inherit_their_parents_status() -> None:
    class WorkspaceIneligible(errors.NotAuthenticated):
        pass

    assert status_for(WorkspaceIneligible("x")) == 401


def test_every_engine_error_class_is_mapped() -> None:
    assert set(errors.EngineError.__subclasses__()) <= set(STATUS_BY_ERROR)


def test_unexpected_errors_leak_nothing() -> None:
    client = TestClient(_app_raising(RuntimeError("secret detail")), raise_server_exceptions=False)
    response = client.get("/")
    assert response.status_code == 500
    assert "secret detail" not in response.text


def test_unknown_route_is_a_json_404() -> None:
    response = TestClient(_app_raising(RuntimeError())).get("/nowhere")
    assert (response.status_code, response.json()) == (404, {"message": "Not Found"})
