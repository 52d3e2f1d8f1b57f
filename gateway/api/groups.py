"""`/api/admin/groups/*`: who is in a group and which groups a user is in (Dittofeed §6.10)."""

from __future__ import annotations

from functools import partial

from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.groups import list_group_users, list_user_groups
from gateway.admin_auth import authorize_target
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_query


class _Page(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    limit: int = Field(100, ge=1, le=10_000)
    offset: int = Field(0, ge=0)


class GroupUsersQuery(_Page):
    groupId: str


class UserGroupsQuery(_Page):
    userId: str


async def get_group_users(request: Request, authorize: Authorize) -> JSONResponse:
    query = read_query(request, GroupUsersQuery)
    workspace_id = await in_transaction(request, lambda session: authorize(request, session, None).id)
    members = await run_in_threadpool(
        list_group_users,
        request.app.state.event_store,
        workspace_id,
        query.groupId,
        limit=query.limit,
        offset=query.offset,
    )
    return JSONResponse({"users": members})


async def get_user_groups(request: Request, authorize: Authorize) -> JSONResponse:
    query = read_query(request, UserGroupsQuery)
    workspace_id = await in_transaction(request, lambda session: authorize(request, session, None).id)
    groups = await run_in_threadpool(
        list_user_groups,
        request.app.state.event_store,
        workspace_id,
        query.userId,
        limit=query.limit,
        offset=query.offset,
    )
    return JSONResponse({"groups": groups})


def group_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The groups handlers under `prefix`, each request authorised by `authorize`."""
    return [
        Route(
            f"{prefix}/users",
            partial(get_group_users, authorize=authorize),
            methods=["GET"],
            name=f"{name}:users",
        ),
        Route(
            f"{prefix}/user-groups",
            partial(get_user_groups, authorize=authorize),
            methods=["GET"],
            name=f"{name}:user_groups",
        ),
    ]


routes = group_routes("/api/admin/groups", authorize_target, name="groups")
