"""The Test providers (Dittofeed §8.4): every send succeeds at once, with no network I/O, so a new
workspace "sends" out of the box and benchmarks measure feedgate rather than a service."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.messaging.providers.base import (
    EmailMessage,
    ProviderContext,
    ProviderDetails,
    PushMessage,
    SmsMessage,
)

TEST = "Test"


class TestProvider:
    __test__ = False  # not a pytest class, despite the name

    def send_email(self, message: EmailMessage) -> ProviderDetails:
        return {"type": TEST}

    def send_sms(self, message: SmsMessage) -> ProviderDetails:
        return {"type": TEST}

    def send_push(self, message: PushMessage) -> ProviderDetails:
        return {"type": TEST}


def build_test_provider(config: Mapping[str, Any], context: ProviderContext) -> TestProvider:
    return TestProvider()
