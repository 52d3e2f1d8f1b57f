"""Which workspaces a provider webhook may write to.

A webhook names its workspace in data the sender controls (custom args, tags, metadata, the query
string), so a workspace is accepted only when the request verifies under the key that workspace
resolves to: its own provider secret's, else (when its own holds no key) its parent's — a parent may
hold one provider account for all its children, as provider resolution at send does (§8.4). A body
tagged with workspace B therefore cannot be verified with workspace A's secret. Workspaces that
cannot receive events (not Active, or a Parent) are refused after the signature check, so an unsigned
caller learns nothing about them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.credentials import WorkspaceIneligible
from engine.errors import EngineError, InvalidInput, NotAuthenticated
from engine.storage.models import Secret, Workspace, WorkspaceStatus, WorkspaceType

# Secret names of §8.4; each secret's config_value is the provider's configuration dict.
SENDGRID_SECRET = "sendgrid"  # noqa: S105 - a name
AMAZON_SES_SECRET = "amazonses"  # noqa: S105 - a name
RESEND_SECRET = "resend"  # noqa: S105 - a name
POSTMARK_SECRET = "postmark"  # noqa: S105 - a name
MAILCHIMP_SECRET = "mailchimp"  # noqa: S105 - a name
TWILIO_SECRET = "twilio-key"  # noqa: S105 - a name

# How a provider's configuration judges a request: None when the configuration holds no usable key,
# else whether the request verifies under it.
Verifier = Callable[[Mapping[str, Any]], bool | None]


class MissingWebhookSecret(InvalidInput):
    """No provider secret with a webhook key, in the workspace or its parent."""

    def __init__(self) -> None:
        super().__init__("Missing secret.", field="secret")


class InvalidWebhookSignature(NotAuthenticated):
    """The request does not verify under the workspace's webhook key."""

    def __init__(self) -> None:
        super().__init__("Invalid signature.")


@dataclass(frozen=True)
class Refusals:
    """The errors one provider answers with (their statuses differ per provider, §5.2)."""

    missing_secret: Callable[[], EngineError] = MissingWebhookSecret
    invalid_signature: Callable[[], EngineError] = InvalidWebhookSignature
    ineligible: Callable[[], EngineError] = lambda: WorkspaceIneligible("WorkspaceIneligible")


def provider_configs(session: Session, workspace_id: str, name: str) -> list[dict[str, Any]]:
    """The configurations of the provider secret `name`: the workspace's own first, then its parent's.

    Every workspace is bootstrapped with a keyless `{"type": ...}` row per provider, so callers take the
    first configuration that holds the key they need, not merely the first row.
    """
    parent_id = select(Workspace.parent_workspace_id).where(Workspace.id == workspace_id).scalar_subquery()
    rows = session.execute(
        select(Secret.workspace_id, Secret.config_value).where(
            Secret.name == name, or_(Secret.workspace_id == workspace_id, Secret.workspace_id == parent_id)
        )
    ).all()
    ordered = sorted(rows, key=lambda row: row.workspace_id != workspace_id)
    return [row.config_value for row in ordered if isinstance(row.config_value, dict)]


def find_provider_config(
    session: Session, workspace_id: str, name: str, *, having: str
) -> dict[str, Any] | None:
    """The first of `provider_configs` whose field `having` is set (own, else the parent's), or None."""
    for config in provider_configs(session, workspace_id, name):
        if config.get(having):
            return config
    return None


def can_receive_events(session: Session, workspace_id: str) -> bool:
    """True for an Active workspace that is not a Parent."""
    row = session.execute(
        select(Workspace.status, Workspace.type).where(Workspace.id == workspace_id)
    ).first()
    return row is not None and row.status == WorkspaceStatus.ACTIVE and row.type != WorkspaceType.PARENT


def parse_workspace_id(value: object) -> str | None:
    """`value` when it is a workspace id (a UUID string), else None."""
    if not isinstance(value, str):
        return None
    try:
        uuid.UUID(value)
    except ValueError:
        return None
    return value


def authorize_workspaces(
    session: Session,
    workspace_ids: Iterable[str],
    secret_name: str,
    verify: Verifier,
    refusals: Refusals = Refusals(),
) -> list[str]:
    """The workspaces among `workspace_ids` whose key verifies the request and that can receive events.

    :raises: when none is accepted, `refusals`' error for the furthest any workspace got: no secret at
        all, no signature verified, or verified but ineligible.
    """
    had_secret = verified = False
    accepted: list[str] = []
    for workspace_id in dict.fromkeys(workspace_ids):
        # The first configuration holding a usable key decides: the workspace's own, else its parent's.
        outcomes = (verify(config) for config in provider_configs(session, workspace_id, secret_name))
        outcome = next((result for result in outcomes if result is not None), None)
        if outcome is None:
            continue
        had_secret = True
        if not outcome:
            continue
        verified = True
        if can_receive_events(session, workspace_id):
            accepted.append(workspace_id)
    if accepted:
        return accepted
    if verified:
        raise refusals.ineligible()
    if had_secret:
        raise refusals.invalid_signature()
    raise refusals.missing_secret()
