"""What handlers take from the app: a transaction on the SQL store, run off the event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

Result = TypeVar("Result")


async def in_transaction(request: Request, work: Callable[[Session], Result]) -> Result:
    """Run `work(session)` in one transaction in the thread pool; commit on return, roll back on error."""

    def run() -> Result:
        with request.app.state.sessions.begin() as session:
            return work(session)

    return await run_in_threadpool(run)
