"""A real SMTP server (aiosmtpd) on loopback that keeps what it receives, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.net import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    peer: Any  # (host, port) of the client connection: one per SMTP session


@dataclass
class SmtpSink:
    """Accepts every message, unless a recipient is in `refuse` (answered 550)."""

    port: int = 0
    received: list[Received] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    # Seconds each message's DATA takes to answer: a slow server, to see how many sends overlap.
    data_delay: float = 0.0
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # Every session runs on the controller's one event loop, so these counts need no lock.
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(self.data_delay)
        self.in_flight -= 1
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed, session.peer))
        return "250 OK"

    @property
    def connections(self) -> int:
        return len({r.peer for r in self.received})


@contextmanager
def running_smtp_sink(port: int | None = None) -> Iterator[SmtpSink]:
    sink = SmtpSink(port=port or free_port())
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
