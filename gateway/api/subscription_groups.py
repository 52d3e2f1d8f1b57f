"""`subscription-groups`: list, upsert and delete subscription groups, set users' subscriptions and
upload them as CSV (Dittofeed §6.9).

`subscription_group_routes` builds the handlers for one mount; `routes` is the admin mount (admin API
key, `/api/admin/subscription-groups`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.audit import record_action
from engine.errors import InvalidInput
from engine.messaging import subscription_csv, subscription_groups, subscriptions
from engine.storage.resource_models import ChannelType, SubscriptionGroupType
from gateway.admin_auth import authorize_target
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_json, read_query, read_uploaded_file, validate


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


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    userId: str = Field(min_length=1)
    changes: dict[str, bool]


class AssignmentsBody(_Body):
    userUpdates: list[UserUpdate]


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

    async def set_assignments(request: Request) -> Response:
        raw = await read_json(request)
        body = validate(AssignmentsBody, raw)
        updates = [subscriptions.SubscriptionUpdate(u.userId, u.changes) for u in body.userUpdates]

        def write(session: Session) -> None:
            workspace = authorize(request, session, raw)
            subscriptions.update_subscriptions(
                session,
                request.app.state.event_writer.accept,
                request.app.state.event_store,
                workspace.id,
                updates,
                field="body/userUpdates/changes",
            )
            for update in body.userUpdates:
                record_action(
                    session,
                    workspace_id=workspace.id,
                    resource_type="UserSubscriptions",
                    resource_id=update.userId,
                    after=update.changes,
                )

        await in_transaction(request, write)
        return Response(status_code=200)

    async def upload_csv(request: Request) -> Response:
        group_id = request.headers.get(subscription_csv.GROUP_HEADER)
        if not group_id:
            raise InvalidInput(
                f"headers must have required property '{subscription_csv.GROUP_HEADER}'",
                field=subscription_csv.GROUP_HEADER,
            )
        data = await read_uploaded_file(request)

        def write(session: Session) -> None:
            workspace = authorize(request, session, None)
            # Parsed only once the caller may write here, as upstream orders its answers.
            rows = subscription_csv.parse_subscription_csv(data)
            subscription_csv.apply_subscription_csv(
                session,
                request.app.state.event_writer.accept,
                request.app.state.event_store,
                workspace.id,
                group_id,
                rows,
            )
            after = {"rows": len(rows)}
            record_action(
                session,
                workspace_id=workspace.id,
                resource_type="SubscriptionGroup",
                resource_id=group_id,
                after=after,
            )

        await in_transaction(request, write)
        return Response(status_code=200)

    return [
        Route(prefix, list_all, methods=["GET"], name=f"{name}:list"),
        Route(prefix, upsert, methods=["PUT"], name=f"{name}:upsert"),
        Route(prefix, delete, methods=["DELETE"], name=f"{name}:delete"),
        Route(f"{prefix}/assignments", set_assignments, methods=["PUT"], name=f"{name}:assignments"),
        Route(f"{prefix}/upload-csv", upload_csv, methods=["POST"], name=f"{name}:upload_csv"),
    ]


routes = subscription_group_routes(
    "/api/admin/subscription-groups", authorize_target, name="admin:subscription_groups"
)
