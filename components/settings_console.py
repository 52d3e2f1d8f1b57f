"""What every member-console settings page shares (`/dashboard/settings/*`, never embedded): the
sections and the roles each needs, opening a page for the signed-in member, and the one way a page
answers a read, a write, a refusal or a mistake.

The roles match `/api/*` (gateway.mounts): provider, key, configuration and origin settings need
WorkspaceManager to read and write, members need Admin, subscription groups are a resource (Viewer
reads, Author writes). A section's page is re-rendered after each write with what happened: a notice,
the field at fault (4xx) with the posted values kept, or a credential shown this one time. A write
answers with `HX-Replace-Url` set to the section's page, so a reload reads the page afresh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from components.screens import CONSOLE_PREFIX, Screen, render, templates
from engine.errors import EngineError, InvalidInput, NotAuthenticated, PermissionDenied
from engine.member_roles import role_at_least
from engine.storage.models import Role, Workspace
from gateway.deps import in_transaction
from gateway.errors import status_for
from gateway.inputs import resolve_workspace_id
from gateway.member_auth import resolve_member

SETTINGS_PATH = "/settings"
LOGIN_PATH = "/dashboard/login"
# A settings form has a handful of fields; anything near this is not a browser posting our form.
MAX_FORM_FIELDS = 50


@dataclass(frozen=True)
class Section:
    slug: str
    title: str
    summary: str
    read_role: Role
    write_role: Role


PROVIDERS = Section(
    "providers",
    "Providers",
    "Email and SMS providers and the defaults messages go through.",
    Role.WORKSPACE_MANAGER,
    Role.WORKSPACE_MANAGER,
)
WRITE_KEYS = Section(
    "write-keys",
    "Write keys",
    "Keys your apps send events with.",
    Role.WORKSPACE_MANAGER,
    Role.WORKSPACE_MANAGER,
)
ADMIN_KEYS = Section(
    "admin-keys",
    "Admin API keys",
    "Keys your backend calls the admin API and mints embedded sessions with.",
    Role.WORKSPACE_MANAGER,
    Role.WORKSPACE_MANAGER,
)
MEMBERS = Section(
    "members",
    "Members and roles",
    "Who may open this workspace, and with which role.",
    Role.ADMIN,
    Role.ADMIN,
)
SUBSCRIPTION_GROUPS = Section(
    "subscription-groups",
    "Subscription groups",
    "The lists users opt in to or out of, per channel.",
    Role.VIEWER,
    Role.AUTHOR,
)
COMPONENT_CONFIGURATIONS = Section(
    "component-configurations",
    "Component configurations",
    "How each embedded screen is shaped.",
    Role.WORKSPACE_MANAGER,
    Role.WORKSPACE_MANAGER,
)
EMBED_ORIGINS = Section(
    "embed-origins",
    "Embed allowed origins",
    "The sites allowed to frame this workspace's embedded screens.",
    Role.WORKSPACE_MANAGER,
    Role.WORKSPACE_MANAGER,
)
SECTIONS: tuple[Section, ...] = (
    PROVIDERS,
    WRITE_KEYS,
    ADMIN_KEYS,
    MEMBERS,
    SUBSCRIPTION_GROUPS,
    COMPONENT_CONFIGURATIONS,
    EMBED_ORIGINS,
)


@dataclass(frozen=True)
class SettingsPage:
    """One opened settings page: the console screen, the member's role and the section shown."""

    screen: Screen
    role: Role
    section: Section | None

    @property
    def workspace_id(self) -> str:
        return self.screen.workspace_id

    @property
    def url(self) -> str:
        return section_url(self.screen, self.section)

    @property
    def may_write(self) -> bool:
        return self.section is not None and role_at_least(self.role, self.section.write_role)

    def readable_sections(self) -> list[Section]:
        return [section for section in SECTIONS if role_at_least(self.role, section.read_role)]

    def action(self, name: str) -> str:
        """The URL a form of this section posts `name` to."""
        assert self.section is not None
        return self.screen.page(f"{SETTINGS_PATH}/{self.section.slug}/{name}")


@dataclass(frozen=True)
class Revealed:
    """A credential shown once, right after it was created; never stored for a later page."""

    label: str
    value: str


@dataclass(frozen=True)
class Outcome:
    """What the last request did, for the page that answers it."""

    status: int = 200
    notice: str | None = None
    error: str | None = None
    # The field at fault, e.g. `body/definition/type`, and the posted values to show again.
    field: str | None = None
    form: Mapping[str, str] = dataclasses.field(default_factory=dict)
    revealed: Revealed | None = None


View = Callable[[Request, SettingsPage, Outcome], Awaitable[Response]]
Action = Callable[[Request, SettingsPage, dict[str, str]], Awaitable[Outcome]]


def section_url(screen: Screen, section: Section | None) -> str:
    return screen.page(SETTINGS_PATH if section is None else f"{SETTINGS_PATH}/{section.slug}")


def section_routes(section: Section, view: View, actions: Mapping[str, Action]) -> list[Route]:
    """The section's page (GET) and each action (POST `<page>/<name>`), in the console only."""
    base = f"{CONSOLE_PREFIX}{SETTINGS_PATH}/{section.slug}"
    name = "console:settings_" + section.slug.replace("-", "_")
    routes = [Route(base, _shown(section, view), methods=["GET"], name=name)]
    for action_name, action in actions.items():
        routes.append(
            Route(
                f"{base}/{action_name}",
                _acted(section, view, action),
                methods=["POST"],
                name=f"{name}_{action_name.replace('-', '_')}",
            )
        )
    return routes


def render_section(
    request: Request, page: SettingsPage, template: str, outcome: Outcome, **context: Any
) -> HTMLResponse:
    """The section's template with the shared context: the page, the outcome, the posted values."""
    return render(
        request, page.screen, template, status=outcome.status, page=page, outcome=outcome, **context
    )


async def read_form(request: Request) -> dict[str, str]:
    """The posted form's text fields (the last value of a repeated name)."""
    limit = request.app.state.settings.api_body_limit
    try:
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=limit)
    except HTTPException as error:
        raise InvalidInput(f"body {error.detail}", field="body") from None
    return {name: value for name, value in form.multi_items() if isinstance(value, str)}


async def open_page(request: Request, section: Section | None) -> SettingsPage:
    """The member's current workspace, as on `/api/*`: naming another workspace is refused."""

    def open_(session: Session) -> SettingsPage:
        context = resolve_member(request, session)
        asked = resolve_workspace_id(request)
        if asked is not None and asked != context.current.workspace_id:
            raise PermissionDenied("workspaceId is not the member's current workspace")
        workspace = session.get(Workspace, context.current.workspace_id)
        assert workspace is not None
        screen = Screen(
            workspace_id=workspace.id,
            workspace_name=workspace.name,
            embedded=None,
            page_base=CONSOLE_PREFIX,
            api_base="/api",
            can_write=role_at_least(context.current.role, Role.AUTHOR),
        )
        return SettingsPage(screen, context.current.role, section)

    return await in_transaction(request, open_)


def failure_page(request: Request, page: SettingsPage, status: int, message: str) -> HTMLResponse:
    """The settings shell (nav kept) with only a message: a page this member may not read."""
    return render(
        request, page.screen, "settings/failed.html", status=status, page=page, message=message, code=status
    )


def unopened_page(request: Request, error: EngineError) -> Response:
    """No page could be opened: send a browser to sign in, else the shared error page."""
    if (
        isinstance(error, NotAuthenticated)
        and request.method == "GET"
        and "hx-request" not in request.headers
    ):
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{LOGIN_PATH}?{urlencode({'redirectTo': path})}", status_code=302)
    status = status_for(error)
    body = templates.get_template("error.html").render(
        status=status, message=error.message, embedded=False, fragment="hx-request" in request.headers
    )
    return HTMLResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _refusal(page: SettingsPage, needed: Role) -> str:
    return f"This needs the {needed.value} role or higher; yours is {page.role.value}."


def _shown(section: Section, view: View) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            page = await open_page(request, section)
        except EngineError as error:
            return unopened_page(request, error)
        if not role_at_least(page.role, section.read_role):
            return failure_page(request, page, 403, _refusal(page, section.read_role))
        try:
            return await view(request, page, Outcome())
        except EngineError as error:
            return failure_page(request, page, status_for(error), error.message)

    return endpoint


def _acted(section: Section, view: View, action: Action) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            page = await open_page(request, section)
        except EngineError as error:
            return unopened_page(request, error)
        if not role_at_least(page.role, section.read_role):
            return failure_page(request, page, 403, _refusal(page, section.write_role))
        form: dict[str, str] = {}
        try:
            if not page.may_write:
                raise PermissionDenied(_refusal(page, section.write_role))
            form = await read_form(request)
            outcome = await action(request, page, form)
        except EngineError as error:
            outcome = Outcome(
                status=status_for(error),
                error=error.message,
                field=getattr(error, "field", None),
                form=form,
            )
        try:
            response = await view(request, page, outcome)
        except EngineError as error:
            return failure_page(request, page, status_for(error), error.message)
        response.headers["HX-Replace-Url"] = page.url
        return response

    return endpoint
