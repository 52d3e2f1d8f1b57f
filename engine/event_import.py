"""A backfill of past events: newline-delimited JSON, one Segment message per line with its `type`.

That is the shape of Dittofeed's stored `message_raw` (what `SELECT message_raw FROM user_events_v2
... FORMAT TSVRaw` prints), so a workspace's history moves over line for line; it is also what a
Segment or RudderStack export holds. Each line is checked as an item of `POST /api/public/apps/batch`
and becomes the same rows. Blank lines are skipped.

The whole file is checked before anything is written, so a bad line leaves the workspace as it was.
Writing goes through the event writer, which skips a messageId already stored: an import that stopped
half-way can be run again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from engine.clickhouse_json import reject_json_constant
from engine.definitions import parse_document
from engine.errors import InvalidInput
from engine.events import BatchItem, EventRow, build_rows

_ITEM: TypeAdapter[Any] = TypeAdapter(BatchItem)
# A file with a systematic mistake would otherwise print one problem per line.
MAX_REPORTED_PROBLEMS = 10


def count_import_events(lines: Iterable[bytes]) -> int:
    """How many events the lines hold, once every one is checked.

    :raises InvalidInput: naming the line and field of each problem (the first ten, and how many more).
    """
    problems: list[str] = []
    count = 0
    for number, line in enumerate(lines, start=1):
        try:
            if _read_line(number, line) is not None:
                count += 1
        except InvalidInput as problem:
            problems.append(problem.message)
    if problems:
        more = len(problems) - MAX_REPORTED_PROBLEMS
        listed = "; ".join(problems[:MAX_REPORTED_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")
        raise InvalidInput(f"{len(problems)} bad line(s), nothing imported: {listed}", field="file")
    return count


def read_import_rows(
    workspace_id: str, lines: Iterable[bytes], received_at: datetime, *, chunk_events: int
) -> Iterator[tuple[list[EventRow], int]]:
    """The rows of checked lines, `chunk_events` events at a time, each chunk with its event count."""
    rows: list[EventRow] = []
    events = 0
    for number, line in enumerate(lines, start=1):
        item = _read_line(number, line)
        if item is None:
            continue
        event_type, message = item
        rows.extend(build_rows(workspace_id, event_type, message, received_at))
        events += 1
        if events == chunk_events:
            yield rows, events
            rows, events = [], 0
    if events:
        yield rows, events


def _read_line(number: int, line: bytes) -> tuple[str, dict[str, Any]] | None:
    """(type, message) of one line, None for a blank one."""
    if not line.strip():
        return None
    where = f"line {number}"
    try:
        raw = json.loads(line, parse_constant=reject_json_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidInput(f"{where} is not JSON: {error}", field=where) from None
    parse_document(_ITEM.validate_python, raw, where)
    message = dict(raw)
    return message.pop("type"), message
