"""Trait and property paths: every form Dittofeed accepts parses, and compiles to a ClickHouse path
that any key survives; a path no query could follow is refused when the definition is validated."""

from __future__ import annotations

import pytest

from engine.definitions import validate_segment_definition
from engine.errors import InvalidInput
from engine.json_paths import clickhouse_path, parse_path
from engine.storage import EventStore


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("email", ("email",)),
        ("address.city", ("address", "city")),
        ("$.items[0].name", ("items", 0, "name")),
        ('$["first-name"]', ("first-name",)),
        ("$['first name']", ("first name",)),
        ("first-name", ("first-name",)),
    ],
)
def test_paths_parse_into_keys_and_indexes(path: str, steps: tuple[object, ...]) -> None:
    assert parse_path(path) == steps


@pytest.mark.parametrize("path", ["", "$", "a.", "a..b", "$.", "a[x]", '$["a'])
def test_paths_no_query_could_follow_are_refused(path: str) -> None:
    with pytest.raises(ValueError):
        parse_path(path)


def test_compiled_paths_reach_keys_the_dotted_form_cannot(event_store: EventStore) -> None:
    document = '{"first-name": "Ada", "émail": "a@x.test", "items": [{"name": "bread"}]}'
    for path, expected in [("first-name", "Ada"), ("émail", "a@x.test"), ("items[0].name", "bread")]:
        query = "SELECT JSONExtractString(JSON_QUERY({document:String}, {path:String}), 1)"
        rows = event_store.query(query, {"document": document, "path": clickhouse_path(path)})
        assert rows == [(expected,)]


def test_a_segment_with_an_empty_trait_path_is_a_400_naming_the_field() -> None:
    definition = {
        "entryNode": {"type": "Trait", "id": "1", "path": "", "operator": {"type": "Equals", "value": "x"}},
        "nodes": [],
    }
    with pytest.raises(InvalidInput) as refused:
        validate_segment_definition(definition)
    assert refused.value.field is not None and refused.value.field.endswith("path")
