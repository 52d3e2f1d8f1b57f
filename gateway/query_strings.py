"""Query strings in the `qs` shapes Dittofeed's clients send (§0): repeated keys (`ids=a&ids=b`),
empty brackets (`ids[]=a`), indices (`ids[0]=a`) and nesting (`filters[journeyIds][0]=j`,
`triggeringProperties[0][key]=k`), read into plain dicts and lists for pydantic to validate; and the
field types such queries use (`OneOrMany`: a lone value where a list is expected, as Fastify's
coercion allows; `DateText`: a client's date, a 400 naming the field when unreadable).

Like `qs`, nesting stops at depth 5 (the rest of the key stays one segment) and an index above 20
makes an object key rather than a list slot, so a client cannot make the server build a huge list.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BeforeValidator
from starlette.requests import Request

from engine.errors import InvalidInput
from engine.sent_messages import parse_date

Item = TypeVar("Item")

MAX_DEPTH = 5
MAX_INDEX = 20
_SEGMENT = re.compile(r"\[([^\[\]]*)\]")
# Where `name[]=` values wait inside their parent until `_listify` turns the parent into a list.
_APPEND_KEY = "\x00[]"


def read_nested_query(request: Request) -> dict[str, Any]:
    """The query string as nested data. :raises InvalidInput: one key used both as a value and a
    container (`a=1&a[b]=2`)."""
    root: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        path = _segments(key)
        _put(root, path, value, key)
    return {name: _listify(value) for name, value in root.items()}


def _segments(key: str) -> list[str]:
    head, bracket, _ = key.partition("[")
    if not bracket or not head:
        return [key]
    segments = [head]
    rest = key[len(head) :]
    position = 0
    while len(segments) <= MAX_DEPTH:
        match = _SEGMENT.match(rest, position)
        if match is None:
            break
        segments.append(match.group(1))
        position = match.end()
    if position < len(rest):
        segments.append(rest[position:])  # beyond the depth limit, or not brackets: one literal segment
    return segments


def _put(node: dict[str, Any], path: list[str], value: str, key: str) -> None:
    *parents, last = path
    for segment in parents:
        child = node.get(segment)
        if child is None:
            child = node[segment] = {}
        elif not isinstance(child, dict):
            raise InvalidInput(f"querystring/{key} mixes a value and nested fields", field=key)
        node = child
    if last == "":
        # `ids[]=a`: the next slot of a list.
        slots = node.setdefault(_APPEND_KEY, [])
        if not isinstance(slots, list):
            raise InvalidInput(f"querystring/{key} mixes a value and nested fields", field=key)
        slots.append(value)
        return
    existing = node.get(last)
    if existing is None:
        node[last] = value
    elif isinstance(existing, dict):
        raise InvalidInput(f"querystring/{key} mixes a value and nested fields", field=key)
    elif isinstance(existing, list):
        existing.append(value)
    else:
        node[last] = [existing, value]  # a repeated key collects its values, as qs does


def _listify(value: Any) -> Any:
    """Dicts whose keys are all small indices (or `[]` appends) become lists, in index order."""
    if not isinstance(value, dict):
        return value
    converted = {key: _listify(item) for key, item in value.items()}
    appended = converted.pop(_APPEND_KEY, None)
    if converted and not all(key.isdigit() and int(key) <= MAX_INDEX for key in converted):
        if appended is not None:
            converted.update({str(index): item for index, item in enumerate(appended, len(converted))})
        return converted
    return [converted[key] for key in sorted(converted, key=int)] + (appended or [])


def _one_or_many(value: Any) -> Any:
    return value if isinstance(value, list) else [value]


_FIRST_STORABLE = datetime(1900, 1, 1, tzinfo=UTC)
_LAST_STORABLE = datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def _date_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    parsed = parse_date(value) if isinstance(value, str) else None
    if parsed is None:
        raise ValueError("must be a date (ISO 8601)")
    # ClickHouse's DateTime64 holds 1900 to 2299 and refuses a parameter outside it; no stored time
    # lies outside either, so a bound beyond (a client's "no end" of 2999) means the same clamped.
    return min(max(parsed, _FIRST_STORABLE), _LAST_STORABLE)


OneOrMany = Annotated[list[Item], BeforeValidator(_one_or_many)]
DateText = Annotated[datetime, BeforeValidator(_date_text)]
