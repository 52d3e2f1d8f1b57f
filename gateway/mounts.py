"""The controllers' second and third mounts (Dittofeed §6): `/api/*` for signed-in members and
`/api-l/embedded/*` for embedded sessions. The admin-key mount (`/api/admin/*`) is each
controller module's own `routes`.

Each mount is the same handlers with another authoriser, so the three cannot drift apart: the
member mount checks the role each controller needs to write, the embedded mount the token's scope.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.routing import Route

from engine.storage.models import Role
from gateway.admin_auth import authorize_target
from gateway.api.analysis import analysis_routes
from gateway.api.broadcasts import broadcast_routes
from gateway.api.computed_properties import computed_property_routes
from gateway.api.content import content_routes
from gateway.api.data_sources import data_source_routes
from gateway.api.deliveries import deliveries_routes
from gateway.api.events import event_routes
from gateway.api.groups import group_routes
from gateway.api.journeys import journey_routes
from gateway.api.keys import admin_key_routes, write_key_routes
from gateway.api.permissions import permission_routes
from gateway.api.provider_settings import provider_settings_routes
from gateway.api.resources import resource_routes
from gateway.api.segments import segment_routes
from gateway.api.subscription_groups import subscription_group_routes
from gateway.api.user_properties import user_property_routes
from gateway.api.users import user_routes
from gateway.deps import Authorize
from gateway.embedded_auth import embedded_access
from gateway.member_auth import gate_routes, member_access

RouteBuilder = Callable[..., list[Route]]

# The controllers every mount shares: (path below the mount, builder).
SHARED: list[tuple[str, RouteBuilder]] = [
    ("analysis", analysis_routes),
    ("broadcasts", broadcast_routes),
    ("computed-properties", computed_property_routes),
    ("content", content_routes),
    ("deliveries", deliveries_routes),
    ("events", event_routes),
    ("journeys", journey_routes),
    ("resources", resource_routes),
    ("segments", segment_routes),
    ("subscription-groups", subscription_group_routes),
    ("user-properties", user_property_routes),
    ("users", user_routes),
]


def member_routes() -> list[Route]:
    """`/api/*`: Viewer reads resources; Author edits them; WorkspaceManager reads and edits settings
    and keys; Admin manages members."""
    author = member_access(Role.AUTHOR)
    manager = member_access(Role.WORKSPACE_MANAGER, read_role=Role.WORKSPACE_MANAGER)
    resources: list[Route] = []
    for group, build in SHARED:
        resources += build(f"/api/{group}", author, name=f"api:{group}")
    resources += group_routes("/api/groups", author, name="api:groups")
    settings = [
        *provider_settings_routes("/api/settings", manager, name="api:settings"),
        *data_source_routes("/api/settings/data-sources", manager, name="api:data_sources"),
        *write_key_routes("/api/settings/write-keys", manager, name="api:write_keys"),
        *admin_key_routes("/api/admin-keys", manager, name="api:admin_keys"),
    ]
    admin = member_access(Role.ADMIN, read_role=Role.ADMIN)
    members = permission_routes("/api/permissions", admin, name="api:permissions")
    return [
        *gate_routes(resources, Role.AUTHOR),
        *gate_routes(settings, Role.WORKSPACE_MANAGER, read_role=Role.WORKSPACE_MANAGER),
        *gate_routes(members, Role.ADMIN, read_role=Role.ADMIN),
    ]


def embedded_routes() -> list[Route]:
    """`/api-l/embedded/*`: the bearer session token only, within its workspace and scope."""
    routes: list[Route] = []
    for group, build in SHARED:
        access: Authorize = embedded_access(group)
        routes += build(f"/api-l/embedded/{group}", access, name=f"embedded:{group}")
    return routes


def admin_only_routes() -> list[Route]:
    """Admin-key routes that have no module of their own."""
    return write_key_routes("/api/admin/settings/write-keys", authorize_target, name="admin:write_keys")
