"""The member console's settings (`/dashboard/settings`, console only, never embedded): the index of
the sections the member's role opens, and every section's routes for the app to mount.

Sections: Providers (components.settings_providers), Write keys and Admin API keys
(components.settings_keys), Members and roles and Embed allowed origins (components.settings_access),
Subscription groups and Component configurations (components.settings_resources). What they share,
the console-only opening and the role policy, is components.settings_console.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from components import settings_access, settings_keys, settings_providers, settings_resources
from components.screens import CONSOLE_PREFIX, render
from components.settings_console import SETTINGS_PATH, open_page, unopened_page
from engine.errors import EngineError


async def show_index(request: Request) -> Response:
    try:
        page = await open_page(request, None)
    except EngineError as error:
        return unopened_page(request, error)
    return render(request, page.screen, "settings/index.html", page=page)


routes: list[Route] = [
    Route(f"{CONSOLE_PREFIX}{SETTINGS_PATH}", show_index, methods=["GET"], name="console:settings"),
    *settings_providers.routes,
    *settings_keys.routes,
    *settings_access.routes,
    *settings_resources.routes,
]
