"""What every message provider shares: the messages it is handed, the outcomes it reports, and the
per-process context (HTTP client, endpoint overrides, reusable connections) it sends through.

A provider turns one rendered message into one call to its service. It returns the `provider` part of
the `DFInternalMessageSent` variant (Dittofeed §8.1) or raises one of three outcomes:
`ProviderRejected` (the service refused this message: recorded as DFMessageFailure, never retried),
`ProviderUnavailable` (a timeout, a 5xx or a 429: the caller may retry) and `ProviderMisconfigured`
(the stored configuration cannot work: DFBadWorkspaceConfiguration).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from engine.messaging.providers.access_tokens import TokenCache

ProviderDetails = dict[str, Any]
"""The `variant.provider` object of a send result, e.g. {"type": "SendGrid", "messageId": "…"}."""

# The tags providers carry back in their status webhooks (Dittofeed's MESSAGE_METADATA_FIELDS).
MESSAGE_METADATA_FIELDS = (
    "workspaceId",
    "broadcastId",
    "journeyId",
    "runId",
    "messageId",
    "userId",
    "templateId",
    "nodeId",
)


@dataclass(frozen=True)
class Attachment:
    name: str
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class EmailMessage:
    """A rendered email. `tags` are the message metadata providers carry back in their webhooks
    (workspaceId, messageId, userId, templateId, journeyId, broadcastId, nodeId, runId)."""

    from_address: str
    to: str
    subject: str
    body: str
    reply_to: str | None = None
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    name: str | None = None  # the sender's display name
    headers: Mapping[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SmsMessage:
    to: str
    body: str
    tags: Mapping[str, str] = field(default_factory=dict)
    # Where the provider reports delivery; None for test sends (Dittofeed omits it there too).
    status_callback_url: str | None = None


@dataclass(frozen=True)
class PushMessage:
    device_token: str
    title: str | None = None
    body: str | None = None
    image_url: str | None = None
    android: Mapping[str, Any] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)


class ProviderOutcome(Exception):
    """Base of the ways a provider call can fail. Not an EngineError: the send pipeline turns each into
    a recorded result, so none ever becomes an HTTP answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderRejected(ProviderOutcome):
    """The service refused the message; `details` is the DFMessageFailure `variant.provider`."""

    def __init__(self, message: str, details: ProviderDetails) -> None:
        super().__init__(message)
        self.details = details


class ProviderUnavailable(ProviderOutcome):
    """A transient failure (timeout, connection error, 5xx, 429); sending again may succeed."""


class ProviderMisconfigured(ProviderOutcome):
    """The stored provider configuration lacks a required field or holds an unusable value."""


class ConnectionPool:
    """Connections a provider keeps open between sends (SMTP sessions), keyed by what they reach.

    `take` hands a connection to one caller at a time; `give_back` returns a healthy one for reuse.
    """

    def __init__(self) -> None:
        self._idle: dict[Hashable, list[Any]] = {}
        self._lock = threading.Lock()

    def take(self, key: Hashable, connect: Callable[[], Any]) -> Any:
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop()
        return connect()

    def give_back(self, key: Hashable, connection: Any) -> None:
        with self._lock:
            self._idle.setdefault(key, []).append(connection)

    def drain(self) -> list[Any]:
        """Remove and return every idle connection."""
        with self._lock:
            connections = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        return connections

    def close_all(self) -> None:
        """Close every idle connection (at shutdown): `quit()` where the protocol says goodbye (SMTP),
        else `close()`. A connection that fails to close is dropped all the same."""
        for connection in self.drain():
            with contextlib.suppress(Exception):
                if hasattr(connection, "quit"):
                    connection.quit()
                else:
                    connection.close()


@dataclass
class ProviderContext:
    """What providers share within one process. `endpoints` overrides a provider's API base URL by
    provider type (a regional endpoint, a proxy, or the local servers the tests run)."""

    http: httpx.Client
    endpoints: Mapping[str, str] = field(default_factory=dict)
    connections: ConnectionPool = field(default_factory=ConnectionPool)
    # OAuth access tokens reused across sends and threads (FCM service-account tokens).
    tokens: TokenCache = field(default_factory=TokenCache)

    def endpoint(self, provider_type: str, default: str) -> str:
        return self.endpoints.get(provider_type, default).rstrip("/")


def require_fields(provider_type: str, config: Mapping[str, Any], *names: str) -> list[str]:
    """The values of `names` in `config`, each a non-empty string.

    :raises ProviderMisconfigured: naming the first missing field.
    """
    values = []
    for name in names:
        value = config.get(name)
        if not isinstance(value, str) or not value:
            raise ProviderMisconfigured(f"{provider_type} configuration is missing {name}")
        values.append(value)
    return values


def raise_for_http_status(provider_type: str, response: httpx.Response) -> None:
    """Map a provider's HTTP answer: 2xx passes, 429 and 5xx are transient, any other is a rejection
    whose details carry the status and body as Dittofeed records them."""
    if response.is_success:
        return
    if response.status_code == 429 or response.status_code >= 500:
        raise ProviderUnavailable(f"{provider_type} answered {response.status_code}")
    raise ProviderRejected(
        f"{provider_type} refused the message ({response.status_code})",
        {"type": provider_type, "status": response.status_code, "body": response.text[:2000]},
    )


class EmailSender(Protocol):
    def send_email(self, message: EmailMessage) -> ProviderDetails: ...


class SmsSender(Protocol):
    def send_sms(self, message: SmsMessage) -> ProviderDetails: ...


class PushSender(Protocol):
    def send_push(self, message: PushMessage) -> ProviderDetails: ...
