"""What a message knows about its recipient: the user's computed property values by name, read from
the SQL copy of the assignments (one query for many users)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.storage.assignment_models import UserPropertyAssignment
from engine.storage.resource_models import UserProperty

_CHUNK = 500


def load_user_properties(
    session: Session, workspace_id: str, user_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """user id -> {user-property name: parsed value} for each of `user_ids` that has any; `id` included."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(user_ids), _CHUNK):
        chunk = list(user_ids[start : start + _CHUNK])
        rows = session.execute(
            select(UserPropertyAssignment.user_id, UserProperty.name, UserPropertyAssignment.value)
            .join(UserProperty, UserProperty.id == UserPropertyAssignment.user_property_id)
            .where(
                UserPropertyAssignment.workspace_id == workspace_id,
                UserProperty.workspace_id == workspace_id,
                UserPropertyAssignment.user_id.in_(chunk),
            )
        )
        for user_id, name, value in rows:
            if not value:
                continue  # ClickHouse's "no value"
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = value
            found.setdefault(user_id, {})[name] = parsed
    for user_id, properties in found.items():
        properties["id"] = user_id
    return found
