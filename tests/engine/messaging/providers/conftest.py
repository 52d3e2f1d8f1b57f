"""One local provider stand-in server for the session; each test gets a fresh ProviderContext whose
endpoint overrides point every provider at it, and starts with no recorded requests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from engine.messaging.providers.base import ProviderContext
from engine.messaging.providers.firebase import FIREBASE_TOKEN
from tests.support.provider_servers import ProviderServers

PROVIDER_TYPES = ("SendGrid", "AmazonSes", "PostMark", "Resend", "MailChimp", "Twilio", "Firebase")


@pytest.fixture(scope="session")
def provider_servers() -> Iterator[ProviderServers]:
    servers = ProviderServers().start()
    yield servers
    servers.stop()


@pytest.fixture
def servers(provider_servers: ProviderServers) -> ProviderServers:
    provider_servers.reset()
    return provider_servers


@pytest.fixture
def context(servers: ProviderServers) -> Iterator[ProviderContext]:
    endpoints = {provider_type: servers.url for provider_type in PROVIDER_TYPES}
    endpoints[FIREBASE_TOKEN] = servers.token_url
    with httpx.Client(timeout=5.0) as http:
        context = ProviderContext(http=http, endpoints=endpoints)
        yield context
        context.connections.close_all()
