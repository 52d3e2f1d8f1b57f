"""`GET resources`: the ids and names of a workspace's Declarative resources, for pickers (Dittofeed
§6.13). Journeys and broadcasts are not listed until they exist.

`routes` is the admin mount (admin API key, `/api/admin/resources`); `resource_routes` builds the
others (`/api/resources`, `/api-l/embedded/resources`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from engine.resources import ResourceIndexRequest, resource_index
from gateway.admin_auth import authorize_target
from gateway.deps import Authorize, in_transaction
from gateway.inputs import read_query


class ResourcesQuery(BaseModel):
    # `journeys` and `broadcasts` are accepted and ignored until those resources exist.
    model_config = ConfigDict(extra="ignore")

    workspaceId: str
    segments: bool = False
    userProperties: bool = False
    subscriptionGroups: bool = False
    messageTemplates: bool = False


def resource_routes(prefix: str, authorize: Authorize, *, name: str) -> list[Route]:
    """The resources handler under `prefix`, each request authorised by `authorize`."""

    async def get_resources(request: Request) -> JSONResponse:
        query = read_query(request, ResourcesQuery)
        wanted = ResourceIndexRequest(
            segments=query.segments,
            user_properties=query.userProperties,
            subscription_groups=query.subscriptionGroups,
            message_templates=query.messageTemplates,
        )

        def read(session: Session) -> dict[str, Any]:
            return resource_index(session, authorize(request, session, None).id, wanted)

        return JSONResponse(await in_transaction(request, read))

    return [
        Route(prefix, get_resources, methods=["GET"], name=f"{name}:list"),
        Route(f"{prefix}/", get_resources, methods=["GET"], name=f"{name}:list/"),
    ]


routes = resource_routes("/api/admin/resources", authorize_target, name="admin:resources")
