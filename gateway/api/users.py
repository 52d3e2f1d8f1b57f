"""`/api/admin/users`: list, count and delete users, and one user's subscriptions (Dittofeed §6.8),
authorised by an admin key."""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import users
from engine.audit import record_action
from engine.messaging.subscriptions import user_subscriptions
from gateway.admin_auth import authorize_target
from gateway.deps import Authorize, in_read_transaction, in_transaction
from gateway.inputs import read_json, read_query, validate


class UserPropertyFilterItem(BaseModel):
    model_config = ConfigDict(strict=True)

    id: str
    values: list[str]


class UserFilterBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str
    userIds: list[str] | None = None
    segmentFilter: list[str] = []
    negativeSegmentFilter: list[str] = []
    subscriptionGroupFilter: list[str] = []
    negativeSubscriptionGroupFilter: list[str] = []
    unsubscribedFromFilter: list[str] = []
    userPropertyFilter: list[UserPropertyFilterItem] = []

    def to_filter(self, session: Session, workspace_id: str) -> users.UserFilter:
        groups = (
            self.subscriptionGroupFilter + self.negativeSubscriptionGroupFilter + self.unsubscribedFromFilter
        )
        known = users.load_subscriptions(session, workspace_id) if groups else {}
        unsubscribed = users.pick_subscriptions(known, self.unsubscribedFromFilter, "unsubscribedFromFilter")
        return users.UserFilter(
            user_ids=self.userIds,
            in_segments=[*self.segmentFilter, *(s.unsubscribed_segment or "" for s in unsubscribed)],
            not_in_segments=self.negativeSegmentFilter,
            property_values=[(item.id, item.values) for item in self.userPropertyFilter],
            subscribed=users.pick_subscriptions(
                known, self.subscriptionGroupFilter, "subscriptionGroupFilter"
            ),
            not_subscribed=users.pick_subscriptions(
                known, self.negativeSubscriptionGroupFilter, "negativeSubscriptionGroupFilter"
            ),
        )


class GetUsersBody(UserFilterBody):
    limit: int = Field(10, ge=1, le=10_000)
    cursor: str | None = None
    direction: Literal["after", "before"] = "after"
    exclusiveCursor: bool = False
    includeSubscriptions: bool = False
    # Sorting by an indexed user property comes with the property indices; until then, by id.
    sortBy: str | None = None
    sortOrder: Literal["asc", "desc"] = "asc"


class UserQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str
    userId: str = Field(min_length=1)


class DeleteUsersBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    workspaceId: str
    userIds: list[str] = Field(min_length=1)


async def get_users(request: Request, authorize: Authorize) -> JSONResponse:
    raw = await read_json(request)
    body = validate(GetUsersBody, raw)
    page = users.PageRequest(
        limit=body.limit,
        cursor=body.cursor,
        direction=body.direction,
        exclusive=body.exclusiveCursor,
        descending=body.sortOrder == "desc",
        include_subscriptions=body.includeSubscriptions,
    )

    def read(session: Session) -> users.UserPage:
        workspace = authorize(request, session, raw)
        where = body.to_filter(session, workspace.id)
        return users.list_users(request.app.state.event_store, session, workspace.id, where, page)

    # Only reads, with ClickHouse queries in between: on SQLite it must not hold the write lock.
    return JSONResponse((await in_read_transaction(request, read)).to_json())


async def count_users(request: Request, authorize: Authorize) -> JSONResponse:
    raw = await read_json(request)
    body = validate(UserFilterBody, raw)

    def count(session: Session) -> int:
        workspace = authorize(request, session, raw)
        return users.count_users(
            request.app.state.event_store, workspace.id, body.to_filter(session, workspace.id)
        )

    return JSONResponse({"userCount": await in_read_transaction(request, count)})


async def get_subscriptions(request: Request, authorize: Authorize) -> JSONResponse:
    query = read_query(request, UserQuery)

    def read(session: Session) -> dict[str, Any]:
        workspace = authorize(request, session, None)
        groups = user_subscriptions(session, workspace.id, query.userId)
        return {
            "workspaceId": workspace.id,
            "userId": query.userId,
            "subscriptionGroups": [
                {"id": g.id, "name": g.name, "isSubscribed": g.subscribed, "channel": g.channel}
                for g in groups
            ],
        }

    return JSONResponse(await in_transaction(request, read))


async def delete_users(request: Request, authorize: Authorize) -> Response:
    raw = await read_json(request)
    return await _delete(request, authorize, validate(DeleteUsersBody, raw), raw)


async def delete_users_by_query(request: Request, authorize: Authorize) -> Response:
    query = read_query(request, DeleteUsersBody, arrays=frozenset({"userIds"}))
    return await _delete(request, authorize, query, None)


async def _delete(request: Request, authorize: Authorize, body: DeleteUsersBody, raw: object) -> Response:
    def delete(session: Session) -> None:
        workspace = authorize(request, session, raw)
        users.delete_users(session, request.app.state.event_store, workspace.id, body.userIds)
        for user_id in body.userIds:
            record_action(session, workspace_id=workspace.id, resource_type="User", resource_id=user_id)

    await in_transaction(request, delete)
    return Response(status_code=204)


def user_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The users handlers under `prefix`, each request authorised by `authorize`."""
    return [
        Route(prefix, partial(get_users, authorize=authorize), methods=["POST"], name=f"{name}:list"),
        Route(f"{prefix}/", partial(get_users, authorize=authorize), methods=["POST"], name=f"{name}:list/"),
        Route(
            f"{prefix}/count",
            partial(count_users, authorize=authorize),
            methods=["POST"],
            name=f"{name}:count",
        ),
        Route(
            f"{prefix}/subscriptions",
            partial(get_subscriptions, authorize=authorize),
            methods=["GET"],
            name=f"{name}:subscriptions",
        ),
        Route(prefix, partial(delete_users, authorize=authorize), methods=["DELETE"], name=f"{name}:delete"),
        Route(
            f"{prefix}/",
            partial(delete_users, authorize=authorize),
            methods=["DELETE"],
            name=f"{name}:delete/",
        ),
        Route(
            f"{prefix}/v2",
            partial(delete_users_by_query, authorize=authorize),
            methods=["DELETE"],
            name=f"{name}:delete_v2",
        ),
    ]


routes = user_routes("/api/admin/users", authorize_target, name="users")
