"""The Write keys and Admin API keys settings pages: list, create, delete (engine.credentials).

A key's value is shown once, in the page answering its creation, and on no page after: listings show
names and ids only. Creating a write key under a name already taken is refused rather than answered
with the existing key, which would show a stored credential again.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components.settings_console import (
    ADMIN_KEYS,
    WRITE_KEYS,
    Outcome,
    Revealed,
    SettingsPage,
    render_section,
    section_routes,
)
from engine import credentials
from engine.errors import Conflict, NotFound
from gateway.deps import in_transaction
from gateway.inputs import validate


class WriteKeyForm(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, str_strip_whitespace=True)

    writeKeyName: str = Field(min_length=1, max_length=200)


class AdminKeyForm(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)


class AdminKeyDeleteForm(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, str_strip_whitespace=True)

    id: str = Field(min_length=1)


@dataclass(frozen=True)
class KeyRow:
    id: str
    name: str
    created_at: str


async def show_write_keys(request: Request, page: SettingsPage, outcome: Outcome) -> Response:
    def read(session: Session) -> list[KeyRow]:
        return [
            KeyRow(secret.id, secret.name, secret.created_at.isoformat())
            for secret in credentials.list_write_keys(session, page.workspace_id)
        ]

    keys = await in_transaction(request, read)
    return render_section(request, page, "settings/write_keys.html", outcome, keys=keys)


async def create_write_key(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    name = validate(WriteKeyForm, form).writeKeyName

    def create(session: Session) -> str:
        taken = {secret.name for secret in credentials.list_write_keys(session, page.workspace_id)}
        if name in taken:
            raise Conflict(f"A write key named {name!r} already exists; pick another name.")
        secret, _ = credentials.get_or_create_write_key(session, page.workspace_id, name)
        assert secret.value is not None
        return credentials.write_key_header(secret.id, secret.value)

    header = await in_transaction(request, create)
    return Outcome(
        notice=f"Write key {name!r} created.",
        revealed=Revealed(f"Write key {name!r} (the Authorization header value)", header),
    )


async def delete_write_key(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    name = validate(WriteKeyForm, form).writeKeyName

    def delete(session: Session) -> None:
        if not credentials.delete_write_key(session, page.workspace_id, name):
            raise NotFound(f"No write key named {name!r}.")

    await in_transaction(request, delete)
    return Outcome(notice=f"Write key {name!r} deleted.")


async def show_admin_keys(request: Request, page: SettingsPage, outcome: Outcome) -> Response:
    def read(session: Session) -> list[KeyRow]:
        return [
            KeyRow(key.id, key.name, key.created_at.isoformat())
            for key in credentials.list_admin_keys(session, page.workspace_id)
        ]

    keys = await in_transaction(request, read)
    return render_section(request, page, "settings/admin_keys.html", outcome, keys=keys)


async def create_admin_key(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    name = validate(AdminKeyForm, form).name

    def create(session: Session) -> credentials.IssuedAdminKey:
        return credentials.create_admin_api_key(session, page.workspace_id, name)

    issued = await in_transaction(request, create)
    return Outcome(
        notice=f"Admin API key {name!r} created.",
        revealed=Revealed(f"Admin API key {name!r}", issued.api_key),
    )


async def delete_admin_key(request: Request, page: SettingsPage, form: dict[str, str]) -> Outcome:
    key_id = validate(AdminKeyDeleteForm, form).id

    def delete(session: Session) -> None:
        if not credentials.delete_admin_key(session, page.workspace_id, key_id):
            raise NotFound(f"No admin API key with id {key_id}.")

    await in_transaction(request, delete)
    return Outcome(notice="Admin API key deleted. Sessions it minted stop working now.")


routes: list[Route] = [
    *section_routes(WRITE_KEYS, show_write_keys, {"create": create_write_key, "delete": delete_write_key}),
    *section_routes(ADMIN_KEYS, show_admin_keys, {"create": create_admin_key, "delete": delete_admin_key}),
]
