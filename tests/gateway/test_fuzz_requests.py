"""Fuzzing what clients send: event bodies, segment definitions and templates to render.

Each input is drawn near its schema (right shapes with wrong values, wrong shapes, deep nesting, odd
numbers and strings), so validation is exercised at every depth. Whatever arrives, the answer is a
2xx or a 4xx whose message names the problem, never a 5xx; an accepted event stays readable; an
accepted segment definition computes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.gateway.api.conftest import ParentAccount, Tenant, parent, tenant

__all__ = ["parent", "tenant"]

# The strategies nest deeply, so hypothesis finds their repr long; only the repr, not the test, suffers.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_ODD_STRINGS = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "﻿",
        "NaN",
        "Infinity",
        "-0",
        "1e999",
        "<script>alert(1)</script>",
        "{{ x }}",
        "'; DROP TABLE x; --",
        "a" * 300,
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    _ODD_STRINGS,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=15,
)
TIMESTAMPS = st.one_of(
    st.sampled_from(
        [
            "2026-11-23T10:00:00Z",
            "2026-11-23T10:00:00.123+05:30",
            "2026-02-30T00:00:00Z",
            "yesterday",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
        ]
    ),
    SCALARS,
)


def _maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly `value`, one time in eight any JSON at all: most inputs get deep, some fail early."""
    return st.integers(0, 7).flatmap(lambda roll: JSON_VALUES if roll == 0 else value)


EVENTS = st.fixed_dictionaries(
    {
        "type": _maybe(st.sampled_from(["identify", "track", "page", "screen", "group"])),
        "userId": _maybe(st.text(min_size=1, max_size=20)),
        "messageId": _maybe(st.uuids().map(str)),
        "event": _maybe(st.text(min_size=1, max_size=20)),
        "groupId": _maybe(st.text(min_size=1, max_size=20)),
    },
    optional={
        "anonymousId": _maybe(st.text(min_size=1, max_size=20)),
        "name": _maybe(st.text(max_size=20)),
        "traits": _maybe(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5)),
        "properties": _maybe(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5)),
        "context": JSON_VALUES,
        "timestamp": TIMESTAMPS,
        "sentAt": TIMESTAMPS,
    },
)
BATCHES = _maybe(st.builds(lambda batch: {"batch": batch}, st.lists(EVENTS, max_size=5)))


def _assert_clean_answer(response: Any, sent: Any) -> None:
    event(f"status {response.status_code}")
    assert response.status_code < 500, (sent, response.text)
    if response.status_code >= 400:
        assert response.json().get("message"), (sent, response.text)


@FUZZ
@given(path=st.sampled_from(["batch", "track", "identify", "page", "screen", "group"]), data=st.data())
def test_any_event_body_is_accepted_or_refused_with_a_message(
    client: TestClient, tenant: Tenant, path: str, data: st.DataObject
) -> None:
    body = data.draw(BATCHES if path == "batch" else _maybe(EVENTS))
    response = client.post(
        f"/api/public/apps/{path}",
        content=json.dumps(body),
        headers={"authorization": tenant.write_key, "content-type": "application/json"},
    )
    _assert_clean_answer(response, body)


@settings(FUZZ, max_examples=15)
@given(batch=st.lists(EVENTS, min_size=1, max_size=5))
def test_accepted_fuzzed_events_stay_readable(
    client: TestClient, parent: ParentAccount, tenant: Tenant, batch: list[Any]
) -> None:
    response = client.post(
        "/api/public/apps/batch",
        content=json.dumps({"batch": batch}),
        headers={"authorization": tenant.write_key, "content-type": "application/json"},
    )
    _assert_clean_answer(response, batch)

    listed = client.get(
        "/api/admin/events",
        params={"workspaceId": tenant.id, "limit": 200},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    assert listed.status_code == 200, listed.text
    if response.status_code == 204:
        assert listed.json()["count"] >= 1


_OPERATORS = st.one_of(
    st.fixed_dictionaries({"type": st.just("Equals"), "value": _maybe(st.text(max_size=10))}),
    st.fixed_dictionaries({"type": st.just("NotEquals"), "value": _maybe(st.integers())}),
    st.fixed_dictionaries({"type": st.sampled_from(["Exists", "NotExists"])}),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["GreaterThanOrEqual", "LessThan"]),
            "value": _maybe(st.floats(allow_nan=False)),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("Within"), "windowSeconds": _maybe(st.integers(min_value=-5, max_value=10**12))}
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("HasBeen"),
            "comparator": _maybe(st.sampled_from(["GTE", "LT"])),
            "value": SCALARS,
            "windowSeconds": _maybe(st.integers()),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("AbsoluteTimestamp"),
            "direction": _maybe(st.sampled_from(["before", "after"])),
            "absoluteTimestamp": TIMESTAMPS,
        }
    ),
    JSON_VALUES,
)
_PATHS = _maybe(
    st.sampled_from(
        ["plan", "$.plan", "a.b[0].c", "$['weird key']", "", "$..x", "a[", "x'); DROP", "a.b.c.d.e.f.g"]
    )
)
_PROPERTY_FILTERS = st.lists(st.fixed_dictionaries({"path": _PATHS, "operator": _OPERATORS}), max_size=2)
_TIMES = _maybe(st.floats(min_value=-1, max_value=1e9, allow_nan=False))
_LEAVES = st.one_of(
    st.fixed_dictionaries({"type": st.just("Trait"), "path": _PATHS, "operator": _OPERATORS}),
    st.fixed_dictionaries(
        {"type": st.just("Performed"), "event": _maybe(st.text(max_size=10))},
        optional={
            "times": _TIMES,
            "timesOperator": _maybe(st.sampled_from(["=", ">=", "<"])),
            "withinSeconds": _TIMES,
            "properties": _PROPERTY_FILTERS,
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("LastPerformed"), "event": _maybe(st.text(max_size=10))},
        optional={"whereProperties": _PROPERTY_FILTERS, "hasProperties": _PROPERTY_FILTERS},
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("Email"),
            "event": _maybe(st.sampled_from(["DFEmailOpened", "DFEmailClicked"])),
            "templateId": _maybe(st.uuids().map(str)),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("SubscriptionGroup"),
            "subscriptionGroupId": _maybe(st.uuids().map(str)),
            "subscriptionGroupType": _maybe(st.sampled_from(["OptIn", "OptOut"])),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("RandomBucket"),
            "percent": _maybe(st.floats(min_value=-1, max_value=2, allow_nan=False)),
        }
    ),
    st.fixed_dictionaries({"type": st.just("Includes"), "path": _PATHS, "item": _maybe(st.text(max_size=5))}),
    st.fixed_dictionaries({"type": st.sampled_from(["Broadcast", "Everyone"])}),
    JSON_VALUES,
)
_ENTRY_ONLY = st.one_of(
    st.fixed_dictionaries({"type": st.just("Manual"), "version": _maybe(st.integers())}),
    st.fixed_dictionaries(
        {"type": st.just("KeyedPerformed"), "event": _maybe(st.text(max_size=5)), "key": _PATHS}
    ),
)


@st.composite
def segment_definitions(draw: st.DrawFn) -> Any:
    """A tree of And/Or nodes over leaves, with ids that sometimes dangle, repeat or form a cycle."""
    leaves = draw(st.lists(_LEAVES, min_size=0, max_size=4))
    nodes: list[Any] = []
    for index, leaf in enumerate(leaves):
        node = {"id": f"n{index}", **leaf} if isinstance(leaf, dict) else leaf
        nodes.append(node)
    ids = [f"n{index}" for index in range(len(nodes))] + ["missing", "root"]
    entry_kind = draw(st.sampled_from(["And", "Or", "leaf", "entry-only"]))
    if entry_kind in ("And", "Or"):
        entry: Any = {
            "type": entry_kind,
            "id": "root",
            "children": draw(st.lists(st.sampled_from(ids), max_size=4)),
        }
    elif entry_kind == "leaf":
        leaf = draw(_LEAVES)
        entry = {"id": "root", **leaf} if isinstance(leaf, dict) else leaf
    else:
        entry = {"id": "root", **draw(_ENTRY_ONLY)}
    return draw(_maybe(st.just({"entryNode": entry, "nodes": nodes})))


@settings(FUZZ, max_examples=120)
@given(definition=segment_definitions())
def test_any_segment_definition_is_saved_and_computes_or_is_refused(
    client: TestClient, parent: ParentAccount, tenant: Tenant, definition: Any
) -> None:
    response = client.put(
        "/api/admin/segments",
        json={"workspaceId": tenant.id, "name": "fuzzed", "definition": definition},
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    _assert_clean_answer(response, definition)
    if response.status_code == 200:
        client.app.state.compute.compute(tenant.id, {response.json()["id"]})  # type: ignore[attr-defined]


_CONTENTS = st.dictionaries(
    st.sampled_from(["body", "subject", "from", "text"]),
    _maybe(
        st.fixed_dictionaries(
            {
                "type": _maybe(st.sampled_from(["PlainText", "Mjml", "Emailo"])),
                "value": _maybe(st.text(max_size=60)),
            }
        )
    ),
    max_size=3,
)


@FUZZ
@given(
    contents=_CONTENTS,
    channel=_maybe(st.sampled_from(["Email", "Sms", "Webhook", "MobilePush"])),
    user=_maybe(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3)),
)
def test_any_render_request_renders_or_is_refused(
    client: TestClient, parent: ParentAccount, tenant: Tenant, contents: Any, channel: Any, user: Any
) -> None:
    body = {"workspaceId": tenant.id, "channel": channel, "contents": contents, "userProperties": user}
    response = client.post(
        "/api/admin/content/templates/render",
        json=body,
        headers={"authorization": f"Bearer {parent.admin_key}"},
    )
    _assert_clean_answer(response, body)
