"""`/api/public/subscription-management/*`: the hash-authenticated pages and API through which a message's
recipient manages their subscriptions (Dittofeed §5.3).

- `PUT user-subscriptions` applies JSON changes (204; 401 `Invalid user hash.`).
- `GET page` applies an unsubscribe (`sub=0`: every group of the channel of `s`) or subscribe (`sub=1`:
  `s`) link, then shows the user's groups as a form.
- `POST page` takes that form and sets every group (302 back to the page), or, when the body is
  RFC 8058's `List-Unsubscribe=One-Click`, applies the link in the query string and answers 200.
  Upstream reads a one-click POST's parameters from the body only, so its one-click fails; here the
  query string counts.

Previews (`isPreview=true`) skip the hash and change nothing. The page is self-contained (inline CSS,
no scripts) and sent with a policy that forbids loading anything else and framing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Literal
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from engine.errors import InvalidInput, NotAuthenticated, Unavailable
from engine.messaging import subscriptions
from engine.messaging.links import SUBSCRIPTION_PAGE_PATH
from engine.messaging.subscription_groups import list_subscription_groups
from engine.resources import canonical_uuid
from engine.storage.models import Workspace
from engine.storage.resource_models import SubscriptionGroup
from engine.users import load_subscriptions
from gateway.deps import in_transaction
from gateway.inputs import read_json, validate
from gateway.paths import TEMPLATES_DIR

_pages = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR / "subscription_management"),
    autoescape=True,
    undefined=StrictUndefined,
)
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none';"
        " base-uri 'none'"
    ),
    # The URL carries the user's hash: never pass it on, never keep the page in a shared cache.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
CHANNEL_LABELS = {"Email": "Email", "Sms": "SMS", "MobilePush": "Mobile push", "Webhook": "Webhook"}
ONE_CLICK = ("List-Unsubscribe", "One-Click")


class UpdateBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str
    identifier: str
    identifierKey: str
    hash: str
    changes: dict[str, bool]


class LinkParams(BaseModel):
    """Who the page is for: the hidden fields of the form and the parameters of every link."""

    model_config = ConfigDict(extra="ignore", strict=True)

    w: str
    i: str
    ik: str
    h: str
    isPreview: str | None = None

    @property
    def preview(self) -> bool:
        return self.isPreview == "true"


class PageParams(LinkParams):
    s: str | None = None
    sub: Literal["0", "1"] | None = None
    showAllChannels: str | None = None
    success: str | None = None
    error: str | None = None
    previewSubmitted: str | None = None


@dataclass(frozen=True)
class Notice:
    kind: Literal["success", "error", "info"]
    text: str


async def update_user_subscriptions(request: Request) -> Response:
    body = validate(UpdateBody, await read_json(request))
    workspace_id = _workspace_id(body.workspaceId, "body/workspaceId")

    def write(session: Session) -> None:
        user_id = subscriptions.find_user_by_hash(
            session,
            workspace_id,
            identifier=body.identifier,
            identifier_key=body.identifierKey,
            user_hash=body.hash,
        )
        _apply_changes(request, session, workspace_id, user_id, body.changes)

    await in_transaction(request, write)
    return Response(status_code=204)


async def show_page(request: Request) -> Response:
    params = validate(PageParams, _query(request), where="querystring")
    workspace_id = _workspace_id(params.w, "querystring/w")

    def run(session: Session) -> str:
        user_id = _authenticate(session, workspace_id, params)
        notices = _flag_notices(params)
        if params.s is not None and params.sub is not None:
            notices.append(
                _follow_link(request, session, workspace_id, user_id, params.s, params.sub, params.preview)
            )
        return _render(session, workspace_id, user_id, params, notices)

    return HTMLResponse(await in_transaction(request, run), headers=PAGE_HEADERS)


async def submit_page(request: Request) -> Response:
    async with request.form() as form:
        fields = {name: value for name, value in form.multi_items() if not isinstance(value, UploadFile)}
    if fields.get(ONE_CLICK[0]) == ONE_CLICK[1]:
        return await _one_click(request)
    # The form's fields, else the query string's (a form posted to the link URL itself).
    params = validate(LinkParams, {**_query(request), **fields}, where="body")
    workspace_id = _workspace_id(params.w, "body/w")
    checked = {
        canonical_uuid(name[4:])
        for name, value in fields.items()
        if name.startswith("sub_") and value == "true"
    }

    def write(session: Session) -> str:
        user_id = _authenticate(session, workspace_id, params)
        if params.preview:
            return "previewSubmitted"
        groups = load_subscriptions(session, workspace_id)
        changes = {group_id: group_id in checked for group_id in groups}
        _apply_changes(request, session, workspace_id, user_id, changes)
        return "success"

    try:
        outcome = await in_transaction(request, write)
    except (InvalidInput, Unavailable):
        outcome = "error"
    back = {"w": params.w, "i": params.i, "ik": params.ik, "h": params.h}
    if params.preview:
        back["isPreview"] = "true"
    # Relative to this URL, so it holds behind any API_PREFIX; without s/sub, so the link is not re-applied.
    return RedirectResponse(f"page?{urlencode({**back, outcome: 'true'})}", status_code=302)


async def _one_click(request: Request) -> Response:
    params = validate(PageParams, _query(request), where="querystring")
    workspace_id = _workspace_id(params.w, "querystring/w")
    if params.s is None:
        raise InvalidInput("querystring must have required property 's'", field="querystring/s")

    def write(session: Session) -> None:
        user_id = _authenticate(session, workspace_id, params)
        _follow_link(
            request, session, workspace_id, user_id, params.s or "", params.sub or "0", params.preview
        )

    await in_transaction(request, write)
    return Response(status_code=200)


def _apply_changes(
    request: Request, session: Session, workspace_id: str, user_id: str, changes: Mapping[str, bool]
) -> None:
    """Record the user's subscription changes and make them visible at once (events and assignments)."""
    subscriptions.update_user_subscriptions(
        session,
        request.app.state.event_writer.accept,
        request.app.state.event_store,
        workspace_id,
        user_id,
        changes,
    )


def _authenticate(session: Session, workspace_id: str, params: LinkParams) -> str:
    if params.preview:
        return subscriptions.PREVIEW_USER_ID
    try:
        return subscriptions.find_user_by_hash(
            session, workspace_id, identifier=params.i, identifier_key=params.ik, user_hash=params.h
        )
    except NotAuthenticated:
        raise NotAuthenticated("Unauthorized") from None


def _follow_link(
    request: Request,
    session: Session,
    workspace_id: str,
    user_id: str,
    group_id: str,
    sub: str,
    preview: bool,
) -> Notice:
    """Apply an unsubscribe (`sub=0`: every group of the channel) or subscribe (`sub=1`) link."""
    canonical = canonical_uuid(group_id)
    group = session.get(SubscriptionGroup, canonical) if canonical else None
    if group is None or group.workspace_id != workspace_id:
        raise InvalidInput("querystring/s names unknown subscription group", field="querystring/s")
    channel = CHANNEL_LABELS.get(group.channel, str(group.channel))
    if sub == "1":
        changes = {group.id: True}
        text = f"You are subscribed to {group.name}."
    else:
        groups = list_subscription_groups(session, workspace_id)
        changes = {other.id: False for other in groups if other.channel == group.channel}
        text = f"You have been unsubscribed from {channel} messages."
    if preview:
        return Notice("info", f"Preview: nothing was changed. ({text})")
    _apply_changes(request, session, workspace_id, user_id, changes)
    return Notice("success", text)


def _flag_notices(params: PageParams) -> list[Notice]:
    notices = []
    if params.success == "true":
        notices.append(Notice("success", "Your preferences have been saved."))
    if params.error == "true":
        notices.append(Notice("error", "Your preferences could not be saved. Please try again."))
    if params.previewSubmitted == "true":
        notices.append(Notice("info", "Preview: your choices were not saved."))
    return notices


def _render(
    session: Session, workspace_id: str, user_id: str, params: LinkParams, notices: list[Notice]
) -> str:
    states = sorted(
        subscriptions.user_subscriptions(session, workspace_id, user_id),
        key=lambda state: (
            list(CHANNEL_LABELS).index(state.channel) if state.channel in CHANNEL_LABELS else 99
        ),
    )
    channels = [
        (CHANNEL_LABELS.get(channel, channel), list(groups))
        for channel, groups in groupby(states, key=lambda state: state.channel)
    ]
    workspace = session.get(Workspace, workspace_id)
    return _pages.get_template("page.html").render(
        workspace_name=workspace.name if workspace else "",
        notices=notices,
        channels=channels,
        fields={
            "w": params.w,
            "h": params.h,
            "i": params.i,
            "ik": params.ik,
            "isPreview": "true" if params.preview else "false",
        },
    )


def _query(request: Request) -> dict[str, str]:
    return {name: request.query_params[name] for name in request.query_params}


def _workspace_id(value: str, field: str) -> str:
    canonical = canonical_uuid(value)
    if canonical is None:
        raise InvalidInput(f"{field} must be a workspace id (a UUID)", field=field)
    return canonical


routes = [
    Route(
        "/api/public/subscription-management/user-subscriptions",
        update_user_subscriptions,
        methods=["PUT"],
        name="subscription_management:update",
    ),
    Route(SUBSCRIPTION_PAGE_PATH, show_page, methods=["GET"], name="subscription_management:page"),
    Route(SUBSCRIPTION_PAGE_PATH, submit_page, methods=["POST"], name="subscription_management:submit"),
]
