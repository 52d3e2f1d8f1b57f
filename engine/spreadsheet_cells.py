"""CSV cells a spreadsheet opens as text: a value that users or events chose (a name, an id, a trait)
never runs as a formula when a member opens an export (CSV injection, as OWASP describes it)."""

from __future__ import annotations

from collections.abc import Iterable

# What makes a spreadsheet read a cell as a formula (tab and carriage return too, in some).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(text: str) -> str:
    """`text`, led by a quote when a spreadsheet would read it as a formula; otherwise unchanged."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def inert_row(cells: Iterable[str]) -> list[str]:
    return [inert_cell(cell) for cell in cells]
