"""Stand-ins for the email/SMS providers' webhook senders: each makes a fresh key, builds a status event
in the provider's documented payload shape carrying the send's tags, and signs it exactly as the
provider documents — computed here, independently of the code under test.

Every sender's `status` is one "delivered" event for the tagged user (SendGrid/Postmark/Resend/Mandrill
email, Twilio SMS); `expected_time` is the `event_time` DF stores for it (None: the time of receipt).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx2 as httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient

PUBLIC_MOUNT = "/api/public/webhooks"
LEGACY_MOUNT = "/api/webhooks"
EMAIL = "example@test.com"


@dataclass(frozen=True)
class Delivery:
    """One webhook request: path (with query), raw body and headers."""

    path: str
    body: bytes
    headers: dict[str, str]

    def post(self, client: TestClient) -> httpx.Response:
        return client.post(self.path, content=self.body, headers=self.headers)

    def altered(self, old: str, new: str) -> Delivery:
        """The same signature over a changed path or body."""
        return replace(
            self, path=self.path.replace(old, new), body=self.body.replace(old.encode(), new.encode())
        )


@dataclass(frozen=True)
class Key:
    """A provider secret's configuration (what the workspace stores) and what the sender signs with."""

    config: dict[str, Any]
    signing: Any


class Sender:
    provider: ClassVar[str]
    secret_name: ClassVar[str]
    df_event: ClassVar[str] = "DFEmailDelivered"
    expected_time: ClassVar[str | None]
    bad_signature_status: ClassVar[int] = 401
    missing_secret_status: ClassVar[int] = 400
    ineligible_status: ClassVar[int] = 401

    def __init__(self, public_base: str) -> None:
        self.public_base = public_base  # DASHBOARD_URL, which URL-signing providers sign over

    def new_key(self) -> Key:
        raise NotImplementedError

    def status(
        self, key: Key, tags: dict[str, str], *, mount: str = PUBLIC_MOUNT, event: str = ""
    ) -> Delivery:
        raise NotImplementedError

    def expected_properties(self, tags: dict[str, str]) -> dict[str, str]:
        return {"email": EMAIL, **tags}

    def forge(self, delivery: Delivery) -> Delivery:
        """A delivery the provider did not sign: the signed content changed after signing."""
        return delivery.altered("user-1", "user-2")


class SendgridSender(Sender):
    provider, secret_name = "sendgrid", "sendgrid"
    expected_time = "2017-12-15 00:59:29.000"
    bad_signature_status = missing_secret_status = ineligible_status = 400
    SMTP_ID = "<14c5d75ce93.dfd.64b469@ismtpd-555>"

    def new_key(self) -> Key:
        private = ec.generate_private_key(ec.SECP256R1())
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        config = {"type": "SendGrid", "apiKey": "SG.test", "webhookKey": base64.b64encode(der).decode()}
        return Key(config, private)

    def event(self, tags: dict[str, str], event: str = "delivered", **extra: Any) -> dict[str, Any]:
        return {
            "email": EMAIL,
            "timestamp": 1513299569,
            "smtp-id": self.SMTP_ID,
            "event": event,
            "category": "cat facts",
            "sg_event_id": secrets.token_urlsafe(16),
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "response": "250 OK",
            **tags,
            **extra,
        }

    def batch(self, key: Key, events: list[dict[str, Any]], *, mount: str = PUBLIC_MOUNT) -> Delivery:
        body = (json.dumps(events) + "\r\n").encode()
        timestamp = str(int(time.time()))
        signature = key.signing.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        headers = {
            "content-type": "application/json",
            "x-twilio-email-event-webhook-signature": base64.b64encode(signature).decode(),
            "x-twilio-email-event-webhook-timestamp": timestamp,
        }
        return Delivery(f"{mount}/sendgrid", body, headers)

    def status(
        self, key: Key, tags: dict[str, str], *, mount: str = PUBLIC_MOUNT, event: str = ""
    ) -> Delivery:
        return self.batch(key, [self.event(tags, event or "delivered")], mount=mount)


class ResendSender(Sender):
    provider, secret_name = "resend", "resend"
    expected_time = "2024-02-22 23:41:12.126"

    def new_key(self) -> Key:
        raw = secrets.token_bytes(24)
        return Key(
            {"type": "Resend", "apiKey": "re_test", "webhookKey": "whsec_" + base64.b64encode(raw).decode()},
            raw,
        )

    def status(
        self,
        key: Key,
        tags: dict[str, str],
        *,
        mount: str = PUBLIC_MOUNT,
        event: str = "",
        sent_at: int | None = None,
    ) -> Delivery:
        body = json.dumps(
            {
                "type": event or "email.delivered",
                "created_at": "2024-02-22T23:41:12.126Z",
                "data": {
                    "created_at": "2024-02-22T23:41:11.894719+00:00",
                    "email_id": "56761188-7520-42d8-8898-ff6fc54ce618",
                    "from": "Acme <onboarding@resend.dev>",
                    "to": [EMAIL],
                    "subject": "Sending this example",
                    "tags": {"category": "confirm_email", **tags},
                },
            }
        ).encode()
        svix_id, timestamp = f"msg_{secrets.token_hex(12)}", str(sent_at or int(time.time()))
        digest = hmac.new(key.signing, f"{svix_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
        headers = {
            "content-type": "application/json",
            "svix-id": svix_id,
            "svix-timestamp": timestamp,
            "svix-signature": f"v1,{base64.b64encode(digest).decode()}",
        }
        return Delivery(f"{mount}/resend", body, headers)


class PostmarkSender(Sender):
    provider, secret_name = "postmark", "postmark"
    expected_time = "2019-11-05 16:33:54.907"

    def new_key(self) -> Key:
        token = secrets.token_urlsafe(24)
        return Key({"type": "PostMark", "apiKey": "pm-test", "webhookKey": token}, token)

    def status(
        self, key: Key, tags: dict[str, str], *, mount: str = PUBLIC_MOUNT, event: str = ""
    ) -> Delivery:
        body = json.dumps(
            {
                "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
                "Recipient": EMAIL,
                "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
                "Details": "Test delivery webhook details",
                "Tag": "welcome-email",
                "ServerID": 23,
                "Metadata": {"a_key": "a_value", **tags},
                "RecordType": event or "Delivery",
                "MessageStream": "outbound",
            }
        ).encode()
        headers = {"content-type": "application/json", "x-postmark-secret": key.signing}
        return Delivery(f"{mount}/postmark", body, headers)

    def forge(self, delivery: Delivery) -> Delivery:
        # Postmark signs nothing: its shared header secret is all there is to get wrong.
        return replace(delivery, headers={**delivery.headers, "x-postmark-secret": secrets.token_urlsafe(24)})


class MandrillSender(Sender):
    provider, secret_name = "mailchimp", "mailchimp"
    expected_time = "2013-04-04 21:31:51.000"

    def new_key(self) -> Key:
        token = secrets.token_urlsafe(22)
        return Key({"type": "MailChimp", "apiKey": "md-test", "webhookKey": token}, token)

    def event(
        self, tags: dict[str, str], event: str = "delivered", message_id: str = "aaaa1111"
    ) -> dict[str, Any]:
        return {
            "event": event,
            "msg": {
                "ts": 1365109999,
                "subject": "This an example webhook message",
                "email": EMAIL,
                "sender": "example.sender@mandrillapp.com",
                "tags": ["webhook-example"],
                "state": "sent",
                "metadata": {"website": "example.com", **tags},
                "_id": message_id,
                "_version": "exampleaaaaaaaaaaaaaaa",
            },
            "_id": message_id,
            "ts": 1365111111,
        }

    def batch(self, key: Key, events: list[dict[str, Any]], *, mount: str = PUBLIC_MOUNT) -> Delivery:
        path = f"{mount}/mailchimp"
        events_json = json.dumps(events)
        signed = f"{self.public_base}{path}mandrill_events{events_json}"
        digest = hmac.new(key.signing.encode(), signed.encode(), hashlib.sha1).digest()
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "x-mandrill-signature": base64.b64encode(digest).decode(),
        }
        return Delivery(path, urlencode({"mandrill_events": events_json}).encode(), headers)

    def status(
        self, key: Key, tags: dict[str, str], *, mount: str = PUBLIC_MOUNT, event: str = ""
    ) -> Delivery:
        return self.batch(key, [self.event(tags, event or "delivered")], mount=mount)


class TwilioSender(Sender):
    provider, secret_name = "twilio", "twilio-key"
    df_event = "DFSmsDelivered"
    expected_time = None
    missing_secret_status = 503

    def new_key(self) -> Key:
        token = secrets.token_hex(16)
        config = {
            "type": "Twilio",
            "accountSid": "AC" + secrets.token_hex(16),
            "messagingServiceSid": "MG" + secrets.token_hex(16),
            "authToken": token,
        }
        return Key(config, token)

    def status(
        self, key: Key, tags: dict[str, str], *, mount: str = PUBLIC_MOUNT, event: str = ""
    ) -> Delivery:
        # The statusCallback Dittofeed builds: the tags in the query string.
        path = f"{mount}/twilio?" + urlencode({"subscriptionGroupId": "", **tags})
        params = {
            "AccountSid": "AC" + "0" * 32,
            "ApiVersion": "2010-04-01",
            "Body": "Your code is 1234",
            "From": "+15017122661",
            "MessageSid": "SM" + "1" * 32,
            "MessageStatus": event or "delivered",
            "MessagingServiceSid": "MG" + "2" * 32,
            "SmsSid": "SM" + "1" * 32,
            "SmsStatus": event or "delivered",
            "To": "+15558675310",
        }
        signed = self.public_base + path + "".join(name + params[name] for name in sorted(params))
        digest = hmac.new(key.signing.encode(), signed.encode(), hashlib.sha1).digest()
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "x-twilio-signature": base64.b64encode(digest).decode(),
        }
        return Delivery(path, urlencode(params).encode(), headers)

    def expected_properties(self, tags: dict[str, str]) -> dict[str, str]:
        return {"body": "Your code is 1234", **tags}


SENDERS: list[type[Sender]] = [SendgridSender, ResendSender, PostmarkSender, MandrillSender, TwilioSender]
