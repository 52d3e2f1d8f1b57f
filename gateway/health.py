"""Health endpoints: Dittofeed's `GET /api/` version probe and a readiness check of both stores."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine import __version__


async def version(request: Request) -> JSONResponse:
    """Answer `{version}` like Dittofeed's health route."""
    return JSONResponse({"version": __version__})


def ready(request: Request) -> JSONResponse:
    """Answer 200 when SQL and the event store both respond, else 503 naming the one that does not."""
    checks = {"sql": _sql_ok(request), "events": request.app.state.event_store.ping()}
    return JSONResponse(checks, status_code=200 if all(checks.values()) else 503)


def _sql_ok(request: Request) -> bool:
    try:
        with request.app.state.sql_engine.connect() as connection:
            return bool(connection.execute(text("SELECT 1")).scalar() == 1)
    except SQLAlchemyError:
        return False


routes = [
    Route("/api/", version, methods=["GET"], name="health:version"),
    Route("/api/readyz", ready, methods=["GET"], name="health:ready"),
]
