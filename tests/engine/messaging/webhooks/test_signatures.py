"""Each provider's signature check accepts what the provider's own SDK signs: known answers published
with SendGrid's, Svix's and Twilio's SDKs, and fresh keys signed here independently; any change to
the signed bytes, key, timestamp or URL is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from engine.errors import InvalidInput
from engine.messaging.webhooks.form_signatures import form_signature, form_signature_matches, parse_form
from engine.messaging.webhooks.resend import svix_secret, svix_signature, svix_verifies
from engine.messaging.webhooks.sendgrid import load_webhook_key, signature_verifies

# sendgrid-python's event webhook test vector.
SENDGRID_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpi"
    "glSI8eNEc6wEA3F+g=="
)
SENDGRID_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
)
SENDGRID_TIMESTAMP = "1600112502"
SENDGRID_PAYLOAD = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
).encode()


def test_sendgrid_known_answer_verifies() -> None:
    key = load_webhook_key(SENDGRID_PUBLIC_KEY)
    assert key is not None
    assert signature_verifies(key, SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, SENDGRID_PAYLOAD)


def test_sendgrid_key_may_be_stored_with_pem_armour() -> None:
    armoured = f"-----BEGIN PUBLIC KEY-----\n{SENDGRID_PUBLIC_KEY}\n-----END PUBLIC KEY-----\n"
    key = load_webhook_key(armoured)
    assert key is not None
    assert signature_verifies(key, SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, SENDGRID_PAYLOAD)


def test_sendgrid_refuses_any_change() -> None:
    key = load_webhook_key(SENDGRID_PUBLIC_KEY)
    assert key is not None
    assert not signature_verifies(key, SENDGRID_SIGNATURE, "1600112503", SENDGRID_PAYLOAD)
    assert not signature_verifies(key, SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, SENDGRID_PAYLOAD.strip())
    assert not signature_verifies(key, "not base64!", SENDGRID_TIMESTAMP, SENDGRID_PAYLOAD)
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    assert not signature_verifies(other, SENDGRID_SIGNATURE, SENDGRID_TIMESTAMP, SENDGRID_PAYLOAD)


def test_sendgrid_fresh_key_signed_independently() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body, timestamp = b'[{"event":"open"}]', "1700000000"
    signature = base64.b64encode(private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    key = load_webhook_key(base64.b64encode(der).decode())
    assert key is not None and signature_verifies(key, signature, timestamp, body)


@pytest.mark.parametrize("value", [None, "", "not a key", base64.b64encode(b"garbage").decode()])
def test_sendgrid_unusable_keys_are_reported_as_none(value: object) -> None:
    assert load_webhook_key(value) is None


# Svix's documented example.
SVIX_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SVIX_ID, SVIX_TIMESTAMP, SVIX_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", b'{"test": 2432232314}'
SVIX_SIGNATURE = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SVIX_SENT_AT = datetime.fromtimestamp(1614265330, UTC)


def _svix_headers(signature: str, timestamp: str = SVIX_TIMESTAMP) -> dict[str, str]:
    return {"svix-id": SVIX_ID, "svix-timestamp": timestamp, "svix-signature": signature}


def test_svix_known_answer() -> None:
    secret = svix_secret(SVIX_SECRET)
    assert secret is not None
    assert svix_signature(secret, SVIX_ID, SVIX_TIMESTAMP, SVIX_BODY) == SVIX_SIGNATURE
    assert svix_verifies(secret, _svix_headers(f"v1,{SVIX_SIGNATURE}"), SVIX_BODY, SVIX_SENT_AT)


def test_svix_accepts_any_listed_v1_signature_during_rotation() -> None:
    secret = svix_secret(SVIX_SECRET)
    assert secret is not None
    listed = f"v1,bm90IGl0 v2,{SVIX_SIGNATURE} v1,{SVIX_SIGNATURE}"
    assert svix_verifies(secret, _svix_headers(listed), SVIX_BODY, SVIX_SENT_AT)
    # The right value under another version tag does not count.
    assert not svix_verifies(secret, _svix_headers(f"v2,{SVIX_SIGNATURE}"), SVIX_BODY, SVIX_SENT_AT)


@pytest.mark.parametrize("offset", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_svix_refuses_timestamps_more_than_five_minutes_away(offset: timedelta) -> None:
    secret = svix_secret(SVIX_SECRET)
    assert secret is not None
    headers = _svix_headers(f"v1,{SVIX_SIGNATURE}")
    assert svix_verifies(secret, headers, SVIX_BODY, SVIX_SENT_AT + offset / 2)
    assert not svix_verifies(secret, headers, SVIX_BODY, SVIX_SENT_AT - offset)


def test_svix_refuses_a_changed_body_or_timestamp() -> None:
    secret = svix_secret(SVIX_SECRET)
    assert secret is not None
    assert not svix_verifies(secret, _svix_headers(f"v1,{SVIX_SIGNATURE}"), b'{"test": 1}', SVIX_SENT_AT)
    headers = _svix_headers(f"v1,{SVIX_SIGNATURE}", timestamp="1614265331")
    assert not svix_verifies(secret, headers, SVIX_BODY, SVIX_SENT_AT)


def test_svix_secret_prefix_is_optional_and_garbage_is_unusable() -> None:
    assert svix_secret(SVIX_SECRET) == svix_secret(SVIX_SECRET.removeprefix("whsec_"))
    assert svix_secret("whsec_!!!") is None
    assert svix_secret(None) is None


# twilio-python's request validator vectors.
TWILIO_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_PARAMS = [
    ("CallSid", "CA1234567890ABCDE"),
    ("Digits", "1234"),
    ("From", "+14158675309"),
    ("To", "+18005551212"),
    ("Caller", "+14158675309"),
]


def test_twilio_known_answers() -> None:
    assert form_signature("12345", TWILIO_URL, TWILIO_PARAMS) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    repeated = [("Sid", "CA123"), ("SidAccount", "AC123"), ("Digits", "5678"), ("Digits", "1234")]
    assert form_signature("12345", TWILIO_URL, repeated) == "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_form_signature_refuses_another_url_key_or_parameter() -> None:
    good = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert form_signature_matches("12345", TWILIO_URL, TWILIO_PARAMS, good)
    assert not form_signature_matches("12346", TWILIO_URL, TWILIO_PARAMS, good)
    assert not form_signature_matches("12345", TWILIO_URL + "&x=1", TWILIO_PARAMS, good)
    assert not form_signature_matches("12345", TWILIO_URL, [*TWILIO_PARAMS[:-1], ("Caller", "+1")], good)


def test_mandrill_signature_signed_independently() -> None:
    key, url = secrets.token_urlsafe(16), "https://feedgate.example/api/public/webhooks/mailchimp"
    events = '[{"event":"open","msg":{"_id":"abc"}}]'
    expected = base64.b64encode(
        hmac.new(key.encode(), f"{url}mandrill_events{events}".encode(), hashlib.sha1).digest()
    ).decode()
    assert form_signature(key, url, [("mandrill_events", events)]) == expected


def test_form_bodies_are_decoded_before_signing() -> None:
    assert parse_form(b"mandrill_events=%5B%7B%22a%22%3A+1%7D%5D&b=") == [
        ("mandrill_events", '[{"a": 1}]'),
        ("b", ""),
    ]
    with pytest.raises(InvalidInput):
        parse_form(b"\xff\xfe")
