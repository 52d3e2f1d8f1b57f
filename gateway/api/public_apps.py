"""`/api/public/apps/*`: Segment-compatible ingestion authorised by a write key (Dittofeed §5.1).

A 204 is sent only after the event writer has the rows on disk in ClickHouse; a repeated messageId is
stored once. Bodies are validated before anything is written, so a bad item in a batch writes nothing.
With blob storage enabled, track `files` are written there before the events (engine/event_files.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.credentials import InvalidWriteKey, authenticate_write_key
from engine.errors import InvalidInput, NotFound
from engine.event_files import EventFile, read_event_files, store_event_files
from engine.events import MESSAGE_MODELS, BatchRequest, EventRow, batch_messages, build_rows
from gateway.deps import in_read_transaction, in_transaction
from gateway.inputs import read_json, validate


async def ingest(request: Request) -> Response:
    event_type: str = request.path_params["event_type"]
    if event_type != "batch" and event_type not in MESSAGE_MODELS:
        raise NotFound(f"no such apps endpoint: {event_type}")
    received_at = datetime.now(UTC)
    authorization = _authorization(request)
    raw = await read_json(request)
    if event_type == "batch":
        batch = validate(BatchRequest, raw)
        messages = batch_messages(batch, raw)
    else:
        validate(MESSAGE_MODELS[event_type], raw)
        messages = [(event_type, raw)]
    files = _read_files(request, messages, batch=event_type == "batch")
    try:
        workspace_id = await in_read_transaction(request, lambda s: authenticate_write_key(s, authorization))
    except InvalidWriteKey:
        if event_type == "track":
            return JSONResponse({"message": "Invalid write key."}, status_code=401)
        raise
    if files:
        messages = await run_in_threadpool(_store_files, request, workspace_id, messages, files)
    rows: list[EventRow] = []
    tracks: list[dict[str, Any]] = []
    for message_type, message in messages:
        built = build_rows(workspace_id, message_type, message, received_at)
        rows.extend(built)
        if message_type == "track" and built:
            tracks.append({**message, "messageId": built[0].message_id})
    await request.app.state.event_writer.accept_async(rows)
    starter = request.app.state.event_entry
    if tracks and starter.may_start(workspace_id):
        # After the write: a retried request stores its events once and starts each keyed run once.
        await in_transaction(request, lambda s: starter.start(s, workspace_id, tracks, received_at))
    return Response(status_code=204)


async def alias(request: Request) -> JSONResponse:
    return JSONResponse({"message": "Not yet implemented."}, status_code=400)


def _read_files(
    request: Request, messages: list[tuple[str, dict[str, Any]]], *, batch: bool
) -> dict[int, list[EventFile]]:
    """Decoded `files` of each track message, by position; none when blob storage is disabled (then
    files are dropped, as upstream does)."""
    if request.app.state.blob_store is None:
        return {}
    files: dict[int, list[EventFile]] = {}
    for index, (message_type, message) in enumerate(messages):
        if message_type == "track":
            where = f"body/batch/{index}" if batch else "body"
            files[index] = read_event_files(message, where)
    return {index: decoded for index, decoded in files.items() if decoded}


def _store_files(
    request: Request,
    workspace_id: str,
    messages: list[tuple[str, dict[str, Any]]],
    files: dict[int, list[EventFile]],
) -> list[tuple[str, dict[str, Any]]]:
    blob_store = request.app.state.blob_store
    return [
        (kind, store_event_files(blob_store, workspace_id, message, files.get(index, [])))
        for index, (kind, message) in enumerate(messages)
    ]


def _authorization(request: Request) -> str:
    value: Any = request.headers.get("authorization")
    if not value:
        raise InvalidInput("headers must have required property 'authorization'", field="authorization")
    return str(value)


routes = [
    Route("/api/public/apps/alias", alias, methods=["POST"], name="apps:alias"),
    Route("/api/public/apps/{event_type:str}", ingest, methods=["POST"], name="apps:ingest"),
]
