"""Access logs: one JSON line per HTTP request on the `feedgate.access` logger, and the request id.

This module owns what an access line may say. It says which route answered (the path *template*,
`/api/admin/segments/{id}`, so ids stay out and the set of values stays small), never a header, a
cookie, a body or a raw path; the query string appears with the values of credential-like parameters
(`token=`, `code=`, `apiKey=`, ...) replaced, because sign-in callbacks and unsubscribe links carry
them there. The request id is the caller's `X-Request-Id` when it looks like an id (so a proxy's id
threads through), else a fresh one; either way it is echoed on the response and kept on
`request.state.request_id` for handlers.

The workspace a request acted on is learnt from `request.state`: authorisers call `note_workspace`;
until they all do, the embedded session and member context they already keep there are read too.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ACCESS_LOGGER = "feedgate.access"
REQUEST_ID_HEADER = "x-request-id"
REDACTED = "[redacted]"
# Long enough for any tracing id format in use (UUIDs, W3C trace ids, ULIDs), short enough that a
# caller cannot stuff a payload into every log line; no spaces, quotes or control characters.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_SECRET_WORDS = ("token", "secret", "password", "passwd", "key", "signature", "auth", "session", "credential")
_SECRET_NAMES = frozenset({"code", "state", "sig", "hash", "jwt"})
_NON_ALNUM = re.compile(r"[^a-z0-9]")
_WORKSPACE_STATE = "workspace_id"

logger = logging.getLogger(ACCESS_LOGGER)


def note_workspace(request: Request, workspace_id: str) -> None:
    """Record the workspace the request resolved (authorisers call this) for the access line."""
    request.state.workspace_id = workspace_id


def read_request_id(headers: Mapping[str, str]) -> str:
    """The caller's X-Request-Id when it is a sane id, else a new random one."""
    offered = headers.get(REQUEST_ID_HEADER, "").strip()
    if _SANE_REQUEST_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def redact_query(query: str) -> str:
    """The query string with the value of every credential-like parameter replaced by REDACTED."""
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(name, REDACTED if is_secret_parameter(name) else value) for name, value in pairs])


def is_secret_parameter(name: str) -> bool:
    """True for parameter names that carry credentials: token, code, apiKey, writeKey, password, ..."""
    plain = _NON_ALNUM.sub("", name.lower())
    return plain in _SECRET_NAMES or any(word in plain for word in _SECRET_WORDS)


def route_template(scope: Scope) -> str | None:
    """The path template of the route that answered (`/api/admin/segments/{id}`), or None when no
    route matched. Starlette's router records the route on the scope; when the response came before
    routing (a refused body, say) the app's routes are matched here instead."""
    route = scope.get("route") or _match_route(scope)
    if route is None:
        return None
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else None


def _match_route(scope: Scope) -> BaseRoute | None:
    router = getattr(scope.get("app"), "router", None)
    partial = None
    for route in getattr(router, "routes", ()):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return route  # type: ignore[no-any-return]
        if match == Match.PARTIAL and partial is None:
            partial = route
    return partial


def resolved_workspace(state: Mapping[str, Any]) -> str | None:
    """The workspace the request acted on, from what the authorisers left on `request.state`."""
    noted = state.get(_WORKSPACE_STATE)
    if isinstance(noted, str):
        return noted
    embedded = getattr(state.get("embedded"), "workspace_id", None)
    if isinstance(embedded, str):
        return embedded
    member_workspace = getattr(getattr(state.get("member"), "current", None), "workspace_id", None)
    return member_workspace if isinstance(member_workspace, str) else None


def configure_access_log(level: str = "INFO") -> None:
    """Send access lines to stderr as bare JSON (no prefix), apart from the application log format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


class RequestLog:
    """Pure ASGI middleware: assigns the request id, echoes it, and writes the access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = read_request_id(Headers(scope=scope))
        # Shared by every copy of the scope further in, so what handlers note reaches this line.
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message["headers"] = [*kept, (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self._write_line(scope, state, request_id, status, started)

    def _write_line(
        self, scope: Scope, state: Mapping[str, Any], request_id: str, status: int, started: float
    ) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        line: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": "request",
            "request_id": request_id,
            "method": scope["method"],
            "route": route_template(scope),
            "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            "workspace_id": resolved_workspace(state),
        }
        query = redact_query(scope.get("query_string", b"").decode("latin-1"))
        if query:
            line["query"] = query
        logger.info(json.dumps(line, separators=(",", ":")))
