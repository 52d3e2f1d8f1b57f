"""The SMTP email provider (Dittofeed's `Smtp`): MIME messages built with the standard library and sent
over connections that are kept open and reused between sends, one sender at a time per connection.

Port 465 speaks implicit TLS; any other port upgrades with STARTTLS when the server offers it. A reply
code 5xx refuses the message for good; a 4xx, a dropped connection or a timeout may pass on retry.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from collections.abc import Mapping
from email import encoders
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.policy import compat32
from email.utils import formataddr, make_msgid
from typing import Any

from engine.messaging.providers.base import (
    EmailMessage,
    ProviderContext,
    ProviderDetails,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
    require_fields,
)

SMTP = "Smtp"
TIMEOUT_SECONDS = 30.0
IMPLICIT_TLS_PORT = 465
# Lines up to RFC 5322's limit, so a List-Unsubscribe URL stays on its header's line.
_POLICY = compat32.clone(max_line_length=998)
# RFC 5322 field names: printable ASCII but the colon.
_HEADER_NAME = re.compile(r"[!-9;-~]+")


def _header(value: str) -> str:
    # A line break in a value would start a header of the sender's choosing (header injection).
    value = value.replace("\r", " ").replace("\n", " ")
    return value if value.isascii() else Header(value, "utf-8").encode()


def build_mime(message: EmailMessage) -> Message:
    """The message as MIME: an HTML body, custom headers, and each attachment as its own part.

    Built with the standard library's legacy (compat32) classes, which are several times faster than
    the `email.policy.default` ones for the same bytes on the wire.

    :raises ProviderRejected: a custom header name that is not a header name.
    """
    html = MIMEText(message.body, "html", "utf-8", policy=_POLICY)
    mime: Message = html
    if message.attachments:
        mime = MIMEMultipart("mixed", policy=_POLICY)
        mime.attach(html)
        for attachment in message.attachments:
            maintype, _, subtype = attachment.mime_type.partition("/")
            part = MIMEBase(maintype or "application", subtype or "octet-stream")
            part.set_payload(attachment.data)
            encoders.encode_base64(part)
            part.add_header("Content-Disposition", "attachment", filename=("utf-8", "", attachment.name))
            mime.attach(part)
    sender = (
        formataddr((message.name, message.from_address), "utf-8") if message.name else message.from_address
    )
    mime["From"] = _header(sender)
    mime["To"] = _header(message.to)
    if message.cc:
        mime["Cc"] = _header(", ".join(message.cc))
    if message.reply_to:
        mime["Reply-To"] = _header(message.reply_to)
    mime["Subject"] = _header(message.subject)
    mime["Message-ID"] = make_msgid(domain=message.from_address.rpartition("@")[2] or None)
    for header, value in message.headers.items():
        if not _HEADER_NAME.fullmatch(header):
            raise ProviderRejected(
                "invalid header name", {"type": SMTP, "message": f"invalid header name {header!r}"}
            )
        mime[header] = _header(value)
    return mime


class SmtpProvider:
    def __init__(
        self, host: str, port: int, username: str | None, password: str | None, context: ProviderContext
    ):
        self._address = (host, port)
        self._login = (username, password) if username else None
        self._context = context
        # Connections are pooled per server and account, never shared across accounts.
        self._key = (SMTP, host, port, username)

    def _connect(self) -> smtplib.SMTP:
        host, port = self._address
        try:
            if port == IMPLICIT_TLS_PORT:
                connection: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
                )
            else:
                connection = smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS)
                connection.ehlo()
                if connection.has_extn("starttls"):
                    connection.starttls(context=ssl.create_default_context())
                    connection.ehlo()
            if self._login is not None:
                connection.login(self._login[0], self._login[1] or "")
        except smtplib.SMTPAuthenticationError as error:
            raise ProviderRejected(
                "SMTP login refused", {"type": SMTP, "message": f"authentication failed ({error.smtp_code})"}
            ) from None
        except (OSError, smtplib.SMTPException) as error:
            raise ProviderUnavailable(
                f"SMTP server {host}:{port} unreachable: {type(error).__name__}"
            ) from None
        return connection

    def send_email(self, message: EmailMessage) -> ProviderDetails:
        mime = build_mime(message)
        recipients = [message.to, *message.cc, *message.bcc]
        pool = self._context.connections
        connection: smtplib.SMTP = pool.take(self._key, self._connect)
        try:
            refused = connection.send_message(mime, from_addr=message.from_address, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as error:
            pool.give_back(self._key, connection)
            raise _refusal(error.recipients) from None
        except smtplib.SMTPResponseException as error:
            if 500 <= error.smtp_code < 600:
                _reset_or_close(connection, self._key, pool)
                raise ProviderRejected(
                    "SMTP server refused the message", {"type": SMTP, "message": _reply(error)}
                ) from None
            _close(connection)
            raise ProviderUnavailable(f"SMTP server answered {error.smtp_code}") from None
        except (OSError, smtplib.SMTPException) as error:
            # A pooled connection the server has since closed fails here; the retry opens a new one.
            _close(connection)
            raise ProviderUnavailable(f"SMTP connection failed: {type(error).__name__}") from None
        pool.give_back(self._key, connection)
        if refused:
            raise _refusal(refused)
        return {"type": SMTP, "messageId": mime["Message-ID"]}


def _reply(error: smtplib.SMTPResponseException) -> str:
    text = (
        error.smtp_error.decode(errors="replace")
        if isinstance(error.smtp_error, bytes)
        else str(error.smtp_error)
    )
    return f"{error.smtp_code} {text}"


def _refusal(recipients: Mapping[str, tuple[int, bytes]]) -> ProviderRejected:
    code, text = next(iter(recipients.values()))
    reply = f"{code} {text.decode(errors='replace')}"
    return ProviderRejected("SMTP server refused a recipient", {"type": SMTP, "message": reply})


def _reset_or_close(connection: smtplib.SMTP, key: Any, pool: Any) -> None:
    try:
        connection.rset()
    except (OSError, smtplib.SMTPException):
        _close(connection)
        return
    pool.give_back(key, connection)


def _close(connection: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        connection.close()


def build_smtp(config: Mapping[str, Any], context: ProviderContext) -> SmtpProvider:
    (host,) = require_fields(SMTP, config, "host")
    raw_port = config.get("port") or "587"
    try:
        port = int(raw_port)
    except (TypeError, ValueError):
        raise ProviderMisconfigured("Smtp configuration has a port that is not a number") from None
    if not 0 < port < 65536:
        raise ProviderMisconfigured("Smtp configuration has a port out of range")
    username = config.get("username") or None
    password = config.get("password") or None
    return SmtpProvider(host, port, username, password, context)
