"""CSV downloads a spreadsheet opens as text (engine.spreadsheet_cells)."""

from __future__ import annotations

import pytest

from engine.spreadsheet_cells import csv_download, inert_cell


@pytest.mark.parametrize(
    ("text", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("ada@example.com", "ada@example.com"),
        ("a=b", "a=b"),
        ("2026-03-01T10:01:00.000Z", "2026-03-01T10:01:00.000Z"),
        ('{"type":"Email"}', '{"type":"Email"}'),
        ("", ""),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_led_by_a_quote(text: str, cell: str) -> None:
    assert inert_cell(text) == cell


def test_a_download_is_dittofeeds_csv_with_every_cell_inert() -> None:
    rows = [["=x", "a,b"], ["y", '-say "hi"']]

    assert csv_download(["first", "second"], rows) == 'first,second\n\'=x,"a,b"\ny,"\'-say ""hi"""'
