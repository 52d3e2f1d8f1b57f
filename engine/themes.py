"""Workspace themes: the colours, font and corner radius of the screens.

A parent's theme is the default for its children; a child overrides it field by field. Values are
validated to a strict grammar (hex or functional colours, a plain font list, a pixel radius), so a
stored theme can be written into a stylesheet without any way to break out of a declaration.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.storage.gateway_models import WorkspaceTheme
from engine.storage.models import Workspace

COLOR_FIELDS = (
    "colorPrimary",
    "colorText",
    "colorMuted",
    "colorBackground",
    "colorSurface",
    "colorBorder",
    "colorDanger",
)
THEME_FIELDS = (*COLOR_FIELDS, "fontFamily", "radius")
MAX_RADIUS_PX = 32

_HEX_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_FUNCTION_COLOR = re.compile(r"(?:rgb|rgba|hsl|hsla)\(\s*[0-9.%,\s/deg]{1,60}\)")
_FONT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 \-]{0,62}")

Theme = dict[str, Any]


def validate_theme(raw: Any, *, where: str = "body/theme") -> Theme:
    """The theme's fields, each checked; None values are dropped (they mean "inherit").

    :raises InvalidInput: not an object, an unknown field, or a value outside its grammar.
    """
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be an object", field=where)
    theme: Theme = {}
    for name, value in raw.items():
        field = f"{where}/{name}"
        if name not in THEME_FIELDS:
            known = ", ".join(THEME_FIELDS)
            raise InvalidInput(f"{field} is not a theme field (one of {known})", field=field)
        if value is None:
            continue
        if name in COLOR_FIELDS:
            theme[name] = _color(value, field)
        elif name == "fontFamily":
            theme[name] = _font_family(value, field)
        else:
            theme[name] = _radius(value, field)
    return theme


def set_theme(session: Session, workspace_id: str, theme: Theme | None) -> None:
    """Store the workspace's own theme (already validated); None removes it."""
    own = session.get(WorkspaceTheme, workspace_id)
    if theme is None:
        if own is not None:
            session.delete(own)
        return
    if own is None:
        session.add(WorkspaceTheme(workspace_id=workspace_id, values=theme))
    else:
        own.values = theme


def read_own_theme(session: Session, workspace_id: str) -> Theme:
    own = session.get(WorkspaceTheme, workspace_id)
    return dict(own.values) if own is not None else {}


def read_effective_theme(session: Session, workspace: Workspace) -> Theme:
    """The parent's theme overridden, field by field, by the workspace's own."""
    ids = [workspace.id]
    if workspace.parent_workspace_id is not None:
        ids.insert(0, workspace.parent_workspace_id)
    rows: dict[str, Theme] = dict(
        session.execute(
            select(WorkspaceTheme.workspace_id, WorkspaceTheme.values).where(
                WorkspaceTheme.workspace_id.in_(ids)
            )
        ).all()
    )
    effective: Theme = {}
    for workspace_id in ids:
        effective.update(rows.get(workspace_id) or {})
    return effective


def _color(value: Any, field: str) -> str:
    if isinstance(value, str) and (_HEX_COLOR.fullmatch(value) or _FUNCTION_COLOR.fullmatch(value)):
        return value
    raise InvalidInput(f"{field} must be a colour such as #1565c0 or rgb(21, 101, 192)", field=field)


def _font_family(value: Any, field: str) -> str:
    names = [name.strip() for name in value.split(",")] if isinstance(value, str) else []
    if not names or len(names) > 8 or not all(_FONT_NAME.fullmatch(name) for name in names):
        raise InvalidInput(
            f"{field} must be a comma-separated list of font names (letters, digits, spaces, hyphens)",
            field=field,
        )
    return ", ".join(names)


def _radius(value: Any, field: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_RADIUS_PX:
        return value
    raise InvalidInput(f"{field} must be a whole number of pixels from 0 to {MAX_RADIUS_PX}", field=field)
