"""Paths into traits and event properties (`email`, `address.city`, `$.items[0].name`,
`$["first-name"]`, `$['first name']`): parsed when a definition is validated, compiled to a
ClickHouse JSONPath in bracket form so any key works (the dotted form rejects `first-name`)."""

from __future__ import annotations

import json
import re

Step = str | int

_STEP = re.compile(r'\.([^.\[\]"\']+)|\[([0-9]+)\]|\["([^"\\]*)"\]|\[\'([^\'\\]*)\'\]')


def parse_path(path: str) -> tuple[Step, ...]:
    """The keys and indexes of `path`.

    :raises ValueError: empty, or not made of `.key`, `[n]` and `["key"]` steps.
    """
    text = path[1:] if path.startswith("$") else path
    if text and not text.startswith((".", "[")):
        text = "." + text
    steps: list[Step] = []
    position = 0
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            raise ValueError(f"is not a valid path at character {position + 1}: {path!r}")
        key, index, double_quoted, single_quoted = match.groups()
        if index is not None:
            steps.append(int(index))
        else:
            steps.append(next(part for part in (key, double_quoted, single_quoted) if part is not None))
        position = match.end()
    if not steps:
        raise ValueError("must name a trait or property, e.g. email or address.city")
    return tuple(steps)


def clickhouse_path(path: str) -> str:
    """`path` as a ClickHouse JSONPath in bracket form: `$["address"]["city"]`, `$["items"][0]`."""
    steps = parse_path(path)
    return "$" + "".join(
        f"[{s}]" if isinstance(s, int) else f"[{json.dumps(s, ensure_ascii=False)}]" for s in steps
    )
