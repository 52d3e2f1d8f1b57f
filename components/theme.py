"""A workspace's theme as the CSS custom properties static/feedgate.css reads.

engine.themes has already held every value to a grammar with no `;`, `{`, `}`, `<` or quotes, so the
declarations can be written into the page's `<style>` as they are.
"""

from __future__ import annotations

from markupsafe import Markup

from engine.themes import Theme

_VARIABLES = {
    "colorPrimary": "--fg-color-primary",
    "colorText": "--fg-color-text",
    "colorMuted": "--fg-color-muted",
    "colorBackground": "--fg-color-background",
    "colorSurface": "--fg-color-surface",
    "colorBorder": "--fg-color-border",
    "colorDanger": "--fg-color-danger",
    "fontFamily": "--fg-font-family",
    "radius": "--fg-radius",
}


def theme_stylesheet(theme: Theme) -> Markup:
    """`:root{…}` overriding the default variables, or nothing for an empty theme."""
    declarations = [f"{_VARIABLES[name]}: {_css_value(name, value)};" for name, value in theme.items()]
    if not declarations:
        return Markup("")
    return Markup(f":root {{ {' '.join(declarations)} }}")  # noqa: S704 (values held to a grammar)


def _css_value(name: str, value: object) -> str:
    if name == "radius":
        return f"{value}px"
    if name == "fontFamily":
        # Names with spaces are quoted; a generic family (sans-serif) must not be.
        return ", ".join(f'"{font}"' if " " in font else font for font in str(value).split(", "))
    return str(value)
