"""`subscription-groups`: list, upsert and delete subscription groups (Dittofeed §6.9).

`subscription_group_routes` builds the handlers for one mount; `routes` is the admin mount (admin API
key, `/api/admin/subscription-groups`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.messaging import subscription_groups
from engine.storage.resource_models import ChannelType, SubscriptionGroupType
from gateway.admin_auth import authorize_target
from gateway.api.data_sources import Authorize
from gateway.deps import in_transaction
from gateway.inputs import read_json, read_query, validate


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str


class UpsertBody(_Body):
    channel: Literal["Email", "MobilePush", "Sms", "Webhook"]
    type: Literal["OptIn", "OptOut"]
    id: str | None = None
    name: str | None = None


class DeleteBody(_Body):
    id: str


def subscription_group_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The subscription-group handlers under `prefix`, each request authorised by `authorize`."""

    async def list_all(request: Request) -> JSONResponse:
        read_query(request, _Body)

        def read(session: Session) -> list[dict[str, Any]]:
            workspace = authorize(request, session, None)
            return [
                subscription_groups.subscription_group_resource(session, group)
                for group in subscription_groups.list_subscription_groups(session, workspace.id)
            ]

        return JSONResponse(await in_transaction(request, read))

    async def upsert(request: Request) -> JSONResponse:
        raw = await read_json(request)
        body = validate(UpsertBody, raw)
        upsert = subscription_groups.SubscriptionGroupUpsert(
            channel=ChannelType(body.channel),
            type=SubscriptionGroupType(body.type),
            id=body.id,
            name=body.name,
        )

        def write(session: Session) -> dict[str, Any]:
            workspace = authorize(request, session, raw)
            group = subscription_groups.upsert_subscription_group(session, workspace.id, upsert)
            return subscription_groups.subscription_group_resource(session, group)

        return JSONResponse(await in_transaction(request, write))

    async def delete(request: Request) -> Response:
        raw = await read_json(request)
        body = validate(DeleteBody, raw)

        def remove(session: Session) -> None:
            workspace = authorize(request, session, raw)
            subscription_groups.delete_subscription_group(session, workspace.id, body.id)

        await in_transaction(request, remove)
        return Response(status_code=204)

    return [
        Route(prefix, list_all, methods=["GET"], name=f"{name}:list"),
        Route(prefix, upsert, methods=["PUT"], name=f"{name}:upsert"),
        Route(prefix, delete, methods=["DELETE"], name=f"{name}:delete"),
    ]


routes = subscription_group_routes(
    "/api/admin/subscription-groups", authorize_target, name="admin:subscription_groups"
)
