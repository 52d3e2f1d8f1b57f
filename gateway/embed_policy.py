"""The embed security policy, in one place: what an embedded session may reach, from which origins,
and the headers every response carries.

- Scope: a session minted with `components` opens only the API groups those screens use, most of
  them read-only; without `components` it opens every embedded group, as Dittofeed's token does.
  A session minted with `resourceIds` may only name those resources.
- Origins: embedded responses carry `Content-Security-Policy: frame-ancestors` with the session's
  allowed origins (else the workspace's, else its parent's; `*` when none are configured, which is
  Dittofeed's behaviour). An embedded API call whose `Origin` is neither feedgate itself nor an
  allowed origin is refused.
- Cookie-authenticated routes (`/api/*` for members, `/dashboard/*`) refuse unsafe methods sent
  cross-site (`Sec-Fetch-Site`, else `Origin`), which is the CSRF defence alongside SameSite=Lax.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.errors import PermissionDenied

Access = Literal["read", "write"]
Component = Literal["Broadcast", "MessageTemplate", "DeliveriesTable", "AnalysisChart", "Segment", "Journey"]

COMPONENTS: tuple[Component, ...] = (
    "Broadcast",
    "MessageTemplate",
    "DeliveriesTable",
    "AnalysisChart",
    "Segment",
    "Journey",
)
# The `/api-l/embedded/<group>` controllers (contract §2.5).
EMBEDDED_GROUPS = (
    "analysis",
    "broadcasts",
    "computed-properties",
    "content",
    "deliveries",
    "events",
    "journeys",
    "resources",
    "segments",
    "subscription-groups",
    "user-properties",
    "users",
)
_READ_SUPPORT: dict[str, Access] = {
    "resources": "read",
    "user-properties": "read",
    "subscription-groups": "read",
}
# What each screen needs: its own resources writable, what it shows or picks from readable.
GRANTS: dict[Component, dict[str, Access]] = {
    "Broadcast": {
        **_READ_SUPPORT,
        "broadcasts": "write",
        "content": "write",
        "segments": "read",
        "deliveries": "read",
        "events": "read",
        "analysis": "read",
        "computed-properties": "read",
        "users": "read",
    },
    "MessageTemplate": {**_READ_SUPPORT, "content": "write", "users": "read"},
    "Segment": {
        **_READ_SUPPORT,
        "segments": "write",
        "computed-properties": "write",
        "users": "read",
        "events": "read",
    },
    "Journey": {
        **_READ_SUPPORT,
        "journeys": "write",
        "content": "read",
        "segments": "read",
        "analysis": "read",
        "computed-properties": "read",
        "events": "read",
    },
    "DeliveriesTable": {**_READ_SUPPORT, "deliveries": "read", "content": "read", "events": "read"},
    "AnalysisChart": {**_READ_SUPPORT, "analysis": "read", "deliveries": "read", "content": "read"},
}
# POST routes that only read (a body carries the query), by path below the group.
_READING_POSTS = frozenset({"users", "users/", "users/count", "content/templates/render"})
# Request fields that name a resource, checked against a session's `resourceIds`.
_RESOURCE_ID_FIELDS = ("id", "journeyId", "broadcastId", "templateId", "segmentId", "userPropertyId")
_RESOURCE_ID_LIST_FIELDS = ("ids", "journeyIds", "broadcastIds", "templateIds", "segmentIds")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def access_needed(method: str, path_in_group: str) -> Access:
    """`read` for safe methods and reading POSTs, else `write`."""
    if method in SAFE_METHODS or path_in_group.strip("/") in {p.strip("/") for p in _READING_POSTS}:
        return "read"
    return "write"


def check_scope(components: frozenset[str] | None, group: str, access: Access) -> None:
    """:raises PermissionDenied: no component of the session grants `access` to `group`."""
    if components is None:
        return
    granted = {GRANTS[component].get(group) for component in components if component in GRANTS}
    if "write" in granted or (access == "read" and "read" in granted):
        return
    names = ", ".join(sorted(components))
    raise PermissionDenied(f"This session (components: {names}) may not {access} {group}")


def check_resource_ids(resource_ids: frozenset[str] | None, query: Any, body: Any) -> None:
    """:raises PermissionDenied: the request names a resource outside the session's `resourceIds`."""
    if resource_ids is None:
        return
    for source in (query, body):
        if not hasattr(source, "get"):
            continue
        for field in _RESOURCE_ID_FIELDS:
            value = source.get(field)
            if isinstance(value, str) and value not in resource_ids:
                raise PermissionDenied(f"{field} {value} is outside this session's resourceIds")
        for field in _RESOURCE_ID_LIST_FIELDS:
            values = source.getlist(field) if hasattr(source, "getlist") else source.get(field)
            for value in values if isinstance(values, list) else []:
                if isinstance(value, str) and value not in resource_ids:
                    raise PermissionDenied(f"{field} {value} is outside this session's resourceIds")


def normalize_origin(value: str) -> str | None:
    """`scheme://host[:port]` in lower case, or None when `value` is not a bare http(s) origin."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return f"{parts.scheme}://{parts.hostname.lower()}" + (f":{port}" if port else "")


def own_origins(connection: HTTPConnection, dashboard_url: str) -> set[str]:
    """The origins feedgate itself answers on: the request's host and DASHBOARD_URL."""
    origins = {normalize_origin(f"{connection.url.scheme}://{connection.url.netloc}")}
    origins.add(normalize_origin(dashboard_url))
    return {origin for origin in origins if origin}


def check_embedded_origin(connection: HTTPConnection, dashboard_url: str, allowed: Iterable[str]) -> None:
    """:raises PermissionDenied: a browser sent this call from an origin the session does not allow."""
    origin = connection.headers.get("origin")
    if origin is None:
        return
    normalized = normalize_origin(origin)
    if normalized is None or normalized not in own_origins(connection, dashboard_url) | set(allowed):
        raise PermissionDenied(f"Origin {origin} is not allowed for this session")


def frame_ancestors(origins: Iterable[str]) -> str:
    listed = " ".join(sorted(set(origins)))
    return f"frame-ancestors {listed or '*'}"


def _is_cookie_route(path: str) -> bool:
    if path.startswith("/dashboard/") or path == "/dashboard":
        return True
    return path.startswith("/api/") and not path.startswith(("/api/admin/", "/api/public/", "/api/webhooks/"))


def _is_embedded_route(path: str) -> bool:
    return path.startswith(("/api-l/embedded/", "/dashboard-l/embedded/"))


class SecurityHeaders:
    """Adds the policy's headers to every response and refuses cross-site unsafe cookie requests."""

    def __init__(self, app: ASGIApp, dashboard_url: str) -> None:
        self.app = app
        self.dashboard_url = dashboard_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        path: str = scope["path"]
        if scope["method"] not in SAFE_METHODS and _is_cookie_route(path) and self._is_cross_site(connection):
            response = JSONResponse({"message": "Cross-site request refused"}, status_code=403)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Referrer-Policy"] = "no-referrer"
                headers["X-Content-Type-Options"] = "nosniff"
                if _is_embedded_route(path):
                    embedded = scope.get("state", {}).get("embedded")
                    origins = embedded.frame_origins if embedded is not None else ()
                    headers["Content-Security-Policy"] = frame_ancestors(origins)
                elif "Content-Security-Policy" not in headers:
                    headers["Content-Security-Policy"] = "frame-ancestors 'self'"
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _is_cross_site(self, connection: HTTPConnection) -> bool:
        fetch_site = connection.headers.get("sec-fetch-site")
        if fetch_site is not None:
            return fetch_site not in ("same-origin", "none")
        origin = connection.headers.get("origin")
        if origin is None:
            return False
        return normalize_origin(origin) not in own_origins(connection, self.dashboard_url)
