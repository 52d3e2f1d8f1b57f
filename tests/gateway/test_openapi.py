"""The OpenAPI document: valid OpenAPI 3.1, covering every API route with the models that validate its
requests, readable as a page; and every documented operation, driven by schemathesis against the
running app with real credentials, answers no 5xx and only the statuses it documents.

The schemathesis run is marked `openapi` (select it with `-m openapi`, skip it with
`-m "not openapi"`). It is reproducible: examples are derandomized, so a failure names the same
request on every run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from pydantic import BaseModel
from schemathesis.checks import not_a_server_error
from schemathesis.core.transport import Response as SchemathesisResponse
from schemathesis.generation.case import Case
from schemathesis.openapi import from_dict
from schemathesis.specs.openapi.checks import status_code_conformance
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import openapi
from gateway.app import build_routes, create_app
from gateway.openapi_standalone import EXCLUDED_PREFIXES
from gateway.settings import Settings
from tests.gateway.api.conftest import ParentAccount, make_parent

ROUTES: list[BaseRoute] = [*openapi.routes, *build_routes()]
DOCUMENT = openapi.build_document(ROUTES)
OPERATIONS = [
    (method.upper(), path)
    for path, item in DOCUMENT["paths"].items()
    for method in item
    if not method.startswith("x-")
]
# Examples per operation. The member and embedded mounts run the admin mount's handlers, so they get
# fewer; computing a workspace takes seconds, so trigger-recompute gets fewest. The whole run stays
# within a few minutes on two cores.
EXAMPLES = 10
EXAMPLES_SHARED_MOUNT = 4
EXAMPLES_SLOW = 2
SLOW = ("/computed-properties/trigger-recompute",)
# Operations that change a workspace for good run against a workspace of their own.
DESTRUCTIVE = {
    ("DELETE", "/api-l/admin/workspaces/"),
    ("DELETE", "/api-l/sessions"),
    ("PUT", "/api-l/admin/embed-settings"),
}


def examples_for(path: str) -> int:
    if path.endswith(SLOW):
        return EXAMPLES_SLOW
    if path.startswith(("/api/admin/", "/api-l/admin/", "/api/public/", "/api-l/sessions")):
        return EXAMPLES
    if path.startswith(("/api-l/embedded/", "/api/")) and path not in ("/api/", "/api/readyz"):
        return EXAMPLES_SHARED_MOUNT
    return EXAMPLES


@pytest.fixture
def documented_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, run_worker=False)) as client:
        yield client


def test_the_document_is_valid_openapi_3_1(documented_client: TestClient) -> None:
    from openapi_spec_validator import validate

    response = documented_client.get(openapi.DOCUMENT_PATH)
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_api_route_is_documented_or_deliberately_excluded() -> None:
    coverage = openapi.collect_operations(ROUTES)
    assert coverage.missing == []
    documented = {(item.method, item.path) for item in coverage.documented}
    for method, alias, canonical in coverage.aliases:
        assert (method, canonical) in documented, f"{method} {alias} is an alias of nothing documented"
    for method, path, reason in coverage.excluded:
        assert not path.startswith(("/api/", "/api-l/")), f"{method} {path} is API but excluded ({reason})"
    mounts = {item.path.split("/")[1] + ":" + item.security for item in coverage.documented}
    assert {"api:adminApiKey", "api:memberSession", "api-l:embeddedSession", "api:writeKey"} <= mounts


def test_a_route_without_a_catalog_entry_is_reported_missing() -> None:
    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse({})

    undocumented = Route("/api/admin/brand-new", endpoint, methods=["POST"])
    coverage = openapi.collect_operations([*ROUTES, undocumented])
    assert coverage.missing == [("POST", "/api/admin/brand-new")]


def test_request_schemas_are_the_models_the_handlers_validate_with() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    for item in openapi.collect_operations(ROUTES).documented:
        body = item.operation.body
        if body is None:
            continue
        operation = DOCUMENT["paths"][item.path][item.method.lower()]
        reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = schemas[reference.rsplit("/", 1)[-1]]
        assert set(schema.get("properties", {})) == _field_names(body), f"{item.method} {item.path}"


def test_a_field_the_engine_validates_is_documented_as_an_object() -> None:
    upsert = _body_schema("PUT", "/api/admin/broadcasts/v2")
    assert upsert["properties"]["config"]["type"] == "object"
    assert "engine" in upsert["properties"]["config"]["description"]


def test_query_models_become_query_parameters_and_nested_ones_deep_objects() -> None:
    parameters = {
        parameter["name"]: parameter
        for parameter in DOCUMENT["paths"]["/api/admin/analysis/chart-data"]["get"]["parameters"]
    }
    assert parameters["workspaceId"]["required"] is True
    assert parameters["startDate"]["schema"]["format"] == "date-time"
    assert parameters["filters"]["style"] == "deepObject"


def test_each_mount_documents_its_own_credential_and_the_error_shapes() -> None:
    upsert = "/broadcasts/v2"
    assert DOCUMENT["paths"][f"/api/admin{upsert}"]["put"]["security"] == [{"adminApiKey": []}]
    assert DOCUMENT["paths"][f"/api{upsert}"]["put"]["security"] == [{"memberSession": []}]
    assert DOCUMENT["paths"][f"/api-l/embedded{upsert}"]["put"]["security"] == [{"embeddedSession": []}]
    track = DOCUMENT["paths"]["/api/public/apps/track"]["post"]
    assert track["security"] == [{"writeKey": []}]
    assert track["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert DOCUMENT["paths"]["/api/public/webhooks/segment"]["post"]["security"] == []


def test_the_page_lists_every_operation(documented_client: TestClient) -> None:
    response = documented_client.get(openapi.PAGE_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = _Ids()
    page.feed(response.text)
    operation_ids = {
        operation["operationId"]
        for item in DOCUMENT["paths"].values()
        for method, operation in item.items()
        if not method.startswith("x-")
    }
    assert operation_ids <= page.ids
    assert page.scripts == 0
    assert "documentation" in " ".join(EXCLUDED_PREFIXES)


@dataclass(frozen=True)
class LiveApi:
    app: ASGIApp
    parent: ParentAccount
    child_id: str
    victim_id: str
    write_key: str
    embed_token: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, chdb_dir: str) -> Iterator[LiveApi]:
    """One app for the whole run, with a parent (admin key), two children and an embed token."""
    data_dir: Path = tmp_path_factory.mktemp("openapi")
    database = f"t_{uuid.uuid4().hex[:16]}"
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'feedgate.db'}",
        clickhouse_url=f"chdb://{chdb_dir}",
        clickhouse_database=database,
        secret_key="test-secret-key",
    )
    app = create_app(settings, run_worker=False)
    try:
        with TestClient(app) as client:
            parent = make_parent(client, "Parent SaaS")
            child = parent.put_child("Tenant A", "tenant-a")
            victim = parent.put_child("Tenant Doomed", "tenant-doomed")
            minted = client.post(
                "/api-l/sessions",
                json={"workspaceId": child.id},
                headers={"authorization": f"Bearer {parent.admin_key}"},
            )
            assert minted.status_code == 200, minted.text
            # In AUTH_MODE=anonymous the member API acts on the first workspace: the parent.
            assert client.get("/api/permissions", params={"workspaceId": parent.id}).status_code == 200
            yield LiveApi(
                without_lifespan(app), parent, child.id, victim.id, child.write_key, minted.json()["token"]
            )
    finally:
        clickhouse_connect.get_client(dsn=f"chdb://{chdb_dir}").command(
            f"DROP DATABASE IF EXISTS `{database}`"
        )


@pytest.fixture(scope="module")
def schema(live: LiveApi) -> Any:
    return from_dict(DOCUMENT)


@pytest.mark.openapi
@pytest.mark.parametrize(
    ("method", "path"),
    [pytest.param(method, path, id=f"{method} {path}") for method, path in OPERATIONS],
)
def test_operation_answers_no_server_error_and_only_documented_statuses(
    live: LiveApi, schema: Any, method: str, path: str
) -> None:
    operation = schema[path][method]
    documented = DOCUMENT["paths"][path][method.lower()]
    workspace_id = _workspace_for(live, method, path)
    headers = _credentials(live, documented)

    @hypothesis_settings(
        max_examples=examples_for(path),
        deadline=None,
        derandomize=True,
        database=None,
        # No shrinking: a failure is reported as drawn, which is enough to reproduce it.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def answers_as_documented(case: Case[Any]) -> None:
        _pin_workspace(case, documented, workspace_id)
        response: SchemathesisResponse = case.call(headers=headers, app=live.app)
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance])

    answers_as_documented()


def without_lifespan(app: ASGIApp) -> ASGIApp:
    """`app` for schemathesis' ASGI transport: the fixture's TestClient already runs its lifespan, so
    a second startup (another SQL engine, event store and writer on the same app) must not happen."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await app(scope, receive, send)

    return serve


def _workspace_for(live: LiveApi, method: str, path: str) -> str:
    if (method, path) in DESTRUCTIVE:
        return live.victim_id
    if path.startswith(("/api/admin/", "/api-l/")):
        return live.child_id
    return live.parent.id


def _credentials(live: LiveApi, documented: dict[str, Any]) -> dict[str, str]:
    schemes = {name for requirement in documented["security"] for name in requirement}
    if "adminApiKey" in schemes:
        return {"authorization": f"Bearer {live.parent.admin_key}"}
    if "embeddedSession" in schemes:
        return {"authorization": f"Bearer {live.embed_token}"}
    if "writeKey" in schemes:
        return {"authorization": live.write_key}
    return {}  # member routes in AUTH_MODE=anonymous, and the signed or hashed public routes


def _pin_workspace(case: Case[Any], documented: dict[str, Any], workspace_id: str) -> None:
    """Requests name the workspace their credential opens, so they reach the handler's logic."""
    query_names = {p["name"] for p in documented.get("parameters", []) if p["in"] == "query"}
    if "workspaceId" in query_names and case.query is not None:
        case.query["workspaceId"] = workspace_id
    if isinstance(case.body, dict) and _body_names(documented) & {"workspaceId"}:
        case.body["workspaceId"] = workspace_id


def _body_names(documented: dict[str, Any]) -> set[str]:
    content = documented.get("requestBody", {}).get("content", {}).get("application/json", {})
    reference = content.get("schema", {}).get("$ref")
    if reference is None:
        return set()
    schema = DOCUMENT["components"]["schemas"][reference.rsplit("/", 1)[-1]]
    return set(schema.get("properties", {}))


def _body_schema(method: str, path: str) -> dict[str, Any]:
    operation = DOCUMENT["paths"][path][method.lower()]
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema: dict[str, Any] = DOCUMENT["components"]["schemas"][reference.rsplit("/", 1)[-1]]
    return schema


def _field_names(model: type[BaseModel]) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
