"""The OpenAPI 3.1 document of every API route, served at `/documentation/json`, and a server-rendered
page of it at `/documentation`.

The document is built from the app's own routes (walked recursively through mounts) and the
catalog in `gateway.openapi_catalog`, whose request schemas are the pydantic models the handlers
validate with, so what is documented is what is enforced. `collect_operations` also reports routes
that have no catalog entry; tests/gateway/test_openapi.py fails on any, so a new route cannot ship
undocumented. Routes outside the API (HTML screens, static files) are excluded by prefix, with the
reason in `EXCLUDED_PREFIXES`; a trailing-slash twin of a documented route is listed as an alias of
it (`x-aliases`) rather than documented twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import BaseRoute, Mount, Route

from engine import __version__
from gateway.member_cookie import COOKIE_NAME
from gateway.openapi_catalog import MOUNTED, Operation, Security
from gateway.openapi_standalone import EXCLUDED_PATHS, EXCLUDED_PREFIXES, EXPANDED, STANDALONE
from gateway.paths import TEMPLATES_DIR

DOCUMENT_PATH = "/documentation/json"
PAGE_PATH = "/documentation"
METHOD_ORDER = ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD")

# Path prefix of each mount of the shared controllers → the credential it takes. Longest first.
MOUNTS: tuple[tuple[str, Security], ...] = (
    ("/api/admin", "adminApiKey"),
    ("/api-l/embedded", "embeddedSession"),
    ("/api", "memberSession"),
)
TAGS: dict[Security, str] = {
    "adminApiKey": "Admin API (admin API key)",
    "embeddedSession": "Embedded API (embed session token)",
    "memberSession": "Dashboard API (member session)",
    "writeKey": "Public ingestion (write key)",
    "none": "Public (signed, hashed or open)",
}
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "adminApiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <admin API key>` (64 hex). A parent's key also opens its "
        "children: name one with `workspaceId`.",
    },
    "embeddedSession": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "feedgate embed session token (POST /api-l/sessions)",
        "description": "A short-lived token for one workspace, within the scope it was minted with.",
    },
    "writeKey": {
        "type": "http",
        "scheme": "basic",
        "description": "`Authorization: Basic base64(secretId:secret)`, the workspace's public write key.",
    },
    "memberSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE_NAME,
        "description": "The dashboard's signed session cookie. In AUTH_MODE=anonymous no sign-in is "
        "needed: requests act as Admin of the first workspace.",
    },
}
ERROR_DESCRIPTIONS = {
    400: "The request is malformed; `message` names the field.",
    401: "No valid credential.",
    403: "The credential may not do this (role, scope, workspace, origin).",
    404: "The target does not exist.",
    409: "It conflicts with an existing resource.",
    413: "The body is over API_BODY_LIMIT.",
    503: "A backing store is unreachable; retry after `Retry-After` seconds.",
}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": 'An error: `{message}`, or a typed body such as `{type: "WorkspaceAlreadyExists"}`.',
    "properties": {"message": {"type": "string"}, "type": {"type": "string"}},
}
ENGINE_VALIDATED = "Validated by the engine, whose errors name the fields inside it."
# Fields typed `Any` in a model because the engine validates them: object, unless said otherwise here.
ANY_FIELD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("RenderContent", "value"): {"type": ["string", "object"], "description": "Text, or an Emailo document."},
    ("UpsertTemplateBody", "draft"): {"type": ["object", "null"], "description": "null removes the draft."},
    ("UpsertJourneyBody", "draft"): {"type": ["object", "null"], "description": "null removes the draft."},
}
_PATH_PARAMETER = re.compile(r"\{(\w+)(?::[^}]*)?\}")
_pages = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined)


@dataclass(frozen=True)
class DocumentedOperation:
    method: str
    path: str
    route_name: str
    operation: Operation
    security: Security
    # One of several documented paths of a templated route (EXPANDED).
    expanded: bool = False


@dataclass(frozen=True)
class Coverage:
    documented: list[DocumentedOperation]
    # (method, path, documented path it duplicates)
    aliases: list[tuple[str, str, str]]
    # (method, path, reason)
    excluded: list[tuple[str, str, str]]
    # (method, path): a route with no catalog entry
    missing: list[tuple[str, str]]


def walk_routes(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, BaseRoute]]:
    """(full path, route) of every Route, descending into mounts; a mount without routes (static
    files) is yielded itself."""
    for route in routes:
        if isinstance(route, Mount):
            inner = route.routes
            if inner:
                yield from walk_routes(inner, prefix + route.path)
            else:
                yield prefix + route.path, route
        elif isinstance(route, Route):
            yield prefix + route.path, route


def collect_operations(routes: Iterable[BaseRoute]) -> Coverage:
    """Sort every routed (method, path) into documented, alias, excluded or missing."""
    walked = list(walk_routes(routes))
    routed = {
        (method, openapi_path(path))
        for path, route in walked
        if isinstance(route, Route)
        for method in route.methods or ()
    }
    coverage = Coverage([], [], [], [])
    for path, route in walked:
        reason = excluded_reason(path)
        if not isinstance(route, Route):
            if reason is None:
                coverage.missing.append(("*", path))
            else:
                coverage.excluded.append(("*", path, reason))
            continue
        methods = set(route.methods or ())
        for method in sorted(methods, key=METHOD_ORDER.index):
            if method == "HEAD" and "GET" in methods:
                continue  # Starlette answers HEAD for every GET
            if reason is not None:
                coverage.excluded.append((method, path, reason))
                continue
            documented_path = openapi_path(path)
            if documented_path.endswith("/") and (method, documented_path.rstrip("/")) in routed:
                coverage.aliases.append((method, documented_path, documented_path.rstrip("/")))
                continue
            found = find_operations(method, documented_path)
            if not found:
                coverage.missing.append((method, path))
            for concrete_path, operation, security in found:
                coverage.documented.append(
                    DocumentedOperation(
                        method,
                        concrete_path,
                        route.name,
                        operation,
                        security,
                        concrete_path != documented_path,
                    )
                )
    return coverage


def openapi_path(path: str) -> str:
    """Starlette's `{name:convertor}` as OpenAPI's `{name}`."""
    return _PATH_PARAMETER.sub(r"{\1}", path)


def excluded_reason(path: str) -> str | None:
    if path in EXCLUDED_PATHS:
        return EXCLUDED_PATHS[path]
    for prefix, reason in EXCLUDED_PREFIXES.items():
        if path == prefix.rstrip("/") or path.startswith(prefix):
            return reason
    return None


def find_operations(method: str, path: str) -> list[tuple[str, Operation, Security]]:
    """The documented (path, operation, security) of a routed (method, path), or [] if none."""
    expanded = EXPANDED.get((method, path))
    if expanded is not None:
        return [(concrete, operation, operation.security) for concrete, operation in expanded.items()]
    standalone = STANDALONE.get((method, path))
    if standalone is not None:
        return [(path, standalone, standalone.security)]
    for prefix, security in MOUNTS:
        if path.startswith(prefix + "/"):
            mounted = MOUNTED.get((method, path[len(prefix) :].rstrip("/")))
            return [(path, mounted, security)] if mounted is not None else []
    return []


def build_document(routes: Iterable[BaseRoute], *, api_prefix: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`."""
    coverage = collect_operations(routes)
    models = _models_of(coverage.documented)
    refs, definitions = _model_schemas(models)
    aliases: dict[str, list[str]] = {}
    for _, alias, canonical in coverage.aliases:
        aliases.setdefault(canonical, []).append(alias)
    paths: dict[str, dict[str, Any]] = {}
    seen_ids: set[str] = set()
    for documented in coverage.documented:
        item = paths.setdefault(documented.path, {})
        if documented.path in aliases:
            item["x-aliases"] = sorted(set(aliases[documented.path]))
        item[documented.method.lower()] = _operation_object(documented, refs, definitions, seen_ids)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "feedgate API",
            "version": __version__,
            "description": "Dittofeed-compatible API of feedgate. Request schemas are the models the "
            "handlers validate with. The same controllers answer under /api/admin (admin API key), "
            "/api (member session) and /api-l/embedded (embed session token).",
        },
        "servers": [{"url": api_prefix or "/"}],
        "tags": [{"name": name} for name in TAGS.values()],
        "paths": paths,
        "components": {
            "schemas": {**definitions, "Error": ERROR_SCHEMA},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def error_statuses(operation: Operation, security: Security) -> tuple[int, ...]:
    """The error statuses an operation documents: its own list, else its credential's defaults."""
    if operation.errors is not None:
        statuses = set(operation.errors)
    else:
        statuses = {400, 401, 403, 404, 503}
        if operation.body is not None or operation.raw_body is not None:
            statuses.add(413)
    if operation.conflict:
        statuses.add(409)
    return tuple(sorted(statuses))


def _models_of(documented: Sequence[DocumentedOperation]) -> list[type[BaseModel]]:
    models: dict[type[BaseModel], None] = {}
    for item in documented:
        for model in (item.operation.body, item.operation.query):
            if model is not None:
                models[model] = None
    return list(models)


def _model_schemas(
    models: list[type[BaseModel]],
) -> tuple[dict[type[BaseModel], str], dict[str, dict[str, Any]]]:
    """Each model's component name, and the component schemas (pydantic's, with `Any` fields made
    explicit)."""
    mode: JsonSchemaMode = "validation"
    mapping, top = models_json_schema(
        [(model, mode) for model in models], ref_template="#/components/schemas/{model}"
    )
    refs = {model: str(mapping[(model, mode)]["$ref"]).rsplit("/", 1)[-1] for model in models}
    definitions: dict[str, dict[str, Any]] = top.get("$defs", {})
    for name, schema in definitions.items():
        title = str(schema.get("title", name))
        for field_name, field_schema in schema.get("properties", {}).items():
            if _is_any(field_schema):
                explicit = ANY_FIELD_SCHEMAS.get((title, field_name), {"type": "object"})
                schema["properties"][field_name] = {"description": ENGINE_VALIDATED, **explicit}
    return refs, definitions


def _is_any(schema: dict[str, Any]) -> bool:
    return set(schema) <= {"title", "default", "description"}


def _operation_object(
    documented: DocumentedOperation,
    refs: dict[type[BaseModel], str],
    definitions: dict[str, dict[str, Any]],
    seen_ids: set[str],
) -> dict[str, Any]:
    operation = documented.operation
    parameters = [
        *(_query_parameters(definitions[refs[operation.query]], definitions) if operation.query else []),
        *(
            {
                "name": p.name,
                "in": "query",
                "required": p.required,
                "schema": p.schema,
                "description": p.description,
            }
            for p in operation.params
            if not (operation.query and p.name in definitions[refs[operation.query]].get("properties", {}))
        ),
        *(
            {
                "name": h.name,
                "in": "header",
                "required": h.required,
                "schema": {"type": "string"},
                "description": h.description,
            }
            for h in operation.headers
        ),
    ]
    result: dict[str, Any] = {
        "operationId": _operation_id(documented, seen_ids),
        "summary": operation.summary,
        "tags": [TAGS[documented.security]],
        "security": [] if documented.security == "none" else [{documented.security: []}],
    }
    if parameters:
        result["parameters"] = parameters
    body_schema = (
        {"$ref": f"#/components/schemas/{refs[operation.body]}"} if operation.body else operation.raw_body
    )
    if body_schema is not None:
        result["requestBody"] = {
            "required": operation.body_required,
            "content": {operation.body_media: {"schema": body_schema}},
        }
    responses: dict[str, Any] = {str(operation.status): _response(operation.returns, operation.media)}
    for status, description in operation.also.items():
        responses[str(status)] = _response(description, None if 300 <= status < 400 else operation.media)
    for status in error_statuses(operation, documented.security):
        responses.setdefault(str(status), _error_response(status))
    result["responses"] = dict(sorted(responses.items()))
    return result


def _query_parameters(schema: dict[str, Any], definitions: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One query parameter per property of a query model. Objects (and lists of objects, which
    accept a lone object) are `deepObject`: `filters[journeyIds]=…`, as the `qs` reader takes them."""
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        value = _without_null(prop)
        resolved = _resolve(value, definitions)
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if resolved.get("type") == "array" and _is_object(resolved.get("items", {}), definitions):
            parameter |= {"style": "deepObject", "explode": True, "schema": resolved["items"]}
            parameter["description"] = f"One item; repeat as `{name}[0][key]=…` for several."
        elif _is_object(value, definitions):
            parameter |= {"style": "deepObject", "explode": True, "schema": value}
        else:
            parameter |= {"style": "form", "explode": True, "schema": value}
        if "description" in prop:
            parameter.setdefault("description", prop["description"])
        parameters.append(parameter)
    return parameters


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query value is absent or text: `X | None` is documented as X (not required)."""
    options = schema.get("anyOf")
    if options is None:
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    rest = {key: value for key, value in schema.items() if key not in ("anyOf", "default")}
    if len(kept) == 1:
        return {**rest, **kept[0]}
    return {**rest, "anyOf": kept}


def _resolve(schema: dict[str, Any], definitions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return definitions[ref.rsplit("/", 1)[-1]]
    return schema


def _is_object(schema: dict[str, Any], definitions: dict[str, dict[str, Any]]) -> bool:
    return _resolve(schema, definitions).get("type") == "object"


def _response(description: str, media: str | None) -> dict[str, Any]:
    if media is None:
        return {"description": description}
    schema: dict[str, Any] = {} if media == "application/json" else {"type": "string"}
    return {"description": description, "content": {media: {"schema": schema}}}


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if status == 503:
        response["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    return response


def _operation_id(documented: DocumentedOperation, seen: set[str]) -> str:
    name = documented.route_name
    if documented.expanded:
        name += "_" + documented.path.rsplit("/", 1)[-1]
    base = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or documented.method.lower()
    candidate, counter = base, 2
    while candidate in seen:
        candidate, counter = f"{base}_{counter}", counter + 1
    seen.add(candidate)
    return candidate


def cached_document(request: Request) -> dict[str, Any]:
    """The app's document, built on first use (the routes do not change while it runs)."""
    document: dict[str, Any] | None = getattr(request.app.state, "openapi_document", None)
    if document is None:
        document = build_document(request.app.routes, api_prefix=request.app.state.settings.api_prefix)
        request.app.state.openapi_document = document
    return document


async def document_json(request: Request) -> JSONResponse:
    return JSONResponse(cached_document(request))


async def document_page(request: Request) -> HTMLResponse:
    document = cached_document(request)
    groups: dict[str, list[dict[str, Any]]] = {tag: [] for tag in TAGS.values()}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method.startswith("x-"):
                continue
            groups[operation["tags"][0]].append(
                {
                    **operation,
                    "method": method.upper(),
                    "path": path,
                    "aliases": item.get("x-aliases", []),
                    "parameters": [
                        {"description": "", **parameter} for parameter in operation.get("parameters", [])
                    ],
                    "requestBody": operation.get("requestBody"),
                }
            )
    html = _pages.get_template("documentation.html").render(
        info=document["info"],
        groups=[(tag, operations) for tag, operations in groups.items() if operations],
        schemes=document["components"]["securitySchemes"],
        schemas=document["components"]["schemas"],
        document_path=DOCUMENT_PATH,
        excluded=EXCLUDED_PREFIXES,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


routes = [
    Route(DOCUMENT_PATH, document_json, methods=["GET"], name="documentation:json"),
    Route(PAGE_PATH, document_page, methods=["GET"], name="documentation:page"),
]
