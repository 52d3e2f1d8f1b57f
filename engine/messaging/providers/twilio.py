"""Twilio SMS through the Messages resource (POST /2010-04-01/Accounts/{sid}/Messages.json), sent from
the configured Messaging Service. The message tags reach Twilio's status webhook through the
`StatusCallback` URL the caller builds (Dittofeed §8.3); test sends have none."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.messaging.providers.base import (
    ProviderContext,
    ProviderDetails,
    ProviderMisconfigured,
    SmsMessage,
    require_fields,
)
from engine.messaging.providers.http_calls import call, json_object, raise_for_failure, text_or_none

TWILIO = "Twilio"
DEFAULT_BASE_URL = "https://api.twilio.com"


class TwilioSender:
    def __init__(
        self,
        account_sid: str,
        credentials: tuple[str, str],
        messaging_service_sid: str,
        context: ProviderContext,
    ) -> None:
        self._credentials = credentials
        self._messaging_service_sid = messaging_service_sid
        self._context = context
        base = context.endpoint(TWILIO, DEFAULT_BASE_URL)
        self._url = f"{base}/2010-04-01/Accounts/{account_sid}/Messages.json"

    def send_sms(self, message: SmsMessage) -> ProviderDetails:
        form = {"To": message.to, "Body": message.body, "MessagingServiceSid": self._messaging_service_sid}
        if message.status_callback_url:
            form["StatusCallback"] = message.status_callback_url
        response = call(self._context, TWILIO, "POST", self._url, data=form, auth=self._credentials)
        answer = json_object(response)
        if not response.is_success:
            message_text = text_or_none(answer.get("message")) or f"HTTP {response.status_code}"
            raise_for_failure(TWILIO, response, {"type": TWILIO, "message": message_text})
        sid = text_or_none(answer.get("sid"))
        if sid is None:
            raise_for_failure(TWILIO, response, {"type": TWILIO, "message": "Twilio answered without a sid"})
        return {"type": TWILIO, "sid": sid}


def build_twilio(config: Mapping[str, Any], context: ProviderContext) -> TwilioSender:
    account_sid, messaging_service_sid = require_fields(TWILIO, config, "accountSid", "messagingServiceSid")
    if not account_sid.isascii() or not account_sid.isalnum():  # it becomes a path segment
        raise ProviderMisconfigured(f"{TWILIO} configuration has an invalid accountSid")
    api_key_sid = text_or_none(config.get("apiKeySid"))
    api_key_secret = text_or_none(config.get("apiKeySecret"))
    auth_token = text_or_none(config.get("authToken"))
    # An API key pair is Twilio's recommended credential; the account's auth token is the fallback.
    if api_key_sid and api_key_secret:
        credentials = (api_key_sid, api_key_secret)
    elif auth_token:
        credentials = (account_sid, auth_token)
    else:
        raise ProviderMisconfigured(
            f"{TWILIO} configuration is missing authToken (or apiKeySid and apiKeySecret)"
        )
    return TwilioSender(account_sid, credentials, messaging_service_sid, context)
