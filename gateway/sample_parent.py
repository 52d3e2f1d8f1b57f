"""The demo's sample parent app: a page of "your SaaS" that embeds every feedgate screen.

It does what a real parent backend does: holds the parent's admin API key, mints a session for the
child through `POST /api-l/sessions` (with its own origin as the allowed origin), and puts the screens
in iframes on the *other* host name (127.0.0.1 ↔ localhost), so the embed is cross-site as in
production. When a screen reports that its session ended, the page mints a new token and hands it
over with `postMessage`. Mounted only by `feedgate demo`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import httpx2 as httpx
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from gateway.paths import TEMPLATES_DIR

PAGE_PATH = "/sample-parent/"
# (screen path, label, component scope) of every embeddable screen shown on the page.
SCREENS = [
    ("/deliveries/v2", "Deliveries", "DeliveriesTable"),
    ("/analysis-chart", "Analysis", "AnalysisChart"),
    ("/segments", "Segments", "Segment"),
    ("/templates", "Templates", "MessageTemplate"),
    ("/broadcasts", "Broadcasts", "Broadcast"),
    ("/journeys", "Journeys", "Journey"),
]
_pages = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR / "sample_parent"), autoescape=True, undefined=StrictUndefined
)


@dataclass(frozen=True)
class SampleParent:
    """The parent account the page acts for; `admin_key` never leaves the server."""

    parent_id: str
    child_id: str
    admin_key: str


def sample_parent_routes(account: SampleParent) -> list[Route]:
    async def page(request: Request) -> HTMLResponse:
        here = f"{request.url.scheme}://{request.url.netloc}"
        embed_base = f"{request.url.scheme}://{_other_host(request.url.netloc)}"
        try:
            token = await _mint(here, account, allowed_origin=here)
        except SessionRefused as refused:
            body = _pages.get_template("refused.html").render(message=refused.message, origin=refused.origin)
            return HTMLResponse(body, status_code=409, headers={"Cache-Control": "no-store"})
        screens = [
            {
                "label": label,
                "src": f"{embed_base}/dashboard-l/embedded{path}?"
                + urlencode({"token": token, "workspaceId": account.child_id}),
            }
            for path, label, _ in SCREENS
        ]
        body = _pages.get_template("page.html").render(screens=screens, embed_origin=embed_base)
        return HTMLResponse(body, headers={"Cache-Control": "no-store"})

    async def fresh_token(request: Request) -> JSONResponse:
        here = f"{request.url.scheme}://{request.url.netloc}"
        try:
            return JSONResponse({"token": await _mint(here, account, allowed_origin=here)})
        except SessionRefused as refused:
            return JSONResponse({"message": refused.message}, status_code=409)

    return [
        Route(PAGE_PATH, page, methods=["GET"], name="sample_parent:page"),
        Route(f"{PAGE_PATH}token", fresh_token, methods=["POST"], name="sample_parent:token"),
    ]


async def _mint(api_base: str, account: SampleParent, *, allowed_origin: str) -> str:
    """Ask feedgate for a session, exactly as a parent's backend would."""
    async with httpx.AsyncClient(base_url=api_base, timeout=10) as client:
        response = await client.post(
            "/api-l/sessions",
            json={
                "workspaceId": account.child_id,
                "occupantId": "sample-parent-user",
                "allowedOrigins": [allowed_origin],
            },
            headers={"Authorization": f"Bearer {account.admin_key}"},
        )
    if response.status_code in (400, 401, 403):
        raise SessionRefused(response.json().get("message", response.text), allowed_origin)
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


class SessionRefused(Exception):
    """feedgate would not mint the page's session (most often: its origin is not an allowed one)."""

    def __init__(self, message: str, origin: str) -> None:
        super().__init__(message)
        self.message, self.origin = message, origin


def _other_host(netloc: str) -> str:
    """127.0.0.1 ↔ localhost, keeping the port: another site for the browser, the same server."""
    parts = urlsplit(f"//{netloc}")
    host = "localhost" if parts.hostname == "127.0.0.1" else "127.0.0.1"
    return f"{host}:{parts.port}" if parts.port else host
