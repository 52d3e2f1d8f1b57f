"""The wire-format rules each provider documents, checked on a recorded request. Each `check_*`
returns what is wrong (empty when the request is one the real API accepts)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+")
MAILBOX = re.compile(r'(?:"(?:[^"\\]|\\.)*"|[^"<>]*?)\s*<([^<>]+)>')
E164 = re.compile(r"\+[1-9]\d{1,14}")
SES_TAG = re.compile(r"[A-Za-z0-9_\-.@]{1,256}")
RESEND_TAG = re.compile(r"[A-Za-z0-9_-]{1,256}")
SENDGRID_RESERVED_HEADERS = frozenset(
    {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type", "content-transfer-encoding"}
    | {"to", "from", "subject", "reply-to", "cc", "bcc"}
)
FCM_MESSAGE_KEYS = frozenset(
    {
        "name",
        "data",
        "notification",
        "android",
        "webpush",
        "apns",
        "fcm_options",
        "token",
        "topic",
        "condition",
    }
)
FCM_SCOPES = (
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
)


@dataclass(frozen=True)
class Recorded:
    route: str
    method: str
    path: str
    raw_path: str
    query: str
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def json_or_none(self) -> Any:
        try:
            return self.json()
        except ValueError:
            return None

    def form(self) -> dict[str, str]:
        return {name: values[-1] for name, values in parse_qs(self.body.decode()).items()}


class Problems(list[str]):
    def need(self, condition: bool, message: str) -> bool:
        if not condition:
            self.append(message)
        return condition


def is_address(value: Any) -> bool:
    return isinstance(value, str) and ADDRESS.fullmatch(value) is not None


def is_mailbox(value: Any) -> bool:
    """`addr` or `Name <addr>` / `"Name, Inc." <addr>`."""
    if is_address(value):
        return True
    match = MAILBOX.fullmatch(value) if isinstance(value, str) else None
    return match is not None and is_address(match.group(1))


def is_base64(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        return False
    return True


def is_text_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def is_nonempty_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _json_body(r: Recorded, problems: Problems) -> Any:
    problems.need(r.method == "POST", f"method must be POST, not {r.method}")
    problems.need(
        r.headers.get("content-type", "").startswith("application/json"), "content type must be JSON"
    )
    body = r.json_or_none()
    problems.need(isinstance(body, dict), "body must be a JSON object")
    return body if isinstance(body, dict) else {}


def check_sendgrid(r: Recorded) -> Problems:
    problems = Problems()
    body = _json_body(r, problems)
    personalizations = body.get("personalizations")
    if problems.need(
        isinstance(personalizations, list) and 0 < len(personalizations) <= 1000, "personalizations"
    ):
        for p in personalizations:
            seen: list[str] = []
            for kind in ("to", "cc", "bcc"):
                people = p.get(kind, [])
                if kind == "to":
                    problems.need(bool(people), "personalizations.to is required")
                if problems.need(isinstance(people, list), f"personalizations.{kind} must be a list"):
                    for person in people:
                        problems.need(is_address(person.get("email")), f"personalizations.{kind}.email")
                        seen.append(str(person.get("email")).lower())
            problems.need(
                len(seen) == len(set(seen)), "Each email address in the personalization must be unique"
            )
            if "custom_args" in p:
                problems.need(is_text_map(p["custom_args"]), "custom_args values must be strings")
    sender = body.get("from")
    problems.need(isinstance(sender, dict) and is_address(sender.get("email")), "from.email")
    if isinstance(sender, dict) and "name" in sender:
        problems.need(isinstance(sender["name"], str), "from.name must be a string")
    problems.need(is_nonempty_text(body.get("subject")), "subject is required")
    content = body.get("content")
    if problems.need(isinstance(content, list) and bool(content), "content is required"):
        for part in content:
            problems.need(
                is_nonempty_text(part.get("type")) and is_nonempty_text(part.get("value")), "content"
            )
    if "reply_to" in body:
        problems.need(is_address(body["reply_to"].get("email")), "reply_to.email")
    if "headers" in body:
        headers = body["headers"]
        problems.need(is_text_map(headers), "headers must map names to strings")
        problems.need(not SENDGRID_RESERVED_HEADERS & {h.lower() for h in headers}, "reserved header")
    for attachment in body.get("attachments", []):
        problems.need(is_base64(attachment.get("content")), "attachments.content must be base64")
        problems.need(is_nonempty_text(attachment.get("filename")), "attachments.filename is required")
        problems.need(attachment.get("disposition", "attachment") in ("inline", "attachment"), "disposition")
    return problems


def check_ses(r: Recorded) -> Problems:
    problems = Problems()
    body = _json_body(r, problems)
    problems.need(is_mailbox(body.get("FromEmailAddress")), "FromEmailAddress")
    destination = body.get("Destination", {})
    problems.need(bool(destination.get("ToAddresses")), "Destination.ToAddresses")
    for kind in ("ToAddresses", "CcAddresses", "BccAddresses"):
        problems.need(all(is_address(a) for a in destination.get(kind, [])), f"Destination.{kind}")
    content = body.get("Content", {})
    one_kind = problems.need(
        len(content) == 1 and next(iter(content)) in ("Simple", "Raw", "Template"), "Content"
    )
    if (
        one_kind
        and "Raw" in content
        and problems.need(is_base64(content["Raw"].get("Data")), "Content.Raw.Data")
    ):
        mime = message_from_bytes(base64.b64decode(content["Raw"]["Data"]), policy=default_policy)
        problems.need(mime["From"] is not None and mime["Subject"] is not None, "raw message headers")
        problems.need(not mime.defects, f"raw message defects: {mime.defects}")
    for tag in body.get("EmailTags", []):
        problems.need(
            SES_TAG.fullmatch(tag.get("Name", "")) is not None, f"EmailTags.Name {tag.get('Name')!r}"
        )
        problems.need(
            SES_TAG.fullmatch(tag.get("Value", "")) is not None, f"EmailTags.Value {tag.get('Value')!r}"
        )
    return problems


def check_postmark(r: Recorded) -> Problems:
    problems = Problems()
    body = _json_body(r, problems)
    problems.need(r.headers.get("accept", "") == "application/json", "Accept: application/json is required")
    problems.need(is_mailbox(body.get("From")), "From")
    to = body.get("To")
    problems.need(isinstance(to, str) and all(is_mailbox(a.strip()) for a in to.split(",")), "To")
    for name in ("Cc", "Bcc"):
        if name in body:
            problems.need(all(is_mailbox(a.strip()) for a in str(body[name]).split(",")), name)
    problems.need(is_nonempty_text(body.get("Subject")), "Subject")
    problems.need(
        is_nonempty_text(body.get("HtmlBody")) or is_nonempty_text(body.get("TextBody")), "HtmlBody"
    )
    if "ReplyTo" in body:
        problems.need(is_mailbox(body["ReplyTo"]), "ReplyTo")
    for header in body.get("Headers", []):
        problems.need(
            is_nonempty_text(header.get("Name")) and isinstance(header.get("Value"), str), "Headers"
        )
    metadata = body.get("Metadata", {})
    problems.need(is_text_map(metadata) and len(metadata) <= 10, "Metadata: at most 10 string fields")
    problems.need(all(len(k) <= 20 and len(v) <= 80 for k, v in metadata.items()), "Metadata field too long")
    problems.need(is_nonempty_text(body.get("MessageStream", "outbound")), "MessageStream")
    for attachment in body.get("Attachments", []):
        problems.need(is_nonempty_text(attachment.get("Name")), "Attachments.Name")
        problems.need(is_base64(attachment.get("Content")), "Attachments.Content must be base64")
        problems.need(is_nonempty_text(attachment.get("ContentType")), "Attachments.ContentType")
    return problems


def _addresses(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def check_resend(r: Recorded) -> Problems:
    problems = Problems()
    body = _json_body(r, problems)
    problems.need(is_mailbox(body.get("from")), "from")
    to = _addresses(body.get("to"))
    problems.need(0 < len(to) <= 50 and all(is_mailbox(a) for a in to), "to")
    for name in ("cc", "bcc", "reply_to"):
        if name in body:
            problems.need(all(is_mailbox(a) for a in _addresses(body[name])), name)
    problems.need(is_nonempty_text(body.get("subject")), "subject")
    problems.need(is_nonempty_text(body.get("html")) or is_nonempty_text(body.get("text")), "html")
    if "headers" in body:
        problems.need(is_text_map(body["headers"]), "headers")
    for attachment in body.get("attachments", []):
        problems.need(is_nonempty_text(attachment.get("filename")), "attachments.filename")
        problems.need(is_base64(attachment.get("content")), "attachments.content must be base64")
    for tag in body.get("tags", []):
        for part in ("name", "value"):
            text = tag.get(part)
            problems.need(
                isinstance(text, str) and RESEND_TAG.fullmatch(text) is not None,
                f"tags.{part} {text!r}: only ASCII letters, numbers, underscores or dashes",
            )
    return problems


def check_mandrill(r: Recorded) -> Problems:
    problems = Problems()
    message = _json_body(r, problems).get("message")
    if not problems.need(isinstance(message, dict), "message"):
        return problems
    problems.need(is_nonempty_text(message.get("html")), "message.html")
    problems.need(is_nonempty_text(message.get("subject")), "message.subject")
    problems.need(is_address(message.get("from_email")), "message.from_email")
    if "from_name" in message:
        problems.need(isinstance(message["from_name"], str), "message.from_name")
    to = message.get("to")
    if problems.need(isinstance(to, list) and bool(to), "message.to"):
        for person in to:
            problems.need(is_address(person.get("email")), "message.to.email")
            problems.need(person.get("type", "to") in ("to", "cc", "bcc"), "message.to.type")
    for name in ("headers", "metadata"):
        if name in message:
            problems.need(is_text_map(message[name]), f"message.{name}")
    for attachment in message.get("attachments", []):
        problems.need(is_nonempty_text(attachment.get("type")), "attachments.type")
        problems.need(is_nonempty_text(attachment.get("name")), "attachments.name")
        problems.need(is_base64(attachment.get("content")), "attachments.content must be base64")
    return problems


def check_twilio(r: Recorded) -> tuple[int, str] | None:
    """Twilio's error code and message for the first problem, or None."""
    if r.method != "POST" or not r.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        return 20001, "Messages are created with a form-encoded POST"
    form = r.form()
    if "To" not in form:
        return 21604, "A 'To' phone number is required."
    if not E164.fullmatch(form["To"]):
        return 21211, f"Invalid 'To' Phone Number: {form['To']}"
    if not form.get("Body", "").strip():
        return 21602, "Message body is required."
    service = form.get("MessagingServiceSid")
    if service is None and "From" not in form:
        return 21603, "A 'From' phone number is required."
    if service is not None and not re.fullmatch(r"MG[0-9a-f]{32}", service):
        return 21703, f"The Messaging Service Sid {service} is invalid."
    if "StatusCallback" in form:
        url = urlsplit(form["StatusCallback"])
        if url.scheme not in ("http", "https") or not url.netloc:
            return 21609, "Invalid StatusCallback url"
    return None


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def jwt_problem(assertion: str, public_key: rsa.RSAPublicKey, issuer: str, audience: str) -> str | None:
    """Google's checks of a JWT-bearer assertion (RFC 7523) signed with a service account's key."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return "Invalid JWT: not three segments"
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, binascii.Error):
        return "Invalid JWT: segments are not base64url JSON"
    if header.get("alg") != "RS256":
        return "Invalid JWT: alg must be RS256"
    try:
        public_key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return "Invalid JWT Signature."
    now = time.time()
    if claims.get("iss") != issuer:
        return "Invalid JWT: unknown issuer"
    if claims.get("aud") != audience:
        return "Invalid JWT: aud must be the token endpoint"
    if not any(scope in str(claims.get("scope", "")).split() for scope in FCM_SCOPES):
        return "Invalid JWT: scope does not allow FCM"
    iat, exp = claims.get("iat"), claims.get("exp")
    if (
        not isinstance(iat, int)
        or not isinstance(exp, int)
        or exp - iat > 3600
        or iat > now + 300
        or exp <= now
    ):
        return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."
    return None


def check_fcm(r: Recorded) -> Problems:
    problems = Problems()
    body = _json_body(r, problems)
    problems.need(set(body) <= {"message", "validate_only"}, "unknown top-level field")
    message = body.get("message")
    if not problems.need(isinstance(message, dict), "message"):
        return problems
    problems.need(set(message) <= FCM_MESSAGE_KEYS, f"unknown message field in {sorted(message)}")
    targets = [k for k in ("token", "topic", "condition") if k in message]
    problems.need(targets == ["token"] and is_nonempty_text(message["token"]), "message.token")
    notification = message.get("notification", {})
    problems.need(
        is_text_map(notification) and set(notification) <= {"title", "body", "image"}, "notification"
    )
    data = message.get("data", {})
    problems.need(is_text_map(data), "message.data values must be strings")
    reserved = [
        k for k in data if k in ("from", "notification", "message_type") or k.startswith(("google", "gcm"))
    ]
    problems.need(not reserved, f"reserved data keys {reserved}")
    android = message.get("android", {})
    problems.need(isinstance(android, dict), "message.android")
    return problems
