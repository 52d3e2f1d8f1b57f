"""Write keys and admin API keys: creation, Dittofeed's wire formats, and verification.

Write keys keep Dittofeed's header exactly (`Basic base64(secretId:secret)`, any scheme word) but,
unlike upstream, must reference a real write-key row and are compared in constant time. Admin API keys
(64 hex) are stored only as SHA-256 digests: the plaintext exists once, in the creation result. Neither
is ever logged. A credential of a workspace that is not Active stops working at once, because every
check reads the workspace's current status.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.errors import Conflict, NotAuthenticated
from engine.storage.models import AdminApiKey, Secret, Workspace, WorkspaceStatus, WorkspaceType, WriteKey

DEFAULT_WRITE_KEY_NAME = "default-write-key"


class InvalidWriteKey(NotAuthenticated):
    """The authorization header names no write key, or the wrong secret."""


class WorkspaceIneligible(NotAuthenticated):
    """The write key's workspace cannot receive events (not Active, or a Parent)."""


@dataclass(frozen=True)
class IssuedAdminKey:
    """An admin API key as created: `api_key` is the only copy of the plaintext."""

    id: str
    workspace_id: str
    name: str
    created_at_ms: int
    api_key: str


def write_key_header(secret_id: str, value: str) -> str:
    """Return the header value clients send: ``Basic base64(secretId:value)``."""
    return "Basic " + base64.b64encode(f"{secret_id}:{value}".encode()).decode()


def get_or_create_write_key(session: Session, workspace_id: str, name: str) -> tuple[Secret, WriteKey]:
    """Return the write key called `name`, creating it (16 hex chars, like Dittofeed) if absent."""
    secret = session.scalar(select(Secret).where(Secret.workspace_id == workspace_id, Secret.name == name))
    if secret is None:
        secret = Secret(workspace_id=workspace_id, name=name, value=secrets.token_hex(8))
        session.add(secret)
        session.flush()
    write_key = session.scalar(select(WriteKey).where(WriteKey.secret_id == secret.id))
    if write_key is None:
        write_key = WriteKey(workspace_id=workspace_id, secret_id=secret.id)
        session.add(write_key)
        session.flush()
    return secret, write_key


def default_write_key_header(session: Session, workspace_id: str) -> str | None:
    """The header value of the workspace's `default-write-key`, or None if it was deleted."""
    secret = session.scalar(
        select(Secret)
        .join(WriteKey, WriteKey.secret_id == Secret.id)
        .where(Secret.workspace_id == workspace_id, Secret.name == DEFAULT_WRITE_KEY_NAME)
    )
    if secret is None or secret.value is None:
        return None
    return write_key_header(secret.id, secret.value)


def authenticate_write_key(session: Session, authorization: str) -> str:
    """Return the workspace id a write-key header opens.

    :raises InvalidWriteKey: malformed header, unknown key or wrong secret.
    :raises WorkspaceIneligible: the workspace is not Active, or is a Parent.
    """
    parts = authorization.strip().split(" ")
    token = parts[1] if len(parts) == 2 else parts[0]
    try:
        secret_id, _, value = base64.b64decode(token, validate=True).decode().partition(":")
        uuid.UUID(secret_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidWriteKey("InvalidWriteKey") from None
    row = session.execute(
        select(Secret.value, Secret.workspace_id, Workspace.status, Workspace.type)
        .join(WriteKey, WriteKey.secret_id == Secret.id)
        .join(Workspace, Workspace.id == Secret.workspace_id)
        .where(Secret.id == secret_id)
    ).one_or_none()
    # Compare even when the key is unknown, so timing does not tell the two apart.
    stored = row.value if row is not None and row.value is not None else secrets.token_hex(8)
    if not hmac.compare_digest(stored.encode(), value.encode()) or row is None:
        raise InvalidWriteKey("InvalidWriteKey")
    if row.status != WorkspaceStatus.ACTIVE or row.type == WorkspaceType.PARENT:
        raise WorkspaceIneligible("WorkspaceIneligible")
    workspace_id: str = row.workspace_id
    return workspace_id


def hash_admin_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def create_admin_api_key(session: Session, workspace_id: str, name: str) -> IssuedAdminKey:
    """Create an admin API key; the result carries the only copy of its plaintext.

    :raises Conflict: the workspace already has a key with that name.
    """
    api_key = secrets.token_hex(32)
    row = AdminApiKey(workspace_id=workspace_id, name=name, key_hash=hash_admin_key(api_key))
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        raise Conflict(f"an admin API key named {name!r} already exists") from None
    return IssuedAdminKey(row.id, workspace_id, name, int(row.created_at.timestamp() * 1000), api_key)


def find_admin_key(session: Session, api_key: str) -> tuple[AdminApiKey, Workspace] | None:
    """Return the key row matching `api_key` and its workspace, if that workspace is Active.

    The lookup is by SHA-256 digest (a unique index), so no stored secret is compared byte by byte;
    the final equality check is still constant-time.
    """
    digest = hash_admin_key(api_key)
    row = session.execute(
        select(AdminApiKey, Workspace)
        .join(Workspace, Workspace.id == AdminApiKey.workspace_id)
        .where(AdminApiKey.key_hash == digest)
    ).one_or_none()
    if row is None or not hmac.compare_digest(row.AdminApiKey.key_hash, digest):
        return None
    if row.Workspace.status != WorkspaceStatus.ACTIVE:
        return None
    return row.AdminApiKey, row.Workspace


def list_write_keys(session: Session, workspace_id: str) -> list[Secret]:
    """The workspace's write-key secrets, oldest first."""
    return list(
        session.scalars(
            select(Secret)
            .join(WriteKey, WriteKey.secret_id == Secret.id)
            .where(Secret.workspace_id == workspace_id)
            .order_by(Secret.created_at, Secret.name)
        )
    )


def delete_write_key(session: Session, workspace_id: str, name: str) -> bool:
    """Delete the write key called `name` (its secret and row); False when there is none."""
    secret = session.scalar(
        select(Secret)
        .join(WriteKey, WriteKey.secret_id == Secret.id)
        .where(Secret.workspace_id == workspace_id, Secret.name == name)
    )
    if secret is None:
        return False
    session.execute(delete(WriteKey).where(WriteKey.secret_id == secret.id))
    session.delete(secret)
    return True


def list_admin_keys(session: Session, workspace_id: str) -> list[AdminApiKey]:
    return list(
        session.scalars(
            select(AdminApiKey)
            .where(AdminApiKey.workspace_id == workspace_id)
            .order_by(AdminApiKey.created_at)
        )
    )


def delete_admin_key(session: Session, workspace_id: str, key_id: str) -> bool:
    """Delete an admin API key; sessions it minted stop working at once. False when there is none."""
    key = session.scalar(
        select(AdminApiKey).where(AdminApiKey.workspace_id == workspace_id, AdminApiKey.id == key_id)
    )
    if key is None:
        return False
    session.delete(key)
    return True
