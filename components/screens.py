"""What every screen shares: who opened it, in which shell, and how a page is rendered.

- Embedded (`/dashboard-l/embedded/*`): the first load carries `?token=…&workspaceId=…`; later
  requests (htmx, boosted navigation) carry the token in `Authorization: Bearer`, put there by
  static/embed.js, which keeps it in memory and removes it from the address bar. The token's scope
  must include the screen's component.
- Console (`/dashboard/*`): the signed-in member's current workspace, as on `/api/*`.

A failure renders an HTML page (or fragment, for htmx) with the error tree's status; on a 401 the
embed shell tells the parent window that the session ended so the host can mint a new one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from components.theme import theme_stylesheet
from engine.errors import EngineError, NotAuthenticated, PermissionDenied
from engine.member_roles import role_at_least
from engine.storage.models import Role, Workspace
from engine.themes import read_effective_theme
from gateway.deps import in_read_transaction
from gateway.embed_policy import check_scope
from gateway.embedded_auth import EmbeddedSession, open_embedded_session
from gateway.errors import status_for
from gateway.member_auth import resolve_member
from gateway.paths import TEMPLATES_DIR

EMBED_PREFIX = "/dashboard-l/embedded"
CONSOLE_PREFIX = "/dashboard"

templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR / "components"), autoescape=True, undefined=StrictUndefined
)


@dataclass(frozen=True)
class Screen:
    """One opened screen: the workspace it shows and how its links and API calls are built."""

    workspace_id: str
    workspace_name: str
    embedded: EmbeddedSession | None
    # Where this shell's pages live, and the API mount its forms call.
    page_base: str
    api_base: str
    can_write: bool
    # The workspace's theme as `:root{…}` declarations (components.theme); empty for the defaults.
    theme_css: Markup = Markup("")

    def page(self, path: str, **params: str) -> str:
        """A link to another screen of the same shell, keeping the workspace."""
        return f"{self.page_base}{path}?{urlencode({'workspaceId': self.workspace_id, **params})}"

    def check_write(self, group: str, what: str) -> None:
        """:raises PermissionDenied: the embed session's scope (API `group`), or the member's role,
        does not allow changing `what`."""
        if self.embedded is not None:
            check_scope(self.embedded.components, group, "write")
        elif not self.can_write:
            raise PermissionDenied(f"Changing {what} needs the Author role")

    def may_write(self, group: str) -> bool:
        try:
            self.check_write(group, group)
        except PermissionDenied:
            return False
        return True

    def may_create(self, group: str) -> bool:
        """A session limited to named resources cannot name one it has not created yet."""
        return self.may_write(group) and (self.embedded is None or self.embedded.resource_ids is None)


ScreenHandler = Callable[[Request, Screen], Awaitable[Response]]


def screen_routes(
    path: str, handler: ScreenHandler, *, component: str, name: str, methods: list[str] | None = None
) -> list[Route]:
    """The screen at `path` in both shells: embedded (scope must include `component`) and console."""
    return [
        Route(
            f"{EMBED_PREFIX}{path}",
            _opened(handler, component),
            methods=methods or ["GET"],
            name=f"embedded:{name}",
        ),
        Route(
            f"{CONSOLE_PREFIX}{path}",
            _opened(handler, component),
            methods=methods or ["GET"],
            name=f"console:{name}",
        ),
    ]


def render(
    request: Request, screen: Screen, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """Render `template` with the screen; htmx requests for a fragment get the template alone."""
    body = templates.get_template(template).render(screen=screen, request=request, **context)
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def navigate(request: Request, url: str) -> Response:
    """After a write: have htmx load `url` as a navigation (so it carries the session's header), or
    redirect a plain form post."""
    if "hx-request" in request.headers:
        return Response(status_code=204, headers={"HX-Location": url})
    return RedirectResponse(url, status_code=303)


def _opened(handler: ScreenHandler, component: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            screen = await in_read_transaction(request, lambda session: _open(request, session, component))
            return await handler(request, screen)
        except EngineError as error:
            return _error_page(request, error)

    return endpoint


def _open(request: Request, session: Session, component: str) -> Screen:
    if request.scope["path"].startswith(EMBED_PREFIX):
        return _open_embedded(request, session, component)
    context = resolve_member(request, session)
    workspace = session.get(Workspace, context.current.workspace_id)
    assert workspace is not None
    return Screen(
        workspace_id=workspace.id,
        workspace_name=workspace.name,
        theme_css=theme_stylesheet(read_effective_theme(session, workspace)),
        embedded=None,
        page_base=CONSOLE_PREFIX,
        api_base="/api",
        can_write=role_at_least(context.current.role, Role.AUTHOR),
    )


def _open_embedded(request: Request, session: Session, component: str) -> Screen:
    header = request.headers.get("authorization", "")
    scheme, _, bearer = header.partition(" ")
    token = bearer if scheme == "Bearer" and bearer else request.query_params.get("token")
    if not token:
        raise NotAuthenticated("This screen needs a session token")
    embedded = open_embedded_session(request, session, token)
    asked = request.query_params.get("workspaceId")
    if asked is not None and asked != embedded.workspace_id:
        raise PermissionDenied("workspaceId does not match the session's workspace")
    if embedded.components is not None and component not in embedded.components:
        raise PermissionDenied(f"This session does not open the {component} screen")
    workspace = session.get(Workspace, embedded.workspace_id)
    assert workspace is not None
    return Screen(
        workspace_id=workspace.id,
        workspace_name=workspace.name,
        theme_css=theme_stylesheet(read_effective_theme(session, workspace)),
        embedded=embedded,
        page_base=EMBED_PREFIX,
        api_base="/api-l/embedded",
        can_write=True,
    )


def _error_page(request: Request, error: EngineError) -> HTMLResponse:
    status = status_for(error)
    embedded = request.scope["path"].startswith(EMBED_PREFIX)
    body = templates.get_template("error.html").render(
        status=status, message=error.message, embedded=embedded, fragment="hx-request" in request.headers
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
