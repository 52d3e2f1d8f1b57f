"""Amazon SES email through the SES v2 API (SendEmail) with boto3. The message is sent as a raw MIME
document built with the standard library, so attachments and custom headers survive as written; the
message tags travel as SES message tags, which SES publishes with every event (Dittofeed §8.3).

boto3 clients are costly to create and safe to reuse, so one per credential is kept in the context's
connection pool. boto3's own retries are off: the send pipeline decides when to try again.
"""

from __future__ import annotations

import email.policy
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from typing import TYPE_CHECKING, Any

from engine.messaging.providers.base import (
    EmailMessage,
    ProviderContext,
    ProviderDetails,
    ProviderMisconfigured,
    ProviderRejected,
    ProviderUnavailable,
    require_fields,
)
from engine.messaging.providers.http_calls import http_base_url, text_or_none

if TYPE_CHECKING:
    from botocore.exceptions import ClientError
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sesv2.type_defs import DestinationTypeDef, MessageTagTypeDef

AMAZON_SES = "AmazonSes"
_THROTTLING_CODES = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "ServiceUnavailable", "InternalFailure"}
)
_TAG_FORBIDDEN = re.compile(r"[^A-Za-z0-9_\-.@]")
_TAG_MAX_LENGTH = 256
# Custom headers that would corrupt the MIME structure or leak blind copies.
_HEADERS_NOT_OVERRIDDEN = frozenset({"content-type", "content-transfer-encoding", "mime-version", "bcc"})


def ses_tag_text(value: str) -> str:
    """A tag name or value as SES accepts it: characters outside [A-Za-z0-9_-.@] become `_`."""
    return _TAG_FORBIDDEN.sub("_", value)[:_TAG_MAX_LENGTH]


@dataclass(frozen=True)
class ClientSettings:
    region: str
    endpoint_url: str | None
    access_key_id: str
    secret_access_key: str = field(repr=False)


class AmazonSesSender:
    def __init__(self, settings: ClientSettings, context: ProviderContext) -> None:
        self._settings = settings
        self._context = context
        secret_digest = hashlib.sha256(settings.secret_access_key.encode()).hexdigest()
        self._pool_key = (
            AMAZON_SES,
            settings.region,
            settings.endpoint_url,
            settings.access_key_id,
            secret_digest,
        )

    def send_email(self, message: EmailMessage) -> ProviderDetails:
        from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        raw = mime_bytes(message)
        destination: DestinationTypeDef = {"ToAddresses": [message.to]}
        if message.cc:
            destination["CcAddresses"] = list(message.cc)
        if message.bcc:
            destination["BccAddresses"] = list(message.bcc)
        tags: list[MessageTagTypeDef] = [
            {"Name": ses_tag_text(name), "Value": ses_tag_text(value)}
            for name, value in message.tags.items()
            if name and value
        ]
        client = self._context.connections.take(self._pool_key, self._create_client)
        try:
            answer = client.send_email(
                FromEmailAddress=message.from_address,
                Destination=destination,
                Content={"Raw": {"Data": raw}},
                EmailTags=tags,
            )
        except ClientError as exc:
            raise _outcome_of(exc) from exc
        except (HTTPClientError, BotoConnectionError) as exc:
            raise ProviderUnavailable(f"{AMAZON_SES} could not be reached ({type(exc).__name__})") from exc
        except BotoCoreError as exc:
            raise ProviderMisconfigured(f"{AMAZON_SES} client failed ({type(exc).__name__})") from exc
        finally:
            self._context.connections.give_back(self._pool_key, client)
        details: ProviderDetails = {"type": AMAZON_SES}
        message_id = text_or_none(answer.get("MessageId"))
        if message_id:
            details["messageId"] = message_id
        return details

    def _create_client(self) -> SESV2Client:
        import boto3.session
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        try:
            return boto3.session.Session().client(
                "sesv2",
                region_name=self._settings.region,
                endpoint_url=self._settings.endpoint_url,
                aws_access_key_id=self._settings.access_key_id,
                aws_secret_access_key=self._settings.secret_access_key,
                config=Config(retries={"total_max_attempts": 1}, connect_timeout=10, read_timeout=30),
            )
        except (BotoCoreError, ValueError) as exc:
            raise ProviderMisconfigured(
                f"{AMAZON_SES} configuration has an invalid region or endpoint ({type(exc).__name__})"
            ) from exc


def _outcome_of(exc: ClientError) -> ProviderUnavailable | ProviderRejected:
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or "")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if status == 429 or status >= 500 or code in _THROTTLING_CODES:
        return ProviderUnavailable(f"{AMAZON_SES} answered {status or code}")
    return ProviderRejected(
        f"{AMAZON_SES} refused the message ({code or status})",
        {"type": AMAZON_SES, "message": text_or_none(error.get("Message")) or code or f"HTTP {status}"},
    )


def mime_bytes(message: EmailMessage) -> bytes:
    """The message as an RFC 5322 document (CRLF line ends); Bcc is left to the envelope."""
    mime = MimeMessage(policy=email.policy.SMTP)
    try:
        mime["From"] = Address(display_name=message.name or "", addr_spec=message.from_address)
        mime["To"] = message.to
        if message.cc:
            mime["Cc"] = ", ".join(message.cc)
        if message.reply_to:
            mime["Reply-To"] = message.reply_to
        mime["Subject"] = message.subject
        for name, value in message.headers.items():
            if name.lower() in _HEADERS_NOT_OVERRIDDEN:
                continue
            del mime[name]
            mime[name] = value
    except (ValueError, IndexError) as exc:
        # A header the renderer produced cannot be written (an unparsable address, a line break).
        raise ProviderRejected(
            f"{AMAZON_SES} message has an invalid header",
            {"type": AMAZON_SES, "message": f"invalid header: {exc}"},
        ) from exc
    mime.set_content(message.body, subtype="html")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        if not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        mime.add_attachment(attachment.data, maintype=maintype, subtype=subtype, filename=attachment.name)
    return mime.as_bytes()


def build_amazon_ses(config: Mapping[str, Any], context: ProviderContext) -> AmazonSesSender:
    access_key_id, secret_access_key, region = require_fields(
        AMAZON_SES, config, "accessKeyId", "secretAccessKey", "region"
    )
    endpoint = text_or_none(config.get("endpoint")) or context.endpoints.get(AMAZON_SES)
    endpoint_url = http_base_url(AMAZON_SES, "endpoint", endpoint) if endpoint else None
    return AmazonSesSender(ClientSettings(region, endpoint_url, access_key_id, secret_access_key), context)
