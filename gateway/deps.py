"""What handlers take from the app: a transaction on the SQL store, run off the event loop, carrying
the request's audit context so every change it commits is recorded with it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from engine.audit import AuditContext, attach_audit
from engine.storage.models import Workspace

Result = TypeVar("Result")

Authorize = Callable[[Request, Session, Any], Workspace]
"""Authenticate the request and return the workspace it targets (which it may act on). Each mount of
a controller (admin key, member, embedded session) passes its own."""


async def in_transaction(request: Request, work: Callable[[Session], Result]) -> Result:
    """Run `work(session)` in one transaction in the thread pool; commit on return, roll back on error."""

    context = audit_context(request)

    def run() -> Result:
        with request.app.state.sessions.begin() as session:
            attach_audit(session, context)
            return work(session)

    return await run_in_threadpool(run)


async def in_read_transaction(request: Request, work: Callable[[Session], Result]) -> Result:
    """Run `work(session)`, which only reads, in a read-only transaction in the thread pool: on SQLite it
    neither waits for nor holds up the writer. For the checks every request makes (credentials)."""

    def run() -> Result:
        with request.app.state.read_sessions() as session:
            return work(session)

    return await run_in_threadpool(run)


def audit_context(request: Request) -> AuditContext:
    """The request's audit context, made on first use; authorisers set its actor."""
    context: AuditContext | None = getattr(request.state, "audit", None)
    if context is None:
        route = request.scope.get("route")
        action = getattr(route, "name", None) or f"{request.method} {request.url.path}"
        context = AuditContext(action=action, ip=request.client.host if request.client else None)
        request.state.audit = context
    return context
