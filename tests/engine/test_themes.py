"""A workspace theme holds each value to a grammar that cannot break out of a CSS declaration."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import InvalidInput
from engine.themes import validate_theme


def test_accepts_every_field_in_its_grammar() -> None:
    theme = {
        "colorPrimary": "#0a7",
        "colorText": "#1f2933ff",
        "colorMuted": "rgb(97, 110, 124)",
        "colorBackground": "hsl(0 0% 100%)",
        "colorSurface": "#f5f7fa",
        "colorBorder": "rgba(0, 0, 0, 0.1)",
        "colorDanger": "#c62828",
        "fontFamily": "Inter,  Segoe UI , sans-serif",
        "radius": 0,
    }
    assert validate_theme(theme) == {**theme, "fontFamily": "Inter, Segoe UI, sans-serif"}


def test_null_means_inherit_and_is_dropped() -> None:
    assert validate_theme({"colorPrimary": None, "radius": 4}) == {"radius": 4}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("colorPrimary", "red; } body { display: none"),
        ("colorPrimary", "#12345"),
        ("colorPrimary", "url(https://evil.test/x.png)"),
        ("colorText", "</style><script>alert(1)</script>"),
        ("colorBorder", "rgb(0,0,0);x:y"),
        ("fontFamily", "Inter; background: url(x)"),
        ("fontFamily", '"Comic Sans"'),
        ("fontFamily", ""),
        ("fontFamily", 12),
        ("radius", -1),
        ("radius", 33),
        ("radius", "6px"),
        ("radius", True),
    ],
)
def test_refuses_a_value_outside_its_grammar_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as raised:
        validate_theme({field: value})
    assert raised.value.field == f"body/theme/{field}"


def test_refuses_an_unknown_field_and_a_non_object() -> None:
    with pytest.raises(InvalidInput, match="body/theme/backgroundImage is not a theme field"):
        validate_theme({"backgroundImage": "#fff"})
    with pytest.raises(InvalidInput, match="body/theme must be an object"):
        validate_theme(["#fff"])
