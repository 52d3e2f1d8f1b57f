"""A Resend stand-in that fails some calls, honours idempotency keys, and can kill a worker mid-send.

It checks the wire format Resend documents (`check_resend`, Bearer key) and behaves as Resend's
idempotency documentation says: a repeated `Idempotency-Key` with the same payload gets the first
answer back and sends nothing; with another payload it gets 409 `invalid_idempotent_request`. Of
the other calls, `failure_rate` of them are answered 500 `internal_server_error` (seeded, so a run is
repeatable) before anything is sent. `kill_after(n, pid)` SIGKILLs `pid` when the n-th message has
been accepted, before answering it: the worst moment, when the provider has sent and the worker has
not heard. Calls the dead worker still had in flight (it sends several at once) are then refused with
503 before anything is sent, until `resume()`, so the killed worker sent exactly n.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.net import ThreadedServer
from tests.support.provider_checks import Recorded, check_resend
from tests.support.provider_servers import RESEND_API_KEY


@dataclass
class FlakyResend:
    failure_rate: float = 0.0
    seed: int = 7
    delivered: Counter[str] = field(default_factory=Counter)  # recipient address -> messages sent
    replayed: int = 0  # requests answered from an earlier idempotent answer
    failed: int = 0  # requests answered 500
    requests: int = 0
    _answers: dict[str, tuple[bytes, dict[str, str]]] = field(default_factory=dict)
    _kill: tuple[int, int] | None = None
    _refusing: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self.server = ThreadedServer(Starlette(routes=[Route("/emails", self._emails, methods=["POST"])]))

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> FlakyResend:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def kill_after(self, accepted: int, pid: int) -> None:
        """SIGKILL `pid` once `accepted` messages in all have been sent, before answering the last."""
        with self._lock:
            self._kill = (accepted, pid)

    def resume(self) -> None:
        """Accept calls again after a kill."""
        with self._lock:
            self._refusing = False

    def total_delivered(self) -> int:
        with self._lock:
            return sum(self.delivered.values())

    async def _emails(self, request: Request) -> JSONResponse:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded = Recorded("resend", "POST", "/emails", "/emails", "", headers, body)
        if headers.get("authorization") != f"Bearer {RESEND_API_KEY}":
            return JSONResponse(
                {"statusCode": 401, "name": "missing_api_key", "message": "Missing API key"}, 401
            )
        problems = check_resend(recorded)
        if problems:
            return JSONResponse(
                {"statusCode": 422, "name": "validation_error", "message": "; ".join(problems)}, 422
            )
        key = headers.get("idempotency-key")
        with self._lock:
            if self._refusing:
                return JSONResponse(
                    {"statusCode": 503, "name": "service_unavailable", "message": "Try again later"}, 503
                )
            self.requests += 1
            if key is not None and key in self._answers:
                first_body, first_answer = self._answers[key]
                if json.loads(first_body) != json.loads(body):
                    message = "Same idempotency key used with a different request payload."
                    return JSONResponse(
                        {"statusCode": 409, "name": "invalid_idempotent_request", "message": message}, 409
                    )
                self.replayed += 1
                return JSONResponse(first_answer)
            if self._random.random() < self.failure_rate:
                self.failed += 1
                return JSONResponse(
                    {"statusCode": 500, "name": "internal_server_error", "message": "Unexpected error"}, 500
                )
            answer = {"id": str(uuid.uuid4())}
            if key is not None:
                self._answers[key] = (body, answer)
            for address in json.loads(body)["to"]:
                self.delivered[address] += 1
            kill = self._kill
            if kill is not None and sum(self.delivered.values()) >= kill[0]:
                self._kill = None
                self._refusing = True
                os.kill(kill[1], signal.SIGKILL)
        return JSONResponse(answer)
