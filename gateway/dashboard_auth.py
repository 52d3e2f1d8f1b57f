"""Dashboard sign-in and sign-out for every AUTH_MODE, workspace switching, and the `/dashboard` landing
page (Dittofeed §1.4, §1.5).

- multi-tenant: `GET /dashboard/login` sends the browser to the OpenID provider (`gateway.oidc`);
  `GET /dashboard/oauth2/callback` verifies the answer, upserts the member (`engine.members`) and
  stores `member_id` in the session; `GET /dashboard/signout` ends the session here and, when the
  provider has an end-session endpoint, there too (it returns to `/dashboard/signout/complete`).
  A callback that fails answers a page naming what failed (400 for a response this browser did not
  ask for, 401 for a refusal, 503 for an unreachable provider) and stores nothing.
- single-tenant: `GET /dashboard/auth/single-tenant` is the password form; `POST
  /api/public/single-tenant/login` takes `{password}` as JSON (Dittofeed's client) or as that form;
  `GET /api/public/single-tenant/signout` ends the session. These answer 404 in the other modes.
- `GET /dashboard/select-workspace?workspaceId&redirectTo` makes a workspace the member's current one;
  `redirectTo` (here and on login) is kept only when it is a path on this origin.

Signing in replaces the whole session, so nothing from before the login survives it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from engine.errors import InvalidInput, NotAuthenticated, PermissionDenied
from engine.members import select_workspace, upsert_member_from_profile
from engine.storage.models import WorkspaceMember
from gateway.deps import in_transaction
from gateway.errors import status_for
from gateway.inputs import read_json, validate
from gateway.member_auth import resolve_member
from gateway.oidc import LOGIN_ERRORS, OpenIdClient
from gateway.paths import TEMPLATES_DIR
from gateway.settings import Settings

logger = logging.getLogger(__name__)

DASHBOARD_PATH = "/dashboard"
LOGIN_PATH = "/dashboard/login"
CALLBACK_PATH = "/dashboard/oauth2/callback"
SIGNOUT_COMPLETE_PATH = "/dashboard/signout/complete"
SELECT_WORKSPACE_PATH = "/dashboard/select-workspace"
SINGLE_TENANT_PAGE_PATH = "/dashboard/auth/single-tenant"
SINGLE_TENANT_LOGIN_PATH = "/api/public/single-tenant/login"
SINGLE_TENANT_SIGNOUT_PATH = "/api/public/single-tenant/signout"
ANONYMOUS_EMAIL = "anonymous@email.com"
LOGIN_REFUSED = "Invalid password."
# Where a login started with ?redirectTo= goes once it succeeds.
RETURN_TO_KEY = "login_return_to"

_pages = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR / "dashboard"), autoescape=True, undefined=StrictUndefined
)
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none';"
        " base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class PasswordBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    password: str


class SelectWorkspaceQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str
    redirectTo: str | None = None


def safe_return_path(value: str | None, default: str = DASHBOARD_PATH) -> str:
    """`value` when it is a path on this origin (`/…`, not `//host` or `/\\host`), else `default`."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def open_id_client(request: Request) -> OpenIdClient:
    """The app's OpenID client, made on first use (it holds the provider's cached metadata and keys)."""
    client: OpenIdClient | None = getattr(request.app.state, "open_id_client", None)
    if client is None:
        client = OpenIdClient(_settings(request).open_id)
        request.app.state.open_id_client = client
    return client


async def login(request: Request) -> Response:
    settings = _settings(request)
    if settings.auth_mode == "anonymous":
        return RedirectResponse(DASHBOARD_PATH, status_code=302)
    if settings.auth_mode == "single-tenant":
        return RedirectResponse(SINGLE_TENANT_PAGE_PATH, status_code=302)
    try:
        client = open_id_client(request)
    except ValueError as error:
        return _error_page(500, "Sign-in is not configured", str(error), retry=False)
    request.session[RETURN_TO_KEY] = safe_return_path(request.query_params.get("redirectTo"))
    try:
        return await client.authorize_redirect(request, settings.dashboard_url + CALLBACK_PATH)
    except LOGIN_ERRORS as error:
        return _error_page(status_for(error), "Sign-in failed", error.message)


async def oauth_callback(request: Request) -> Response:
    settings = _require_mode(request, "multi-tenant")
    try:
        client = open_id_client(request)
    except ValueError as error:
        return _error_page(500, "Sign-in is not configured", str(error), retry=False)
    try:
        claims = await client.complete_login(request)
    except LOGIN_ERRORS as error:
        logger.info("dashboard login refused: %s", error.message)
        return _error_page(status_for(error), "Sign-in failed", error.message)

    def upsert(session: Session) -> str:
        return upsert_member_from_profile(session, claims, settings.open_id.provider).id

    try:
        member_id = await in_transaction(request, upsert)
    except NotAuthenticated as error:
        return _error_page(401, "Sign-in failed", error.message)
    return_to = safe_return_path(request.session.get(RETURN_TO_KEY))
    request.session.clear()
    request.session["member_id"] = member_id
    return RedirectResponse(return_to, status_code=302)


async def signout(request: Request) -> Response:
    settings = _settings(request)
    request.session.clear()
    if settings.auth_mode == "single-tenant":
        return RedirectResponse(SINGLE_TENANT_PAGE_PATH, status_code=302)
    if settings.auth_mode == "multi-tenant":
        try:
            client = open_id_client(request)
        except ValueError:
            client = None
        if client is not None:
            end_session = await client.end_session_url(settings.dashboard_url + SIGNOUT_COMPLETE_PATH)
            if end_session is not None:
                return RedirectResponse(end_session, status_code=302)
    return RedirectResponse(_after_signout(settings), status_code=302)


async def signout_complete(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse(_after_signout(_settings(request)), status_code=302)


async def select_workspace_route(request: Request) -> Response:
    _require_mode(request, "multi-tenant")
    query = _read_page_query(request, SelectWorkspaceQuery)
    if isinstance(query, Response):
        return query
    member_id = request.session.get("member_id")
    if not isinstance(member_id, str):
        return _to_login(request)

    def select(session: Session) -> None:
        member = session.get(WorkspaceMember, member_id)
        if member is None:
            raise NotAuthenticated("Member not found")
        select_workspace(session, member, query.workspaceId)

    try:
        await in_transaction(request, select)
    except NotAuthenticated:
        return _to_login(request)
    except PermissionDenied as error:
        return _error_page(403, "Workspace not available", error.message, retry=False)
    return RedirectResponse(safe_return_path(query.redirectTo), status_code=302)


async def site_root(request: Request) -> Response:
    # Whoever opens the bare host name (the demo's first link) lands in the console.
    return RedirectResponse(DASHBOARD_PATH, status_code=307)


async def dashboard_home(request: Request) -> Response:
    settings = _settings(request)

    def read(session: Session) -> dict[str, Any]:
        context = resolve_member(request, session)
        return {
            "email": context.member.email if context.member is not None else ANONYMOUS_EMAIL,
            "current": context.current,
            "roles": context.roles,
            "switchable": context.member is not None and len(context.roles) > 1,
        }

    try:
        page = await in_transaction(request, read)
    except NotAuthenticated:
        return _to_login(request)
    except PermissionDenied:
        return RedirectResponse(settings.onboarding_url, status_code=302)
    return _render(
        "home.html",
        **page,
        signout_url=_signout_link(settings),
        select_url=_select_url,
    )


async def single_tenant_page(request: Request) -> Response:
    _require_mode(request, "single-tenant")
    if request.session.get("single_tenant") is True:
        return RedirectResponse(DASHBOARD_PATH, status_code=302)
    return _login_page(200, error=None)


async def single_tenant_login(request: Request) -> Response:
    settings = _require_mode(request, "single-tenant")
    as_json = request.headers.get("content-type", "").split(";")[0].strip() == "application/json"
    if as_json:
        password = validate(PasswordBody, await read_json(request)).password
    else:
        async with request.form() as form:
            field = form.get("password")
        if field is None or isinstance(field, UploadFile):
            raise InvalidInput("body must have required property 'password'", field="body/password")
        password = field
    if not settings.password:
        return JSONResponse({"error": "PASSWORD is not set."}, status_code=500)
    if not _same_password(password, settings.password):
        if as_json:
            return JSONResponse({"error": LOGIN_REFUSED}, status_code=401)
        return _login_page(401, error=LOGIN_REFUSED)
    request.session.clear()
    request.session["single_tenant"] = True
    if as_json:
        return Response(status_code=200)
    return RedirectResponse(DASHBOARD_PATH, status_code=303)


async def single_tenant_signout(request: Request) -> Response:
    _require_mode(request, "single-tenant")
    request.session.clear()
    return RedirectResponse(SINGLE_TENANT_PAGE_PATH, status_code=302)


def _same_password(given: str, expected: str) -> bool:
    # Digests first, so the comparison takes the same time whatever the lengths.
    return hmac.compare_digest(
        hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _require_mode(request: Request, mode: str) -> Settings:
    settings = _settings(request)
    if settings.auth_mode != mode:
        raise HTTPException(status_code=404, detail="Not Found")
    return settings


def _after_signout(settings: Settings) -> str:
    return settings.signout_redirect_url or settings.dashboard_url + DASHBOARD_PATH


def _signout_link(settings: Settings) -> str | None:
    if settings.auth_mode == "single-tenant":
        return SINGLE_TENANT_SIGNOUT_PATH
    if settings.auth_mode == "multi-tenant":
        return settings.signout_url
    return None


def _select_url(workspace_id: str) -> str:
    return f"{SELECT_WORKSPACE_PATH}?{urlencode({'workspaceId': workspace_id, 'redirectTo': DASHBOARD_PATH})}"


def _to_login(request: Request) -> RedirectResponse:
    path = request.url.path
    if request.url.query:
        path = f"{path}?{request.url.query}"
    return RedirectResponse(f"{LOGIN_PATH}?{urlencode({'redirectTo': path})}", status_code=302)


def _read_page_query(request: Request, model: type[SelectWorkspaceQuery]) -> SelectWorkspaceQuery | Response:
    data = {key: request.query_params[key] for key in request.query_params}
    try:
        query = validate(model, data, where="querystring")
    except InvalidInput as error:
        return _error_page(400, "Bad request", error.message, retry=False)
    if not _is_uuid(query.workspaceId):
        return _error_page(400, "Bad request", "querystring/workspaceId must be a UUID", retry=False)
    return query


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _login_page(status: int, *, error: str | None) -> HTMLResponse:
    return _render("login.html", status=status, error=error, action=SINGLE_TENANT_LOGIN_PATH)


def _error_page(status: int, title: str, message: str, *, retry: bool = True) -> HTMLResponse:
    return _render(
        "error.html", status=status, title=title, message=message, retry_url=LOGIN_PATH if retry else None
    )


def _render(template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    html = _pages.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


routes: list[BaseRoute] = [
    Route("/", site_root, methods=["GET"], name="site:root"),
    Route(DASHBOARD_PATH, dashboard_home, methods=["GET"], name="dashboard:home"),
    Route(LOGIN_PATH, login, methods=["GET"], name="dashboard:login"),
    Route(CALLBACK_PATH, oauth_callback, methods=["GET"], name="dashboard:oauth2_callback"),
    Route("/dashboard/signout", signout, methods=["GET"], name="dashboard:signout"),
    Route(SIGNOUT_COMPLETE_PATH, signout_complete, methods=["GET"], name="dashboard:signout_complete"),
    Route(SELECT_WORKSPACE_PATH, select_workspace_route, methods=["GET"], name="dashboard:select_workspace"),
    Route(SINGLE_TENANT_PAGE_PATH, single_tenant_page, methods=["GET"], name="dashboard:single_tenant"),
    Route(SINGLE_TENANT_LOGIN_PATH, single_tenant_login, methods=["POST"], name="single_tenant:login"),
    Route(SINGLE_TENANT_SIGNOUT_PATH, single_tenant_signout, methods=["GET"], name="single_tenant:signout"),
]
