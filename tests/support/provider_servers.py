"""Local stand-ins for the message providers' HTTP APIs, in one threaded server.

Each route checks the wire format its provider documents (method, path, credentials, content type,
required fields and their types) and answers as the real service does: the documented success body,
or the documented error body and status. Every request is recorded for the tests to read back.

`answer_next(route, status)` makes the next valid request to a route fail with that provider's
documented error body for the status (or a given body), to exercise the rejection paths.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import secrets
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.net import ThreadedServer
from tests.support.provider_checks import (
    Recorded,
    check_fcm,
    check_mandrill,
    check_postmark,
    check_resend,
    check_sendgrid,
    check_ses,
    check_twilio,
    jwt_problem,
)
from tests.support.sigv4 import sigv4_problem

SENDGRID_API_KEY = "SG.feedgate-test.sendgrid-api-key-0001"
SES_ACCESS_KEY_ID = "AKIAFEEDGATETEST0001"
SES_SECRET_ACCESS_KEY = "feedgate/ses-secret-access-key+0001"
SES_REGION = "eu-west-1"
POSTMARK_SERVER_TOKEN = "feedgate-postmark-server-token-0001"
RESEND_API_KEY = "re_feedgate_resend_api_key_0001"
MANDRILL_API_KEY = "md-feedgate-mandrill-api-key-0001"
TWILIO_ACCOUNT_SID = "AC" + "0a1b" * 8
TWILIO_AUTH_TOKEN = "feedgate-twilio-auth-token-0001"
TWILIO_API_KEY_SID = "SK" + "2c3d" * 8
TWILIO_API_KEY_SECRET = "feedgate-twilio-api-key-secret-0001"
TWILIO_MESSAGING_SERVICE_SID = "MG" + "4e5f" * 8
FCM_PROJECT_ID = "feedgate-test"
FCM_CLIENT_EMAIL = "push-sender@feedgate-test.iam.gserviceaccount.com"

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None  # dict/list: JSON; str: text; None: empty
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        headers = dict(self.headers)
        if self.body is None:
            return Response(status_code=self.status, headers=headers)
        if isinstance(self.body, str):
            headers.setdefault("content-type", "text/plain; charset=utf-8")
            return Response(self.body, status_code=self.status, headers=headers)
        headers.setdefault("content-type", "application/json")
        return Response(json.dumps(self.body), status_code=self.status, headers=headers)


def _fcm_error(code: int, status: str, message: str, fcm_code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if fcm_code:
        error["details"] = [
            {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}
        ]
    return {"error": error}


def _twilio_error(code: int, status: int, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _ses_error(status: int, code: str, message: str) -> Answer:
    return Answer(
        status, {"message": message}, {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/"}
    )


def _sendgrid_errors(*messages: str) -> dict[str, Any]:
    return {"errors": [{"message": m, "field": None, "help": None} for m in messages]}


# The documented error answers, by route and status.
DOCUMENTED_ERRORS: dict[str, dict[int, Answer]] = {
    "sendgrid": {
        400: Answer(400, _sendgrid_errors("The to email does not contain a valid address.")),
        401: Answer(
            401, _sendgrid_errors("The provided authorization grant is invalid, expired, or revoked")
        ),
        413: Answer(413, _sendgrid_errors("Payload too large")),
        429: Answer(429, _sendgrid_errors("too many requests")),
        500: Answer(500, _sendgrid_errors("An internal server error occurred.")),
    },
    "ses": {
        400: _ses_error(400, "MessageRejected", "Email address is not verified."),
        429: _ses_error(429, "TooManyRequestsException", "Maximum sending rate exceeded."),
        500: _ses_error(
            500, "InternalFailure", "The request processing has failed because of an unknown error."
        ),
    },
    "postmark": {
        401: Answer(401, {"ErrorCode": 10, "Message": "Request does not contain a valid Server token."}),
        422: Answer(
            422, {"ErrorCode": 406, "Message": "You tried to send to recipient(s) marked as inactive."}
        ),
        429: Answer(429, {"ErrorCode": 429, "Message": "Rate limit exceeded."}),
        500: Answer(500, {"ErrorCode": 500, "Message": "Internal Server Error"}),
    },
    "resend": {
        401: Answer(401, {"statusCode": 401, "name": "missing_api_key", "message": "Missing API key"}),
        403: Answer(403, {"statusCode": 403, "name": "invalid_api_key", "message": "API key is invalid"}),
        422: Answer(422, {"statusCode": 422, "name": "validation_error", "message": "Invalid `to` field."}),
        429: Answer(429, {"statusCode": 429, "name": "rate_limit_exceeded", "message": "Too many requests."}),
        500: Answer(
            500, {"statusCode": 500, "name": "application_error", "message": "An unexpected error occurred."}
        ),
    },
    "mandrill": {
        500: Answer(
            500, {"status": "error", "code": -1, "name": "GeneralError", "message": "An unexpected error"}
        ),
        503: Answer(503, "<html><body>Service Unavailable</body></html>"),
    },
    "twilio": {
        400: Answer(400, _twilio_error(21211, 400, "Invalid 'To' Phone Number: +1555")),
        401: Answer(401, _twilio_error(20003, 401, "Authenticate")),
        429: Answer(429, _twilio_error(20429, 429, "Too Many Requests")),
        500: Answer(500, _twilio_error(20500, 500, "Internal Server Error")),
    },
    "fcm": {
        400: Answer(
            400,
            _fcm_error(400, "INVALID_ARGUMENT", "The registration token is not valid", "INVALID_ARGUMENT"),
        ),
        404: Answer(404, _fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")),
        429: Answer(429, _fcm_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", "QUOTA_EXCEEDED")),
        500: Answer(500, _fcm_error(500, "INTERNAL", "Internal error encountered.", "INTERNAL")),
        503: Answer(
            503, _fcm_error(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")
        ),
    },
    "google-token": {
        400: Answer(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
        503: Answer(503, {"error": "temporarily_unavailable"}),
    },
    "webhook": {},
}


def _service_account() -> tuple[dict[str, str], rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "project_id": FCM_PROJECT_ID,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": FCM_CLIENT_EMAIL,
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return account, key.public_key()


class ProviderServers:
    """The stand-in server. Start once per session; `reset()` between tests."""

    def __init__(self) -> None:
        self.service_account, self._public_key = _service_account()
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._scripted: dict[str, deque[Answer]] = {}
        self._issued_tokens: set[str] = set()
        self.server = ThreadedServer(self._app())

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def start(self) -> ProviderServers:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._scripted.clear()

    def answer_next(
        self, route: str, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        """The next valid request to `route` gets this answer; without a body, the documented error."""
        answer = Answer(status, body, headers or {}) if body is not None else DOCUMENTED_ERRORS[route][status]
        with self._lock:
            self._scripted.setdefault(route, deque()).append(answer)

    def revoke_tokens(self) -> None:
        """Every access token issued so far stops working (FCM answers 401)."""
        with self._lock:
            self._issued_tokens.clear()

    def sent(self, route: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self._requests if r.route == route]

    def last(self, route: str) -> Recorded:
        sent = self.sent(route)
        assert sent, f"no request reached {route}"
        return sent[-1]

    # -- plumbing --------------------------------------------------------------------------------

    def _app(self) -> Starlette:
        def route(path: str, name: str, handle: Any) -> Route:
            async def endpoint(request: Request) -> Response:
                if name == "slow":
                    await asyncio.sleep(1.0)
                recorded = Recorded(
                    route=name,
                    method=request.method,
                    path=request.url.path,
                    raw_path=request.scope.get("raw_path", b"").decode() or request.url.path,
                    query=request.url.query,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=await request.body(),
                )
                with self._lock:
                    self._requests.append(recorded)
                return self._answer(name, handle(recorded)).response()

            return Route(path, endpoint, methods=ALL_METHODS)

        return Starlette(
            routes=[
                route("/v3/mail/send", "sendgrid", self._sendgrid),
                route("/v2/email/outbound-emails", "ses", self._ses),
                route("/email", "postmark", self._postmark),
                route("/emails", "resend", self._resend),
                route("/api/1.0/messages/send.json", "mandrill", self._mandrill),
                route("/2010-04-01/Accounts/{account}/Messages.json", "twilio", self._twilio),
                route("/token", "google-token", self._token),
                route("/v1/projects/{project}/messages:send", "fcm", self._fcm),
                route("/slow", "slow", lambda r: Answer(200, {"late": True})),
                route("/hooks/{rest:path}", "webhook", lambda r: Answer(200, {"received": True})),
            ]
        )

    def _answer(self, name: str, answer: Answer) -> Answer:
        """A valid request takes the scripted answer, if any; an invalid one keeps its refusal."""
        if answer.status >= 300:
            return answer
        with self._lock:
            scripted = self._scripted.get(name)
            return scripted.popleft() if scripted else answer

    # -- providers -------------------------------------------------------------------------------

    def _sendgrid(self, r: Recorded) -> Answer:
        if r.headers.get("authorization") != f"Bearer {SENDGRID_API_KEY}":
            return DOCUMENTED_ERRORS["sendgrid"][401]
        problems = check_sendgrid(r)
        if problems:
            return Answer(400, _sendgrid_errors(*problems))
        return Answer(202, None, {"X-Message-Id": secrets.token_urlsafe(16)})

    def _ses(self, r: Recorded) -> Answer:
        problem = sigv4_problem(
            method=r.method,
            raw_path=r.raw_path,
            query=r.query,
            headers=r.headers,
            body=r.body,
            access_key_id=SES_ACCESS_KEY_ID,
            secret_access_key=SES_SECRET_ACCESS_KEY,
            region=SES_REGION,
            service="ses",
        )
        if problem:
            return _ses_error(403, "SignatureDoesNotMatch", problem)
        problems = check_ses(r)
        if problems:
            return _ses_error(400, "BadRequestException", "; ".join(problems))
        return Answer(200, {"MessageId": f"0102{secrets.token_hex(8)}-{uuid.uuid4()}-000000"})

    def _postmark(self, r: Recorded) -> Answer:
        if r.headers.get("x-postmark-server-token") != POSTMARK_SERVER_TOKEN:
            return DOCUMENTED_ERRORS["postmark"][401]
        problems = check_postmark(r)
        if problems:
            return Answer(422, {"ErrorCode": 300, "Message": "Invalid email request: " + "; ".join(problems)})
        body = r.json()
        return Answer(
            200,
            {
                "To": body["To"],
                "SubmittedAt": datetime.now(UTC).isoformat(),
                "MessageID": str(uuid.uuid4()),
                "ErrorCode": 0,
                "Message": "OK",
            },
        )

    def _resend(self, r: Recorded) -> Answer:
        authorization = r.headers.get("authorization", "")
        if not authorization.startswith("Bearer "):
            return DOCUMENTED_ERRORS["resend"][401]
        if authorization != f"Bearer {RESEND_API_KEY}":
            return DOCUMENTED_ERRORS["resend"][403]
        problems = check_resend(r)
        if problems:
            return Answer(
                422, {"statusCode": 422, "name": "validation_error", "message": "; ".join(problems)}
            )
        return Answer(200, {"id": str(uuid.uuid4())})

    def _mandrill(self, r: Recorded) -> Answer:
        body = r.json_or_none()
        if not isinstance(body, dict) or body.get("key") != MANDRILL_API_KEY:
            return Answer(
                500, {"status": "error", "code": -1, "name": "Invalid_Key", "message": "Invalid API key"}
            )
        problems = check_mandrill(r)
        if problems:
            return Answer(
                500,
                {"status": "error", "code": -2, "name": "ValidationError", "message": "; ".join(problems)},
            )
        return Answer(
            200,
            [
                {"email": to["email"], "status": "sent", "_id": secrets.token_hex(16), "reject_reason": None}
                for to in body["message"]["to"]
            ],
        )

    def _twilio(self, r: Recorded) -> Answer:
        account = r.path.split("/")[3]
        credentials = _basic_credentials(r.headers.get("authorization", ""))
        valid = {(TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN), (TWILIO_API_KEY_SID, TWILIO_API_KEY_SECRET)}
        if credentials not in valid:
            return DOCUMENTED_ERRORS["twilio"][401]
        if account != TWILIO_ACCOUNT_SID:
            return Answer(404, _twilio_error(20404, 404, f"The requested resource {r.path} was not found"))
        problem = check_twilio(r)
        if problem:
            code, message = problem
            return Answer(400, _twilio_error(code, 400, message))
        form = r.form()
        return Answer(
            201,
            {
                "sid": "SM" + secrets.token_hex(16),
                "account_sid": account,
                "to": form["To"],
                "body": form["Body"],
                "status": "accepted",
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "date_created": datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000"),
                "num_segments": "0",
                "uri": f"/2010-04-01/Accounts/{account}/Messages.json",
            },
        )

    def _token(self, r: Recorded) -> Answer:
        form = r.form()
        if r.method != "POST" or form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Answer(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"})
        problem = jwt_problem(form.get("assertion", ""), self._public_key, FCM_CLIENT_EMAIL, self.token_url)
        if problem:
            return Answer(400, {"error": "invalid_grant", "error_description": problem})
        token = "ya29." + secrets.token_urlsafe(32)
        with self._lock:
            self._issued_tokens.add(token)
        return Answer(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})

    def _fcm(self, r: Recorded) -> Answer:
        token = r.headers.get("authorization", "").removeprefix("Bearer ")
        with self._lock:
            known = token in self._issued_tokens
        if not known:
            return Answer(
                401, _fcm_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
            )
        project = r.path.split("/")[3]
        if project != FCM_PROJECT_ID:
            return Answer(
                403, _fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")
            )
        problems = check_fcm(r)
        if problems:
            return Answer(400, _fcm_error(400, "INVALID_ARGUMENT", "; ".join(problems), "INVALID_ARGUMENT"))
        return Answer(200, {"name": f"projects/{project}/messages/{secrets.randbelow(10**16)}"})


def _basic_credentials(authorization: str) -> tuple[str, str] | None:
    scheme, _, encoded = authorization.partition(" ")
    if scheme != "Basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password
