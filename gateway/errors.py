"""Engine errors and HTTP exceptions mapped to responses, in one place.

Error bodies keep Dittofeed's wire shapes: `{"message": ...}` by default, or the typed body an engine
error carries (e.g. `{"type": "WorkspaceAlreadyExists"}`). Unexpected exceptions are left to
Starlette's ServerErrorMiddleware, which answers 500 without details.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ExceptionHandler

from engine.errors import (
    Conflict,
    EngineError,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    Unavailable,
)

logger = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[EngineError], int] = {
    InvalidInput: 400,
    NotAuthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    Unavailable: 503,
}


def status_for(error: EngineError) -> int:
    """Return the HTTP status of `error`, from its nearest mapped ancestor class."""
    for kind in type(error).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]
    return 500


async def handle_engine_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, EngineError)
    status = status_for(exc)
    if status >= 500:
        logger.warning("%s %s -> %d: %s", request.method, request.url.path, status, exc.message)
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse(exc.body, status_code=status, headers=headers)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse({"message": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def handle_server_error(request: Request, exc: Exception) -> Response:
    # Logged with its traceback by ServerErrorMiddleware; the client learns nothing internal.
    return JSONResponse({"message": "Internal server error"}, status_code=500)


EXCEPTION_HANDLERS: dict[int | type[Exception], ExceptionHandler] = {
    EngineError: handle_engine_error,
    HTTPException: handle_http_exception,
    500: handle_server_error,
}
