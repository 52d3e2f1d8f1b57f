"""`settings/email-providers`, `settings/sms-providers` (Dittofeed §6.11) and their defaults: store a
provider's configuration, choose the default, and list what is configured with secrets masked
(a read Dittofeed's controller lacks; its dashboard reads the database directly).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.errors import InvalidInput
from engine.messaging import provider_settings
from gateway.admin_auth import authorize_target
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_json, read_query, validate


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str


class UpsertProviderBody(_Body):
    setDefault: bool = False
    config: dict[str, Any]


class EmailDefaultBody(_Body):
    emailProviderId: str | None = None
    emailProvider: str | None = None
    fromAddress: str | None = None


class SmsDefaultBody(_Body):
    smsProviderId: str | None = None
    smsProvider: str | None = None


def provider_settings_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The provider-settings handlers under `prefix`, each request authorised by `authorize`."""

    def upsert_for(channel: str) -> Any:
        async def upsert(request: Request) -> Response:
            raw = await read_json(request)
            body = validate(UpsertProviderBody, raw)
            if not isinstance(body.config.get("type"), str):
                raise InvalidInput("body/config/type must be a string", field="body/config/type")

            def write(session: Session) -> None:
                workspace = authorize(request, session, raw)
                provider_settings.upsert_provider_config(
                    session, workspace.id, channel, body.config, set_default=body.setDefault
                )

            await in_transaction(request, write)
            return Response(status_code=201)

        return upsert

    def list_for(channel: str, key: str) -> Any:
        async def list_all(request: Request) -> JSONResponse:
            read_query(request, _Body)

            def read(session: Session) -> dict[str, Any]:
                workspace = authorize(request, session, None)
                return {key: provider_settings.list_providers(session, workspace.id, channel)}

            return JSONResponse(await in_transaction(request, read))

        return list_all

    async def email_default(request: Request) -> Response:
        raw = await read_json(request)
        body = validate(EmailDefaultBody, raw)
        if body.emailProviderId is None and body.emailProvider is None:
            raise InvalidInput(
                "body/emailProviderId or body/emailProvider is required", field="body/emailProvider"
            )

        def write(session: Session) -> None:
            workspace = authorize(request, session, raw)
            provider_settings.set_default_provider(
                session,
                workspace.id,
                "Email",
                provider_id=body.emailProviderId,
                provider_type=body.emailProvider if body.emailProviderId is None else None,
                from_address=body.fromAddress,
            )

        await in_transaction(request, write)
        return Response(status_code=201)

    async def sms_default(request: Request) -> Response:
        raw = await read_json(request)
        body = validate(SmsDefaultBody, raw)
        if body.smsProviderId is None and body.smsProvider is None:
            raise InvalidInput("body/smsProviderId is required", field="body/smsProviderId")

        def write(session: Session) -> None:
            workspace = authorize(request, session, raw)
            provider_settings.set_default_provider(
                session,
                workspace.id,
                "Sms",
                provider_id=body.smsProviderId,
                provider_type=body.smsProvider if body.smsProviderId is None else None,
            )

        await in_transaction(request, write)
        return Response(status_code=201)

    email, sms, push = (
        f"{prefix}/email-providers",
        f"{prefix}/sms-providers",
        f"{prefix}/mobile-push-providers",
    )
    return [
        Route(email, list_for("Email", "emailProviders"), methods=["GET"], name=f"{name}:email_list"),
        Route(email, upsert_for("Email"), methods=["PUT"], name=f"{name}:email_upsert"),
        Route(f"{email}/default", email_default, methods=["PUT"], name=f"{name}:email_default"),
        Route(sms, list_for("Sms", "smsProviders"), methods=["GET"], name=f"{name}:sms_list"),
        Route(sms, upsert_for("Sms"), methods=["PUT"], name=f"{name}:sms_upsert"),
        Route(f"{sms}/default", sms_default, methods=["PUT"], name=f"{name}:sms_default"),
        Route(push, list_for("MobilePush", "mobilePushProviders"), methods=["GET"], name=f"{name}:push_list"),
        Route(push, upsert_for("MobilePush"), methods=["PUT"], name=f"{name}:push_upsert"),
    ]


routes = provider_settings_routes("/api/admin/settings", authorize_target, name="admin:settings")
