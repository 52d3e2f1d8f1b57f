"""`GET /api/public/view-in-browser?w=&m=&h=`: a sent email's HTML, opened from its view-in-browser link
(Dittofeed §5.4). The hash authenticates the link; 401 bad hash, 400 blob storage disabled, 404 not
stored, checked in that order as upstream does.

The HTML is someone else's content served from our origin, so it goes out under a Content-Security-
Policy that runs no script, submits no form and cannot be framed, and with no Referer, since the
page's own URL is the credential.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.errors import InvalidInput, NotAuthenticated, NotFound
from engine.messaging.links import VIEW_IN_BROWSER_PATH
from engine.messaging.view_in_browser import is_valid_view_hash, load_email_body
from gateway.inputs import read_query

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "img-src https: http: data: cid:",
        "style-src 'unsafe-inline' https:",
        "font-src https: data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        # No allow-scripts: nothing runs even if a script got into the HTML. Links may open new tabs.
        "sandbox allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation",
    ]
)
RESPONSE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}


class ViewQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    w: str = Field(min_length=1)
    m: str = Field(min_length=1)
    h: str = Field(min_length=1)


async def view_in_browser(request: Request) -> Response:
    query = read_query(request, ViewQuery)
    settings = request.app.state.settings
    secrets = (settings.secret_key, *settings.secret_key_fallbacks)
    if not is_valid_view_hash(query.w, query.m, query.h, secrets):
        raise NotAuthenticated("Invalid hash.")
    blob_store = request.app.state.blob_store
    if blob_store is None:
        raise InvalidInput("Blob storage is not enabled.")
    html = await run_in_threadpool(load_email_body, blob_store, query.w, query.m)
    if html is None:
        raise NotFound("Email not found.")
    return Response(html, media_type="text/html; charset=utf-8", headers=RESPONSE_HEADERS)


routes = [Route(VIEW_IN_BROWSER_PATH, view_in_browser, methods=["GET"], name="public:view-in-browser")]
