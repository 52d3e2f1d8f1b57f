"""A Resend stand-in driven by a script of faults, that keeps a log of every attempt it saw.

It checks Resend's wire format (`check_resend`, Bearer key) and honours idempotency keys as Resend
documents: a repeated `Idempotency-Key` with the same payload gets the first answer back and sends
nothing. Every other request takes the next step of the script, if any is left:

- `"500"`: answered 500 `internal_server_error` before anything is sent;
- `"late"`: the message is sent, but the answer comes after `late_seconds`, past the client's
  timeout: the provider did its part and the sender never heard (a retry must not send it again).

With `idempotent=False` the key is ignored, as by a provider that has none.
Addresses in `rejected` are always refused with 422 `validation_error` (a permanent failure).
`pause_after(n, action)` runs `action` once the n-th message is sent, before answering it (a fault
injected at the worst moment: the provider has sent, the worker has not heard). `delay_seconds` slows
every answer, to keep a send running long enough to be disturbed.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.net import ThreadedServer
from tests.support.provider_checks import Recorded, check_resend
from tests.support.provider_servers import RESEND_API_KEY

LATE = "late"
SERVER_ERROR = "500"


@dataclass(frozen=True)
class Attempt:
    """One valid request: when it arrived (monotonic), its idempotency key, its recipient, the answer
    (an HTTP status, `"replayed"` or `"late"`)."""

    at: float
    key: str
    to: str
    outcome: str


@dataclass
class ResendStandIn:
    rejected: frozenset[str] = frozenset()
    # False: behave as a provider without idempotency keys (SendGrid, SES, Postmark, SMTP) would.
    idempotent: bool = True
    late_seconds: float = 35.0
    delay_seconds: float = 0.0
    delivered: Counter[str] = field(default_factory=Counter)  # recipient -> messages sent
    attempts: list[Attempt] = field(default_factory=list)
    _script: deque[str] = field(default_factory=deque)
    _answers: dict[str, dict[str, str]] = field(default_factory=dict)
    _pause: tuple[int, Callable[[], None]] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = ThreadedServer(Starlette(routes=[Route("/emails", self._emails, methods=["POST"])]))

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> ResendStandIn:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def script(self, steps: Iterable[str]) -> None:
        """Answer the next new requests by `steps` (`"500"` or `"late"`), then normally."""
        with self._lock:
            self._script.extend(steps)

    def pause_after(self, sent: int, action: Callable[[], None]) -> None:
        """Run `action` (in a server thread) once `sent` messages in all were sent, before answering."""
        with self._lock:
            self._pause = (sent, action)

    def total_delivered(self) -> int:
        with self._lock:
            return sum(self.delivered.values())

    def attempts_of(self, outcome: str) -> list[Attempt]:
        with self._lock:
            return [attempt for attempt in self.attempts if attempt.outcome == outcome]

    def attempts_by_key(self) -> dict[str, list[Attempt]]:
        with self._lock:
            by_key: dict[str, list[Attempt]] = {}
            for attempt in self.attempts:
                by_key.setdefault(attempt.key, []).append(attempt)
            return by_key

    async def _emails(self, request: Request) -> JSONResponse:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        if headers.get("authorization") != f"Bearer {RESEND_API_KEY}":
            return _error(401, "missing_api_key", "Missing API key")
        problems = check_resend(Recorded("resend", "POST", "/emails", "/emails", "", headers, body))
        if problems:
            return _error(422, "validation_error", "; ".join(problems))
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        key = headers.get("idempotency-key", "")
        (to,) = json.loads(body)["to"]
        with self._lock:
            outcome, answer, pause = self._decide(key, to)
            self.attempts.append(Attempt(time.monotonic(), key, to, outcome))
        if pause is not None:
            await run_in_threadpool(pause)
        if outcome == LATE:
            await asyncio.sleep(self.late_seconds)
        if outcome == "500":
            return _error(500, "internal_server_error", "Unexpected error")
        if outcome == "422":
            return _error(422, "validation_error", f"Invalid `to` field: {to} does not accept mail.")
        return JSONResponse(answer)

    def _decide(self, key: str, to: str) -> tuple[str, dict[str, str], Callable[[], None] | None]:
        """Under the lock: what this request gets, and the pause action if its send is the n-th."""
        if self.idempotent and key and key in self._answers:
            return "replayed", self._answers[key], None
        if to in self.rejected:
            return "422", {}, None
        step = self._script.popleft() if self._script else None
        if step == SERVER_ERROR:
            return "500", {}, None
        answer = {"id": str(uuid.uuid4())}
        if key:
            self._answers[key] = answer
        self.delivered[to] += 1
        pause = None
        if self._pause is not None and sum(self.delivered.values()) >= self._pause[0]:
            pause, self._pause = self._pause[1], None
        return (LATE if step == LATE else "200"), answer, pause


def _error(status: int, name: str, message: str) -> JSONResponse:
    return JSONResponse({"statusCode": status, "name": name, "message": message}, status)
