"""The SMTP provider against a real SMTP server: the MIME message it builds, connections reused across
sends and replaced when the server drops them, and reply codes mapped to Dittofeed's outcomes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from engine.messaging.providers.base import (
    Attachment,
    EmailMessage,
    ProviderContext,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
)
from engine.messaging.providers.smtp import build_smtp
from tests.support.net import free_port
from tests.support.smtp_sink import SmtpSink, running_smtp_sink


@pytest.fixture
def context() -> Iterator[ProviderContext]:
    with httpx.Client() as http:
        context = ProviderContext(http)
        yield context
        context.connections.close_all()


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with running_smtp_sink() as sink:
        yield sink


def message(to: str = "ada@example.com", **extra: object) -> EmailMessage:
    fields: dict[str, object] = {
        "from_address": "news@acme.test",
        "to": to,
        "subject": "Héllo",
        "body": "<p>Hi</p>",
        **extra,
    }
    return EmailMessage(**fields)  # type: ignore[arg-type]


def test_the_mime_message_carries_every_field(context: ProviderContext, sink: SmtpSink) -> None:
    provider = build_smtp({"type": "Smtp", "host": "127.0.0.1", "port": str(sink.port)}, context)
    details = provider.send_email(
        message(
            name="Acme News",
            reply_to="help@acme.test",
            cc=("cc@example.com",),
            bcc=("bcc@example.com",),
            headers={"X-Campaign": "spring"},
            attachments=(Attachment("a.pdf", "application/pdf", b"%PDF-1"),),
        )
    )
    (received,) = sink.received
    mime = received.message
    assert details == {"type": "Smtp", "messageId": mime["Message-ID"]}
    assert received.rcpt_tos == ["ada@example.com", "cc@example.com", "bcc@example.com"]
    assert mime["From"] == "Acme News <news@acme.test>"
    assert (mime["Reply-To"], mime["Cc"], mime["Bcc"]) == ("help@acme.test", "cc@example.com", None)
    assert (mime["Subject"], mime["X-Campaign"]) == ("Héllo", "spring")
    html = mime.get_body(("html",))
    assert html is not None and html.get_content().strip() == "<p>Hi</p>"
    (attachment,) = mime.iter_attachments()
    assert (attachment.get_filename(), attachment.get_content()) == ("a.pdf", b"%PDF-1")


def test_connections_are_reused_and_replaced_when_the_server_drops_them(context: ProviderContext) -> None:
    port = free_port()
    config = {"type": "Smtp", "host": "127.0.0.1", "port": str(port)}
    with running_smtp_sink(port) as sink:
        provider = build_smtp(config, context)
        for index in range(5):
            provider.send_email(message(f"u{index}@example.com"))
        assert (len(sink.received), sink.connections) == (5, 1)
    with pytest.raises(ProviderUnavailable):  # the pooled connection is dead, and nothing listens
        provider.send_email(message())
    with running_smtp_sink(port) as sink:
        provider.send_email(message())
        assert len(sink.received) == 1


def test_a_refused_recipient_is_a_rejection_with_the_servers_reply(
    context: ProviderContext, sink: SmtpSink
) -> None:
    sink.refuse.add("gone@example.com")
    provider = build_smtp({"type": "Smtp", "host": "127.0.0.1", "port": str(sink.port)}, context)
    with pytest.raises(ProviderRejected) as refused:
        provider.send_email(message("gone@example.com"))
    assert refused.value.details["type"] == "Smtp"
    assert refused.value.details["message"].startswith("550")
    provider.send_email(message())  # the connection survives a refusal
    assert sink.connections == 1


@pytest.mark.parametrize(
    "config",
    [
        {"type": "Smtp"},
        {"type": "Smtp", "host": "h", "port": "smtp"},
        {"type": "Smtp", "host": "h", "port": "70000"},
    ],
)
def test_unusable_configurations_are_misconfigured(context: ProviderContext, config: dict[str, str]) -> None:
    with pytest.raises(ProviderMisconfigured):
        build_smtp(config, context)


def test_a_line_break_in_a_header_value_cannot_add_a_header(context: ProviderContext, sink: SmtpSink) -> None:
    provider = build_smtp({"type": "Smtp", "host": "127.0.0.1", "port": str(sink.port)}, context)
    provider.send_email(message(subject="Hi\r\nBcc: evil@example.com", headers={"X-Tag": "a\nX-Evil: 1"}))
    (received,) = sink.received
    assert received.rcpt_tos == ["ada@example.com"]
    assert (received.message["Bcc"], received.message["X-Evil"]) == (None, None)
    assert received.message["Subject"] == "Hi  Bcc: evil@example.com"


def test_a_custom_header_name_that_is_no_header_name_is_refused(
    context: ProviderContext, sink: SmtpSink
) -> None:
    provider = build_smtp({"type": "Smtp", "host": "127.0.0.1", "port": str(sink.port)}, context)
    with pytest.raises(ProviderRejected):
        provider.send_email(message(headers={"Bad Name:": "x"}))
    assert sink.received == []
