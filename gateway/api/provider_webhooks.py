"""Email and SMS provider webhooks (Dittofeed §5.2): `POST /api/public/webhooks/<provider>`, also
mounted at `/api/webhooks/<provider>`, for sendgrid, amazon-ses, resend, postmark, mailchimp and twilio.

Each handler reads the raw body first (every signature is over the bytes as sent), lets the provider's
engine module verify it and map it to DF status events, and answers 200 (empty) only once the event
writer has the rows on disk; a redelivery maps to the same messageIds and is stored once.

Mandrill and Twilio sign the public URL they called, which is `DASHBOARD_URL` + `API_PREFIX` + the path
and query, never the Host header of the request. The SNS verifier is `app.state.sns_verifier` when one
is set (tests point it at a local certificate server), else one allowing only AWS's hosts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.events import EventRow
from engine.messaging.webhooks import amazon_ses, mandrill, postmark, resend, sendgrid, twilio
from engine.messaging.webhooks.sns import CONFIRMATION_TYPES, SnsVerifier
from gateway.deps import in_transaction
from gateway.settings import Settings


async def receive_sendgrid(request: Request) -> Response:
    received_at, raw_body = datetime.now(UTC), await request.body()
    store = request.app.state.event_store

    def work(session: Session) -> list[EventRow]:
        return sendgrid.receive_sendgrid(
            session,
            store,
            raw_body,
            request.headers.get(sendgrid.SIGNATURE_HEADER),
            request.headers.get(sendgrid.TIMESTAMP_HEADER),
            received_at,
        )

    return await _store(request, await in_transaction(request, work))


async def receive_amazon_ses(request: Request) -> Response:
    received_at, raw_body = datetime.now(UTC), await request.body()
    message = amazon_ses.parse_sns_message(raw_body)
    verifier = _sns_verifier(request)
    # Outside the transaction: verification may fetch a certificate, confirmation visits a URL.
    await run_in_threadpool(verifier.verify, message)
    # A verified message is a Notification or one of the confirmations (nothing else verifies).
    if message.get("Type") in CONFIRMATION_TYPES:
        # Upstream never unsubscribes, so an UnsubscribeConfirmation is answered by re-subscribing.
        await run_in_threadpool(verifier.confirm_subscription, message)
        return Response(status_code=200)

    def work(session: Session) -> list[EventRow]:
        return amazon_ses.ses_status_rows(session, message, received_at)

    return await _store(request, await in_transaction(request, work))


async def receive_resend(request: Request) -> Response:
    received_at, raw_body = datetime.now(UTC), await request.body()

    def work(session: Session) -> list[EventRow]:
        return resend.receive_resend(session, raw_body, request.headers, received_at)

    return await _store(request, await in_transaction(request, work))


async def receive_postmark(request: Request) -> Response:
    received_at, raw_body = datetime.now(UTC), await request.body()
    secret = request.headers.get(postmark.SECRET_HEADER)

    def work(session: Session) -> list[EventRow]:
        return postmark.receive_postmark(session, raw_body, secret, received_at)

    return await _store(request, await in_transaction(request, work))


async def receive_mailchimp(request: Request) -> Response:
    received_at, raw_body = datetime.now(UTC), await request.body()
    url, signature = _public_url(request), request.headers.get(mandrill.SIGNATURE_HEADER)

    def work(session: Session) -> list[EventRow]:
        return mandrill.receive_mandrill(session, raw_body, url, signature, received_at)

    return await _store(request, await in_transaction(request, work))


async def acknowledge(request: Request) -> Response:
    """Mandrill checks a new webhook URL with a HEAD request before it saves it."""
    return Response(status_code=200)


async def receive_twilio(request: Request) -> Response:
    received_at, raw_body = datetime.now(UTC), await request.body()
    url, signature = _public_url(request), request.headers.get(twilio.SIGNATURE_HEADER)
    query = parse_qsl(request.url.query, keep_blank_values=True)

    def work(session: Session) -> list[EventRow]:
        return twilio.receive_twilio(session, raw_body, url, query, signature, received_at)

    return await _store(request, await in_transaction(request, work))


async def _store(request: Request, rows: list[EventRow]) -> Response:
    if rows:
        await request.app.state.event_writer.accept_async(rows)
    return Response(status_code=200)


def _public_url(request: Request) -> str:
    """The URL the provider called, as configured there: the public base, the path and the raw query."""
    settings: Settings = request.app.state.settings
    query = request.scope.get("query_string", b"").decode("latin-1")
    path = settings.api_prefix + request.url.path
    return f"{settings.dashboard_url}{path}" + (f"?{query}" if query else "")


def _sns_verifier(request: Request) -> SnsVerifier:
    verifier = getattr(request.app.state, "sns_verifier", None)
    if not isinstance(verifier, SnsVerifier):
        verifier = request.app.state.sns_verifier = SnsVerifier()
    return verifier


_HANDLERS = {
    "sendgrid": receive_sendgrid,
    "amazon-ses": receive_amazon_ses,
    "resend": receive_resend,
    "postmark": receive_postmark,
    "mailchimp": receive_mailchimp,
    "twilio": receive_twilio,
}

routes = [
    *(
        Route(f"/api/public/webhooks/{provider}", handler, methods=["POST"], name=f"webhooks:{provider}")
        for provider, handler in _HANDLERS.items()
    ),
    *(
        Route(f"/api/webhooks/{provider}", handler, methods=["POST"], name=f"webhooks:{provider}_legacy")
        for provider, handler in _HANDLERS.items()
    ),
    Route("/api/public/webhooks/mailchimp", acknowledge, methods=["HEAD"], name="webhooks:mailchimp_check"),
    Route("/api/webhooks/mailchimp", acknowledge, methods=["HEAD"], name="webhooks:mailchimp_check_legacy"),
]
