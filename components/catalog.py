"""Every screen's routes, in both shells (embedded and console), for the app to mount."""

from __future__ import annotations

from starlette.routing import BaseRoute

from components import (
    analysis_chart,
    broadcast_editor,
    broadcasts_table,
    deliveries_table,
    email_editor,
    journey_editor,
    journeys_table,
    segment_editor,
    segments_table,
    settings_pages,
    sms_editor,
    templates_table,
)


def screen_routes() -> list[BaseRoute]:
    return [
        *deliveries_table.routes,
        *analysis_chart.routes,
        *segments_table.routes,
        *segment_editor.routes,
        # Each editor's `/{id}` route comes after its action paths.
        *templates_table.routes,
        *email_editor.routes,
        *sms_editor.routes,
        *broadcasts_table.routes,
        *broadcast_editor.routes,
        *journeys_table.routes,
        *journey_editor.routes,
        # Console only: the settings are never embedded.
        *settings_pages.routes,
    ]
