"""bench/segments: computing 10 segments of mixed types over 100k users and 2M events (embedded chdb,
SQLite), against the bare ClickHouse queries for the same definitions, all measured in one run.

Phases, in order:

1. data: `--events` events for `--users` users generated inside ClickHouse (one in ten an identify, the
   rest track events over 60 days, a few of them opt-out changes), inserted through the table's defaults like
   real ingest. Not timed against anything; printed for reference.
2. full: one run of the compute loop (`compute_workspace`) over the 10 segments, from nothing: state,
   assignments, and the copy of every membership to SQL.
3. incremental: `--new-events` more events arrive, and the loop runs again; `--rounds` times, a minute
   apart, reporting the median round (one round is a fraction of a second: a single one is noisy).
4. bare: for each definition, one hand-written SELECT that counts its members straight from
   `user_events_v2`, with no state, no assignments and no copy: the least work ClickHouse can do to
   answer the same question. Run over all events after phase 3.

Every segment's member count in the SQL copy must equal its bare count: the bench stops with an error
when they differ, so it cannot report a fast wrong answer.

Run: .venv/bin/python bench/segments.py [--users N] [--events N] [--new-events N]
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine.compute.loop import ComputeSummary, compute_workspace
from engine.storage.assignment_models import SegmentAssignment
from engine.storage.db import make_engine, make_session_factory
from engine.storage.event_store import EventStore
from engine.storage.migrate import upgrade_database
from engine.storage.models import Workspace
from engine.storage.resource_models import Segment

_GENERATE = """
INSERT INTO user_events_v2 (message_raw, message_id, workspace_id, processing_time, server_time)
SELECT
  if(round < 2,
    concat('{"type":"identify","userId":"u', toString(user), '","timestamp":"', ts,
      '","traits":{"plan":"', ['free', 'pro', 'trial'][1 + cityHash64(n, 2) % 3],
      '","age":', toString(cityHash64(n, 3) % 80),
      ',"tags":', if(cityHash64(n, 4) % 10 = 0, '["vip","beta"]', '["beta"]'),
      ',"email":"u', toString(user), '@example.com"}}'),
    if(round = 19 AND user % 10 = 0,
      concat('{"type":"track","userId":"u', toString(user), '","timestamp":"', ts,
        '","event":"DFSubscriptionChange","properties":{"subscriptionId":"g","action":"Unsubscribe"}}'),
      concat('{"type":"track","userId":"u', toString(user), '","timestamp":"', ts, '","event":"',
        ['LOGIN', 'ORDER_PLACED', 'PAGE_VIEW', 'CART'][1 + cityHash64(n, 5) % 4],
        '","properties":{"total":', toString(cityHash64(n, 6) % 500),
        ',"store":"', ['web', 'app'][1 + cityHash64(n, 7) % 2], '"}}'))),
  toString(generateUUIDv4(n)),
  {workspace:String},
  addMilliseconds({since:DateTime64(3, 'UTC')}, n),
  addMilliseconds({since:DateTime64(3, 'UTC')}, n)
FROM (
  SELECT number AS n, (number + {seed:UInt64}) % {users:UInt64} AS user,
    cityHash64(number, {seed:UInt64}, 1) % 20 AS round,
    formatDateTime(subtractSeconds({now:DateTime64(3, 'UTC')}, cityHash64(n, {seed:UInt64}) % 5184000),
      '%Y-%m-%dT%H:%i:%SZ', 'UTC') AS ts
  FROM numbers({events:UInt64}))
"""


def _trait(node_id: str, path: str, operator: dict[str, Any]) -> dict[str, Any]:
    return {"id": node_id, "type": "Trait", "path": path, "operator": operator}


def _performed(node_id: str, event: str, times: int, within: int = 0) -> dict[str, Any]:
    node = {"id": node_id, "type": "Performed", "event": event, "times": times, "timesOperator": ">="}
    return {**node, "withinSeconds": within} if within else node


def _single(node: dict[str, Any]) -> dict[str, Any]:
    return {"entryNode": {**node, "id": "entry"}, "nodes": []}


_DAY = 86_400
_PLAN = (
    "argMaxIf(JSONExtractString(properties, 'plan'), (event_time, message_id),"
    " {identify} AND JSONExtractString(properties, 'plan') != '')"
)
_IDENTIFY = "event_type = 'identify'"


def _uniq(event: str, within: int = 0) -> str:
    # A window counts events by time bucket of window/10 clamped to [1 s, 1 day] (Dittofeed's
    # precision, §9.3), so the bare query rounds event times down the same way.
    bucket = f"toStartOfInterval(event_time, INTERVAL {max(1, min(_DAY, within // 10))} SECOND)"
    recent = f" AND {bucket} >= subtractSeconds({{now:DateTime64(3, 'UTC')}}, {within})" if within else ""
    return f"uniqIf(message_id, event_type = 'track' AND event = '{event}'{recent})"


def _plan() -> str:
    return _PLAN.format(identify=_IDENTIFY)


# (name, definition, the bare query's per-user aggregates, the bare membership condition)
SEGMENTS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "pro plan",
        _single(_trait("t", "plan", {"type": "Equals", "value": "pro"})),
        f"{_plan()} AS a",
        "a = 'pro'",
    ),
    (
        "adults",
        _single(_trait("t", "age", {"type": "GreaterThanOrEqual", "value": 40})),
        "argMaxIf(JSONExtractRaw(properties, 'age'), (event_time, message_id),"
        f" {_IDENTIFY} AND JSONHas(properties, 'age')) AS a",
        "toFloat64OrNull(a) >= 40",
    ),
    (
        "frequent buyers",
        _single(_performed("p", "ORDER_PLACED", 3)),
        f"{_uniq('ORDER_PLACED')} AS a",
        "a >= 3",
    ),
    (
        "active this week",
        _single(_performed("p", "LOGIN", 1, 7 * _DAY)),
        f"{_uniq('LOGIN', 7 * _DAY)} AS a",
        "a >= 1",
    ),
    (
        "last order on web",
        _single(
            {
                "id": "l",
                "type": "LastPerformed",
                "event": "ORDER_PLACED",
                "hasProperties": [{"path": "store", "operator": {"type": "Equals", "value": "web"}}],
            }
        ),
        "argMaxIf(JSONExtractString(properties, 'store'), (event_time, message_id),"
        " event_type = 'track' AND event = 'ORDER_PLACED') AS a",
        "a = 'web'",
    ),
    (
        "vip",
        _single({"id": "i", "type": "Includes", "path": "tags", "item": "vip"}),
        "argMaxIf(JSONExtractRaw(properties, 'tags'), (event_time, message_id),"
        f" {_IDENTIFY} AND JSONHas(properties, 'tags')) AS a",
        "has(JSONExtract(a, 'Array(String)'), 'vip')",
    ),
    (
        "trials with a cart",
        {
            "entryNode": {"id": "and", "type": "And", "children": ["t", "p"]},
            "nodes": [_trait("t", "plan", {"type": "Equals", "value": "trial"}), _performed("p", "CART", 1)],
        },
        f"{_plan()} AS a, {_uniq('CART')} AS b",
        "a = 'trial' AND b >= 1",
    ),
    (
        "subscribed to g",
        _single(
            {
                "id": "s",
                "type": "SubscriptionGroup",
                "subscriptionGroupId": "g",
                "subscriptionGroupType": "OptOut",
            }
        ),
        "argMaxIf(JSONExtractString(properties, 'action'), (event_time, message_id), event_type = 'track'"
        " AND event = 'DFSubscriptionChange' AND JSONExtractString(properties, 'subscriptionId') = 'g') AS a",
        "a != 'Unsubscribe'",
    ),
    (
        "Sample",
        _single({"id": "r", "type": "RandomBucket", "percent": 0.3}),
        "1 AS a",
        f"reinterpretAsUInt64(reverse(substring(MD5(concat(user_id, 'Sample')), 1, 8))) < {int(0.3 * 2**64)}",
    ),
    (
        "free or big spenders",
        {
            "entryNode": {"id": "or", "type": "Or", "children": ["t", "p"]},
            "nodes": [
                _trait("t", "plan", {"type": "Equals", "value": "free"}),
                _performed("p", "ORDER_PLACED", 5, 30 * _DAY),
            ],
        },
        f"{_plan()} AS a, {_uniq('ORDER_PLACED', 30 * _DAY)} AS b",
        "a = 'free' OR b >= 5",
    ),
]


def generate(
    store: EventStore, workspace: str, *, users: int, events: int, since: datetime, seed: int
) -> None:
    store.command(
        _GENERATE,
        {
            "workspace": workspace,
            "since": since,
            "now": since,
            "events": events,
            "users": users,
            "seed": seed,
        },
    )


def bare_counts(store: EventStore, workspace: str, now: datetime) -> tuple[dict[str, int], float]:
    counts = {}
    started = time.perf_counter()
    for name, _, aggregates, condition in SEGMENTS:
        [(count,)] = store.query(
            f"SELECT countIf({condition}) FROM (SELECT user_or_anonymous_id AS user_id, {aggregates}"  # noqa: S608
            " FROM user_events_v2 WHERE workspace_id = {workspace:String}"
            " AND processing_time <= {now:DateTime64(3, 'UTC')} GROUP BY user_id)",
            {"workspace": workspace, "now": now},
        )
        counts[name] = int(count)
    return counts, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--new-events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="incremental rounds; the median is reported")
    parser.add_argument(
        "--json", action="store_true", help="end with one JSON summary line (bench/report.py)"
    )
    args = parser.parse_args(argv)

    directory = Path(tempfile.mkdtemp(prefix="feedgate-bench-segments-"))
    try:
        store = EventStore.open(f"chdb://{directory / 'chdb'}", "bench")
        sql = make_engine(f"sqlite:///{directory / 'feedgate.db'}")
        upgrade_database(sql)
        sessions = make_session_factory(sql)
        gc.freeze()  # what `feedgate worker` does once started (gateway/cli.py)
        workspace = str(uuid.uuid4())
        with sessions.begin() as session:
            session.add(Workspace(id=workspace, name="bench"))
            session.add_all(
                Segment(workspace_id=workspace, name=name, definition=definition)
                for name, definition, _, _ in SEGMENTS
            )
        now = datetime.now(UTC)
        started = time.perf_counter()
        generate(
            store, workspace, users=args.users, events=args.events, since=now - timedelta(days=1), seed=1
        )
        seconds = time.perf_counter() - started
        print(f"data: {args.events:,} events for {args.users:,} users generated in {seconds:.1f} s")

        full = compute_workspace(sessions, store, workspace, now=now)
        rounds = []
        for round_ in range(1, max(1, args.rounds) + 1):
            generate(
                store,
                workspace,
                users=args.users,
                events=args.new_events,
                since=now + timedelta(minutes=round_ - 1, seconds=1),
                seed=6 + round_,
            )
            later = now + timedelta(minutes=round_)
            rounds.append(compute_workspace(sessions, store, workspace, now=later))
        incremental = sorted(rounds, key=lambda summary: summary.seconds)[len(rounds) // 2]
        bare, bare_seconds = bare_counts(store, workspace, later)

        _report("full", full, bare_seconds)
        _report(f"incremental after {args.new_events:,} events", incremental, bare_seconds)
        print("  incremental rounds: " + ", ".join(f"{summary.seconds:.2f} s" for summary in rounds))
        print(f"bare ClickHouse queries, same 10 definitions over all events: {bare_seconds:.2f} s")
        with sessions() as session:
            copied = dict(
                session.execute(
                    select(Segment.name, func.count())
                    .join(SegmentAssignment, SegmentAssignment.segment_id == Segment.id)
                    .where(SegmentAssignment.in_segment)
                    .group_by(Segment.name)
                ).all()
            )
        wrong = [name for name in bare if copied.get(name, 0) != bare[name]]
        for name, count in bare.items():
            print(f"  {name:<22} {copied.get(name, 0):>7,} members (bare {count:,})")
        if wrong or full.failed or any(summary.failed for summary in rounds):
            print(f"MISMATCH or failure: {wrong}", file=sys.stderr)
            return 1
        if args.json:
            phases = [("full", full), (f"incremental after {args.new_events:,} events", incremental)]
            rows = [
                {
                    "workload": f"segments: 10 computed, {phase}",
                    "figure": summary.seconds,
                    "bare": bare_seconds,
                    "unit": "s",
                    "better": "lower",
                }
                for phase, summary in phases
            ]
            size = f"{args.users:,} users, {args.events:,} events"
            print(json.dumps({"bench": "segments", "size": size, "rows": rows}))
        return 0
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _report(phase: str, summary: ComputeSummary, bare_seconds: float) -> None:
    print(
        f"{phase}: {summary.seconds:.2f} s for {summary.properties} segments ({summary.copy_seconds:.2f} s"
        f" of copying {summary.changed:,} changed assignments to SQL, alongside the ClickHouse work);"
        f" {summary.seconds / bare_seconds:.2f}x the bare queries"
    )


if __name__ == "__main__":
    sys.exit(main())
