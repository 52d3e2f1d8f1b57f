"""Which provider a workspace sends through (Dittofeed §6.11, §8.4): storing provider configurations
and defaults, listing them with their secrets masked, and resolving the provider for one send.

Resolution: the override's type, else the workspace's default; a type the workspace has not
configured, or a workspace without a default, is looked up again in the parent. Children are created
without defaults of their own (see engine.bootstrap), so out of the box a child sends through whatever
its parent chose, and a child that configures a provider of its own uses that one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput, NotFound
from engine.messaging.providers.registry import PROVIDERS_BY_CHANNEL, ProviderKind, masked_config
from engine.messaging.providers.test_provider import TEST
from engine.storage.models import Secret, Workspace
from engine.storage.resource_models import (
    DefaultEmailProvider,
    DefaultSmsProvider,
    EmailProvider,
    SmsProvider,
)

ProviderRow = EmailProvider | SmsProvider
_ROWS: dict[str, type[EmailProvider] | type[SmsProvider]] = {"Email": EmailProvider, "Sms": SmsProvider}


@dataclass(frozen=True)
class ResolvedProvider:
    kind: ProviderKind
    config: Mapping[str, Any]
    workspace_id: str  # whose configuration it is: the sender's, or its parent's


def provider_kind(channel: str, provider_type: str, *, field: str = "body/config/type") -> ProviderKind:
    """:raises InvalidInput: `provider_type` is not a provider of `channel`."""
    kinds = PROVIDERS_BY_CHANNEL.get(channel, {})
    if provider_type not in kinds:
        raise InvalidInput(f"{field} must be one of {', '.join(kinds)} for {channel}", field=field)
    return kinds[provider_type]


def _secret(session: Session, workspace_id: str, name: str) -> Secret | None:
    return session.scalar(select(Secret).where(Secret.workspace_id == workspace_id, Secret.name == name))


def _is_configured(kind: ProviderKind, config: Mapping[str, Any] | None) -> bool:
    if kind.type == TEST:
        return True
    if not config:
        return False
    return any(value for name, value in config.items() if name != "type")


def upsert_provider_config(
    session: Session, workspace_id: str, channel: str, config: Mapping[str, Any], *, set_default: bool
) -> ProviderKind:
    """Store `config` as the whole configuration of its provider type (Dittofeed replaces, not merges).

    :raises InvalidInput: unknown type, or a field the type does not take or that is not a string.
    """
    kind = provider_kind(channel, str(config.get("type")))
    for name, value in config.items():
        if name == "type":
            continue
        if name not in kind.fields:
            raise InvalidInput(
                f"body/config/{name} is not a {kind.type} setting", field=f"body/config/{name}"
            )
        if not isinstance(value, str):
            raise InvalidInput(f"body/config/{name} must be a string", field=f"body/config/{name}")
    secret = _secret(session, workspace_id, kind.secret_name)
    if secret is None:
        secret = Secret(workspace_id=workspace_id, name=kind.secret_name)
        session.add(secret)
    secret.config_value = {**config, "type": kind.type}
    session.flush()
    row_model = _ROWS.get(channel)
    if row_model is not None:
        row = _provider_row(session, row_model, workspace_id, kind.type)
        if row is None:
            row = row_model(workspace_id=workspace_id, type=kind.type, secret_id=secret.id)
            session.add(row)
            session.flush()
        row.secret_id = secret.id
        if set_default:
            set_default_provider(session, workspace_id, channel, provider_id=row.id)
    return kind


def _provider_row(
    session: Session, model: type[EmailProvider] | type[SmsProvider], workspace_id: str, provider_type: str
) -> ProviderRow | None:
    row = session.scalar(select(model).where(model.workspace_id == workspace_id, model.type == provider_type))
    return cast(ProviderRow | None, row)


def set_default_provider(
    session: Session,
    workspace_id: str,
    channel: str,
    *,
    provider_id: str | None = None,
    provider_type: str | None = None,
    from_address: str | None = None,
) -> None:
    """Make a provider of the workspace its default for `channel`, by id or by type.

    :raises InvalidInput: the type is unknown. :raises NotFound: no such provider in this workspace.
    """
    model = _ROWS[channel]
    if provider_type is not None:
        provider_kind(
            channel, provider_type, field="body/emailProvider" if channel == "Email" else "body/type"
        )
        row = _provider_row(session, model, workspace_id, provider_type)
    else:
        row = cast(
            ProviderRow | None,
            session.scalar(select(model).where(model.workspace_id == workspace_id, model.id == provider_id)),
        )
    if row is None:
        raise NotFound(f"{channel} provider not found")
    if channel == "Email":
        default = session.get(DefaultEmailProvider, workspace_id)
        if default is None:
            session.add(
                DefaultEmailProvider(
                    workspace_id=workspace_id, email_provider_id=row.id, from_address=from_address
                )
            )
        else:
            default.email_provider_id, default.from_address = row.id, from_address
    else:
        sms_default = session.get(DefaultSmsProvider, workspace_id)
        if sms_default is None:
            session.add(DefaultSmsProvider(workspace_id=workspace_id, sms_provider_id=row.id))
        else:
            sms_default.sms_provider_id = row.id
    session.flush()


def _default_type(session: Session, workspace_id: str, channel: str) -> str | None:
    if channel == "Email":
        return session.scalar(
            select(EmailProvider.type)
            .join(DefaultEmailProvider, DefaultEmailProvider.email_provider_id == EmailProvider.id)
            .where(DefaultEmailProvider.workspace_id == workspace_id)
        )
    if channel == "Sms":
        return session.scalar(
            select(SmsProvider.type)
            .join(DefaultSmsProvider, DefaultSmsProvider.sms_provider_id == SmsProvider.id)
            .where(DefaultSmsProvider.workspace_id == workspace_id)
        )
    # Mobile push has no default table upstream: the configured Firebase project, if any.
    return "Firebase"


def resolve_provider(
    session: Session, workspace: Workspace, channel: str, override: str | None = None
) -> ResolvedProvider | None:
    """The provider a send through `workspace` uses, or None when neither it nor its parent has one."""
    chain = [workspace.id] + ([workspace.parent_workspace_id] if workspace.parent_workspace_id else [])
    for workspace_id in chain:
        provider_type = override or _default_type(session, workspace_id, channel)
        if provider_type is None:
            continue
        kind = PROVIDERS_BY_CHANNEL[channel].get(provider_type)
        if kind is None:
            return None
        secret = _secret(session, workspace_id, kind.secret_name)
        config = secret.config_value if secret is not None else None
        if _is_configured(kind, config):
            return ResolvedProvider(kind, dict(config or {}), workspace_id)
    return None


def list_providers(session: Session, workspace_id: str, channel: str) -> list[dict[str, Any]]:
    """The workspace's configured providers of `channel`, secrets masked, marking the default."""
    default = _default_type(session, workspace_id, channel) if channel in _ROWS else None
    listed = []
    for kind in PROVIDERS_BY_CHANNEL[channel].values():
        secret = _secret(session, workspace_id, kind.secret_name)
        config = secret.config_value if secret is not None else None
        if kind.type != TEST and not _is_configured(kind, config):
            continue
        listed.append(
            {
                "type": kind.type,
                "config": masked_config(kind, config or {"type": kind.type}),
                "isDefault": kind.type == default,
            }
        )
    return listed
