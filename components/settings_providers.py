"""The Providers settings page: the workspace's email and SMS providers (secrets masked as
engine.messaging.provider_settings masks them), configuring one, and choosing each channel's default.

A secret field is never rendered back: its input stays empty, and leaving it empty on save keeps the
stored value (the engine replaces a provider's whole configuration, so the page merges it first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.settings_console import PROVIDERS, Outcome, SettingsPage, render_section, section_routes
from engine.errors import InvalidInput
from engine.messaging import provider_settings
from engine.messaging.providers.registry import PROVIDERS_BY_CHANNEL, ProviderKind
from engine.storage.models import Secret
from engine.storage.resource_models import DefaultEmailProvider
from gateway.deps import in_transaction
from gateway.inputs import validate

Channel = Literal["Email", "Sms"]
CHANNELS: tuple[Channel, ...] = ("Email", "Sms")
CHANNEL_TITLES = {"Email": "Email", "Sms": "SMS"}


class ProviderChoice(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    channel: Channel
    type: str = Field(min_length=1)


class EmailDefaultForm(ProviderChoice):
    fromAddress: str = Field("", max_length=320)


@dataclass(frozen=True)
class FieldInput:
    name: str
    secret: bool
    # Non-secret fields show their stored value; secret ones only whether one is stored.
    value: str
    stored: bool


@dataclass(frozen=True)
class ConfigureForm:
    channel: Channel
    type: str
    fields: list[FieldInput]
    configured: bool


@dataclass(frozen=True)
class ChannelProviders:
    channel: Channel
    title: str
    listed: list[dict[str, Any]]
    types: list[str]
    from_address: str


async def show(request: Request, page: SettingsPage, outcome: Outcome) -> Response:
    picked = _picked(request, outcome)

    def read(session: Session) -> tuple[list[ChannelProviders], ConfigureForm | None]:
        channels = [_channel_providers(session, page.workspace_id, channel) for channel in CHANNELS]
        return channels, _configure_form(session, page.workspace_id, picked) if picked else None

    channels, configure = await in_transaction(request, read)
    return render_section(
        request, page, "settings/providers.html", outcome, channels=channels, configure=configure
    )


async def save(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    choice = validate(ProviderChoice, form)
    kind = provider_settings.provider_kind(choice.channel, choice.type, field="body/type")

    def write(session: Session) -> None:
        stored = _stored_config(session, page.workspace_id, kind)
        config: dict[str, str] = {"type": kind.type}
        for name in kind.fields:
            value = form.get(name, "")
            if value:
                config[name] = value
            elif name in kind.secret_fields and stored.get(name):
                # Left empty: the secret is kept, since the page never shows it to be re-typed.
                config[name] = stored[name]
        provider_settings.upsert_provider_config(
            session, page.workspace_id, choice.channel, config, set_default=form.get("setDefault") == "on"
        )

    await in_transaction(request, write)
    return Outcome(notice=f"{CHANNEL_TITLES[choice.channel]} provider {kind.type} saved.")


async def set_default(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    choice = validate(EmailDefaultForm, form)
    provider_settings.provider_kind(choice.channel, choice.type, field="body/type")

    from_address = choice.fromAddress.strip() if choice.channel == "Email" else ""

    def write(session: Session) -> None:
        listed = provider_settings.list_providers(session, page.workspace_id, choice.channel)
        if choice.type not in {provider["type"] for provider in listed}:
            # A provider row exists for every type; only a configured one can send.
            raise InvalidInput(f"body/type {choice.type} is not configured yet", field="body/type")
        provider_settings.set_default_provider(
            session,
            page.workspace_id,
            choice.channel,
            provider_type=choice.type,
            from_address=from_address or None,
        )

    await in_transaction(request, write)
    return Outcome(notice=f"{choice.type} is now the default {CHANNEL_TITLES[choice.channel]} provider.")


def _picked(request: Request, outcome: Outcome) -> tuple[Channel, str] | None:
    """The provider whose form to show: the one just posted with a mistake, else `?channel&type`."""
    source = outcome.form if outcome.error and "type" in outcome.form else request.query_params
    channel, provider_type = source.get("channel"), source.get("type")
    if channel not in CHANNELS or not provider_type:
        return None
    if provider_type not in PROVIDERS_BY_CHANNEL[channel]:
        return None
    return channel, provider_type


def _channel_providers(session: Session, workspace_id: str, channel: Channel) -> ChannelProviders:
    from_address = ""
    if channel == "Email":
        default = session.get(DefaultEmailProvider, workspace_id)
        from_address = (default.from_address or "") if default is not None else ""
    return ChannelProviders(
        channel=channel,
        title=CHANNEL_TITLES[channel],
        listed=provider_settings.list_providers(session, workspace_id, channel),
        types=list(PROVIDERS_BY_CHANNEL[channel]),
        from_address=from_address,
    )


def _configure_form(session: Session, workspace_id: str, picked: tuple[Channel, str]) -> ConfigureForm:
    channel, provider_type = picked
    kind = PROVIDERS_BY_CHANNEL[channel][provider_type]
    stored = _stored_config(session, workspace_id, kind)
    fields = [
        FieldInput(
            name=name,
            secret=name in kind.secret_fields,
            value="" if name in kind.secret_fields else str(stored.get(name, "")),
            stored=bool(stored.get(name)),
        )
        for name in kind.fields
    ]
    configured = any(value for name, value in stored.items() if name != "type")
    return ConfigureForm(channel, provider_type, fields, configured=configured)


def _stored_config(session: Session, workspace_id: str, kind: ProviderKind) -> dict[str, Any]:
    """The provider's stored configuration, secrets included: for merging, never for a page."""
    secret = session.scalar(
        select(Secret).where(Secret.workspace_id == workspace_id, Secret.name == kind.secret_name)
    )
    return dict(secret.config_value or {}) if secret is not None else {}


routes: list[Route] = section_routes(PROVIDERS, show, {"save": save, "default": set_default})
