"""CSV downloads a spreadsheet opens as text: a value that users or events chose (a name, an id, a
trait) never runs as a formula when a member opens an export (CSV injection, as OWASP describes it).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

# What makes a spreadsheet read a cell as a formula (tab and carriage return too, in some).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def inert_cell(text: str) -> str:
    """`text`, led by a quote when a spreadsheet would read it as a formula; otherwise unchanged."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_download(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """`rows` under `header` as CSV, each cell made inert, written as Dittofeed's downloads are: a
    newline between rows and none after the last (fast-csv, upstream's writer)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([inert_cell(cell) for cell in row] for row in rows)
    return out.getvalue().removesuffix("\n")
