"""`POST /api/public/webhooks/segment` (also `/api/webhooks/segment`): Segment's webhook destination
(Dittofeed §5.2), authenticated by `x-signature` = hex HMAC-SHA1 of the raw body under the workspace's
SegmentIO shared secret.

The body is stored verbatim as `message_raw`, and the 200 is sent only after the event writer has the
row on disk; a redelivered messageId is stored once. It does not trigger event-entry journeys.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.clickhouse_json import parse_for_clickhouse
from engine.data_sources import SegmentDelivery, verify_segment_delivery
from engine.errors import InvalidInput
from engine.events import verbatim_row
from gateway.deps import in_transaction
from gateway.inputs import resolve_workspace_id, validate


async def receive(request: Request) -> Response:
    received_at = datetime.now(UTC)
    raw_body = await request.body()
    text, message = parse_for_clickhouse(raw_body)
    validate(SegmentDelivery, message)
    workspace_id = resolve_workspace_id(request, message)
    if workspace_id is None:
        raise InvalidInput(
            "Missing workspaceId. Try setting the df-workspace-id header.", field="workspaceId"
        )
    signature = request.headers.get("x-signature")

    def verify(session: Session) -> None:
        verify_segment_delivery(session, workspace_id, raw_body, signature)

    await in_transaction(request, verify)
    row = verbatim_row(workspace_id, text, message, received_at)
    await request.app.state.event_writer.accept_async([row])
    return Response(status_code=200)


routes = [
    Route("/api/public/webhooks/segment", receive, methods=["POST"], name="webhooks:segment"),
    Route("/api/webhooks/segment", receive, methods=["POST"], name="webhooks:segment_legacy"),
]
