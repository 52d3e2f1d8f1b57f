"""Parsing a JSON body that will be stored verbatim and read back by ClickHouse's JSON functions.

`user_events_v2` derives its columns (event_type, event, user ids, timestamp) from `message_raw` with
ClickHouse's parser, while we validate and build the deduplication key from Python's. The two must read
the same document the same way, or an accepted body could store `event_type = 0` (an invalid enum value
that makes every later read of that row fail) or dodge deduplication. Python's `json` is laxer than
ClickHouse's in a few places, so this parse refuses exactly those: NaN/Infinity, numbers that overflow a
double, lone UTF-16 surrogates, repeated keys (ClickHouse takes the first, Python the last), invalid
UTF-8 and nesting beyond ClickHouse's depth limit.
"""

from __future__ import annotations

import json
import math
from typing import Any

from engine.errors import InvalidInput

# ClickHouse (simdjson) rejects documents nested deeper than 1024 levels; stay well inside that.
MAX_DEPTH = 512


def parse_for_clickhouse(raw: bytes) -> tuple[str, Any]:
    """Return the body as text (exactly its bytes, decoded) and its parsed value.

    :raises InvalidInput: the body is not JSON that ClickHouse reads as Python does.
    """
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text,
            object_pairs_hook=_object_without_repeated_keys,
            parse_constant=reject_json_constant,
            parse_float=_finite_float,
        )
    except UnicodeDecodeError:
        raise InvalidInput("body is not valid UTF-8", field="body") from None
    except ValueError as error:  # JSONDecodeError is a ValueError, as are the hooks' refusals
        raise InvalidInput(f"body is not valid JSON: {error}", field="body") from None
    except RecursionError:
        raise InvalidInput(f"body is nested deeper than {MAX_DEPTH} levels", field="body") from None
    _check_nodes(value)
    return text, value


def _object_without_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"key {key[:64]!r} appears more than once")
        seen.add(key)
    return dict(pairs)


def reject_json_constant(name: str) -> Any:
    """A `parse_constant` hook: NaN and Infinity are not JSON, and ClickHouse cannot read them."""
    raise ValueError(f"{name} is not JSON")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise ValueError(f"number {literal[:32]} is out of range")
    return number


def _check_nodes(value: Any) -> None:
    """Walk iteratively (no recursion limit to hit): depth, and strings that are valid Unicode."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            _check_text(node)
        elif isinstance(node, dict | list):
            if depth > MAX_DEPTH:
                raise InvalidInput(f"body is nested deeper than {MAX_DEPTH} levels", field="body")
            children = node.items() if isinstance(node, dict) else ((None, item) for item in node)
            for key, child in children:
                if key is not None:
                    _check_text(key)
                stack.append((child, depth + 1))


def _check_text(text: str) -> None:
    # A "\ud800" escape decodes to a lone surrogate, which has no UTF-8 form; ClickHouse rejects it.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            "body is not valid JSON: lone UTF-16 surrogate in a string", field="body"
        ) from None
