"""Every user-property type of Dittofeed §7.2 computed in ClickHouse, as JSON text per user."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.engine.compute.conftest import NOW, History


def test_id_and_anonymous_id(history: History) -> None:
    history.identify("ann")
    history.send("track", "bob", event="E", anonymousId="anon-9")
    assert history.user_property({"type": "Id"}) == {"ann": '"ann"', "bob": '"bob"'}
    assert history.user_property({"type": "AnonymousId"}) == {"bob": '"anon-9"'}


def test_trait_keeps_the_latest_value_of_any_json_type(history: History) -> None:
    history.identify("ann", at=NOW - timedelta(hours=2), address={"city": "Oslo"}, plan="free")
    history.identify("ann", at=NOW - timedelta(hours=1), address={"city": "Rome", "zip": 100})
    history.identify("bob", address=None)
    assert history.user_property({"type": "Trait", "path": "address.city"}) == {"ann": '"Rome"'}
    assert json.loads(history.user_property({"type": "Trait", "path": "address"})["ann"]) == {
        "city": "Rome",
        "zip": 100,
    }
    assert history.user_property({"type": "Trait", "path": "$.plan"}) == {"ann": '"free"'}


def test_performed_takes_the_path_of_the_latest_matching_event(history: History) -> None:
    history.track("ann", "ORDER", total=5, store="web")
    history.track("ann", "ORDER", total=9, store="app")
    history.track("ann", "REFUND", total=1)
    definition = {"type": "Performed", "event": "ORDER", "path": "total"}
    assert history.user_property(definition) == {"ann": "9"}
    filtered = {
        **definition,
        "properties": [{"path": "store", "operator": {"type": "Equals", "value": "web"}}],
    }
    assert history.user_property(filtered) == {"ann": "5"}


def test_performed_many_lists_every_matching_event(history: History) -> None:
    history.track("ann", "A", at=NOW - timedelta(hours=2), n=1)
    history.track("ann", "B", at=NOW - timedelta(hours=1), n=2)
    history.track("ann", "C", n=3)
    value = json.loads(
        history.user_property({"type": "PerformedMany", "or": [{"event": "A"}, {"event": "B"}]})["ann"]
    )
    assert [(item["event"], item["properties"]) for item in value] == [("A", {"n": 1}), ("B", {"n": 2})]
    assert all(item["timestamp"].endswith("Z") for item in value)


def test_file_is_the_latest_attached_descriptor(history: History) -> None:
    descriptor = {"type": "BlobStorage", "key": "k1", "mimeType": "application/pdf", "name": "invoice.pdf"}
    history.track("ann", "UPLOAD", DFAttachedFiles={"invoice.pdf": descriptor})
    history.track("ann", "UPLOAD", DFAttachedFiles={"other.pdf": {**descriptor, "key": "k2"}})
    value = history.user_property({"type": "File", "name": "invoice.pdf"})
    assert json.loads(value["ann"]) == descriptor


def test_group_any_of_takes_the_first_child_with_a_value(history: History) -> None:
    history.identify("ann", nickname="Annie", first="Ann")
    history.identify("bob", first="Bob")
    history.identify("cyd")
    definition = {
        "type": "Group",
        "entry": "any",
        "nodes": [
            {"id": "any", "type": "AnyOf", "children": ["nick", "first"]},
            {"id": "nick", "type": "Trait", "path": "nickname"},
            {"id": "first", "type": "Trait", "path": "first"},
        ],
    }
    assert history.user_property(definition) == {"ann": '"Annie"', "bob": '"Bob"'}
