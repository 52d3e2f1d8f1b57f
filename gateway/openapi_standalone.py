"""The OpenAPI catalog of routes mounted once (gateway/openapi_catalog.py has the shared controllers
and the entry type): public ingestion, provider webhooks, hash-authenticated pages, `/api-l/*` for a
parent's backend, health; and the paths left out of the document on purpose.

`STANDALONE` is keyed by (method, full path). `EXPANDED` turns a route with a path parameter into one
documented path per value, where each value has its own body model (`/api/public/apps/{event_type}`).
"""

from __future__ import annotations

from engine.data_sources import SegmentDelivery
from engine.events import MESSAGE_MODELS, BatchRequest
from engine.messaging.links import SUBSCRIPTION_PAGE_PATH, VIEW_IN_BROWSER_PATH
from engine.messaging.webhooks import mandrill, postmark, sendgrid, twilio
from gateway import dashboard_auth
from gateway.api import (
    audit_log,
    child_workspaces,
    sessions,
    subscription_management,
    themes,
    view_in_browser,
)
from gateway.openapi_catalog import (
    EXTERNAL_ID_PARAM,
    FORM,
    JSON,
    SIGNED_BODY,
    WORKSPACE_PARAM,
    Header,
    Operation,
    Param,
    describe_read,
    describe_write,
)

PUBLIC_APP_SUMMARIES = {
    "identify": "Identify a user",
    "track": "Track an event",
    "page": "Record a page view",
    "screen": "Record a screen view",
    "group": "Assign a user to a group",
}

# The templated route → one documented path per value, each with the model its handler picks.
EXPANDED: dict[tuple[str, str], dict[str, Operation]] = {
    ("POST", "/api/public/apps/{event_type}"): {
        **{
            f"/api/public/apps/{kind}": Operation(
                summary,
                body=MESSAGE_MODELS[kind],
                status=204,
                media=None,
                security="writeKey",
                errors=(400, 401, 403, 413, 503),
            )
            for kind, summary in PUBLIC_APP_SUMMARIES.items()
        },
        "/api/public/apps/batch": Operation(
            "Several events in one request; a bad item writes nothing",
            body=BatchRequest,
            status=204,
            media=None,
            security="writeKey",
            errors=(400, 401, 403, 413, 503),
        ),
    }
}


def _webhook(summary: str, headers: tuple[Header, ...] = (), media: str = JSON) -> Operation:
    return Operation(
        summary,
        media=None,
        raw_body=SIGNED_BODY,
        body_media=media,
        headers=headers,
        security="none",
        errors=(400, 401, 403, 404, 413, 503),
    )


_WEBHOOKS = {
    "segment": Operation(
        "Segment webhook destination (x-signature: HMAC-SHA1 of the body)",
        body=SegmentDelivery,
        media=None,
        headers=(
            Header("x-signature", "Hex HMAC-SHA1 of the raw body under the SegmentIO shared secret."),
            Header("df-workspace-id", "The workspace, unless the body names it.", required=False),
        ),
        security="none",
        errors=(400, 401, 403, 404, 413, 503),
    ),
    "sendgrid": _webhook(
        "SendGrid event webhook (signed)",
        (
            Header(sendgrid.SIGNATURE_HEADER, "ECDSA signature.", required=False),
            Header(sendgrid.TIMESTAMP_HEADER, "Signature timestamp.", required=False),
        ),
    ),
    "amazon-ses": _webhook("Amazon SES notifications through SNS (signed)"),
    "resend": _webhook("Resend webhook (Svix-signed)"),
    "postmark": _webhook(
        "Postmark webhook (shared secret header)",
        (Header(postmark.SECRET_HEADER, "The configured secret.", required=False),),
    ),
    "mailchimp": _webhook(
        "Mailchimp Transactional (Mandrill) webhook (signed)",
        (Header(mandrill.SIGNATURE_HEADER, "HMAC-SHA1 of URL and parameters.", required=False),),
        FORM,
    ),
    "twilio": _webhook(
        "Twilio status callback (signed)",
        (Header(twilio.SIGNATURE_HEADER, "HMAC-SHA1 of URL and parameters.", required=False),),
        FORM,
    ),
}
_MAILCHIMP_CHECK = Operation("Mandrill's check of a new webhook URL", media=None, security="none", errors=())

# (method, full path) → operation, for routes mounted once.
STANDALONE: dict[tuple[str, str], Operation] = {
    ("GET", "/api/"): Operation("The server's version", security="none", errors=()),
    ("GET", "/api/readyz"): Operation(
        "Readiness of the SQL and event stores",
        security="none",
        errors=(),
        also={503: "A store is unreachable; the body says which."},
    ),
    ("POST", dashboard_auth.SINGLE_TENANT_LOGIN_PATH): Operation(
        "Single-tenant sign-in with the shared password (JSON; a form gets a 303 to the dashboard)",
        body=dashboard_auth.PasswordBody,
        media=None,
        also={303: "Signed in (form post)."},
        security="none",
        errors=(400, 401, 404, 413),
    ),
    ("GET", dashboard_auth.SINGLE_TENANT_SIGNOUT_PATH): Operation(
        "Single-tenant sign-out",
        status=302,
        returns="To the sign-in page.",
        media=None,
        security="none",
        errors=(404,),
    ),
    ("POST", "/api/public/apps/alias"): Operation(
        "Alias (not implemented, as upstream: always 400)",
        status=400,
        returns="Not yet implemented.",
        security="writeKey",
        body_required=False,
        raw_body={"type": "object"},
        errors=(413,),
    ),
    ("GET", VIEW_IN_BROWSER_PATH): Operation(
        "A sent email's HTML (hash-authenticated link)",
        query=view_in_browser.ViewQuery,
        returns="The email.",
        media="text/html",
        security="none",
        errors=(400, 401, 404, 503),
    ),
    ("PUT", "/api/public/subscription-management/user-subscriptions"): Operation(
        "Change a user's subscriptions (hash-authenticated)",
        body=subscription_management.UpdateBody,
        status=204,
        media=None,
        security="none",
        errors=(400, 401, 404, 413, 503),
    ),
    ("GET", SUBSCRIPTION_PAGE_PATH): Operation(
        "The subscription page; `s` and `sub` apply an (un)subscribe link first",
        query=subscription_management.PageParams,
        returns="The page.",
        media="text/html",
        security="none",
        errors=(400, 401, 404, 503),
    ),
    ("POST", SUBSCRIPTION_PAGE_PATH): Operation(
        "Submit the subscription form (302 back to the page), or RFC 8058 one-click unsubscribe (200)",
        query=subscription_management.PageParams,
        raw_body={
            "type": "object",
            "description": "The page's form (LinkParams fields and `sub_<groupId>=true`), or "
            "`List-Unsubscribe=One-Click`.",
        },
        body_media=FORM,
        body_required=False,
        status=302,
        returns="Back to the page, with the outcome.",
        media=None,
        also={200: "One-click unsubscribe applied."},
        security="none",
        errors=(400, 401, 404, 413, 503),
    ),
    ("PUT", "/api-l/admin/workspaces/child"): describe_write(
        "Create (or return) a child workspace", child_workspaces.UpsertChildRequest, "The child."
    ),
    ("GET", "/api-l/admin/workspaces/child"): describe_read(
        "List the children of the key's workspace",
        None,
        "`{workspaces}`.",
        params=(
            WORKSPACE_PARAM,
            Param("limit", {"type": "integer", "minimum": 0, "maximum": 1000}, "At most 1000 (100)."),
            Param("offset", {"type": "integer", "minimum": 0}, "Children to skip."),
        ),
    ),
    ("GET", "/api-l/admin/workspaces/"): describe_read(
        "One workspace (paused or tombstoned too)",
        None,
        "The workspace.",
        params=(WORKSPACE_PARAM, EXTERNAL_ID_PARAM),
    ),
    ("DELETE", "/api-l/admin/workspaces/"): Operation(
        "Tombstone a workspace", status=201, media=None, params=(WORKSPACE_PARAM, EXTERNAL_ID_PARAM)
    ),
    ("POST", "/api-l/sessions"): describe_write(
        "Mint an embed session token (admin API key of the workspace or its parent)",
        sessions.SessionBody,
        "`{token}`.",
    ),
    ("DELETE", "/api-l/sessions"): Operation(
        "Revoke every embed session of a workspace",
        query=sessions.WorkspaceQuery,
        raw_body={"type": "object", "properties": {"workspaceId": {"type": "string"}}},
        body_required=False,
        status=204,
        media=None,
    ),
    ("GET", "/api-l/admin/embed-settings"): describe_read(
        "Origins allowed to frame the workspace", sessions.WorkspaceQuery, "The settings."
    ),
    ("PUT", "/api-l/admin/embed-settings"): describe_write(
        "Set the origins allowed to frame the workspace", sessions.EmbedSettingsBody, "The settings."
    ),
    ("GET", "/api-l/admin/audit-log"): describe_read(
        "The audit log of the key's workspace and its children, newest first",
        audit_log.AuditLogQuery,
        "`{entries, nextCursor}`.",
        params=(WORKSPACE_PARAM,),
    ),
    ("GET", "/api-l/admin/theme"): describe_read("A workspace's theme", themes.WorkspaceQuery, "The theme."),
    ("PUT", "/api-l/admin/theme"): describe_write(
        "Set a workspace's own theme", themes.ThemeBody, "The theme."
    ),
    ("DELETE", "/api-l/admin/theme"): describe_read(
        "Remove a workspace's own theme (it inherits again)", themes.WorkspaceQuery, "The theme."
    ),
    **{("POST", f"/api/public/webhooks/{name}"): operation for name, operation in _WEBHOOKS.items()},
    **{("POST", f"/api/webhooks/{name}"): operation for name, operation in _WEBHOOKS.items()},
    ("HEAD", "/api/public/webhooks/mailchimp"): _MAILCHIMP_CHECK,
    ("HEAD", "/api/webhooks/mailchimp"): _MAILCHIMP_CHECK,
}

# Paths outside the API, left out of the document on purpose.
EXCLUDED_PATHS: dict[str, str] = {"/": "redirects a browser to the member console"}
EXCLUDED_PREFIXES: dict[str, str] = {
    "/dashboard-l/": "embedded HTML screens (htmx), not an API",
    "/dashboard": "the member console's HTML screens and its OIDC sign-in redirects",
    "/static": "vendored static files",
    "/sample-parent/": "the demo's sample parent page",
    "/documentation": "this document and its HTML page",
}
