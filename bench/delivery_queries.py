"""bench/delivery_queries: deliveries search and analysis over ~1M delivery events (embedded chdb),
each against the bare ClickHouse query that answers the same question from the raw events, in one run.

Data: `--messages` sent messages in two workspaces (5:2), Email (SendGrid / SES) and Sms (Twilio), from
8 templates, 5 journeys with 4 message nodes and 7 broadcasts, spread over 30 days, 1% hidden; each
followed by 0–3 status events (delivered, opened, clicked; bounced / failed), one in ten arriving
out of order. All generated inside ClickHouse through the tables' defaults and views, like ingest.

Each figure is the median of `--runs` calls of the engine function (the whole call: every statement
and the Python around it) next to the median of the bare query: one hand-written SELECT over
`internal_events` alone, with no status table, grouping the raw status events itself where the
answer needs statuses. The bench stops with an error when an answer differs from the bare one.

Run: .venv/bin/python bench/delivery_queries.py [--messages N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine import analysis, deliveries
from engine.delivery_facts import fold_pending_statuses
from engine.sent_messages import SentFilter
from engine.storage.event_store import EventStore

_SENT = """
INSERT INTO user_events_v2 (message_raw, message_id, workspace_id, processing_time, server_time)
SELECT
  concat('{"type":"track","event":"DFInternalMessageSent","userId":"', user, '","messageId":"', mid,
    '","timestamp":"', formatDateTime(pt, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC'), '",',
    if(n % 100 = 99, '"context":{"hidden":true},', ''),
    '"properties":{"workspaceId":"', {workspace:String}, '","templateId":"tmpl-', toString(n % 8), '",',
    if(n % 3 = 0, concat('"broadcastId":"broadcast-', toString(n % 7), '"'),
      concat('"journeyId":"journey-', toString(n % 5), '","nodeId":"node-', toString(n % 4), '"')),
    ',"runId":"run-', toString(n % 1000), '","messageId":"', mid, '","userId":"', user, '","variant":',
    if(sms,
      concat('{"type":"Sms","to":"+1555', leftPad(toString(n % 10000000), 7, '0'), '","body":"Your code is ',
        toString(n % 9999), '","provider":{"type":"Twilio","sid":"SM', hex(cityHash64(n)), '"}}'),
      concat('{"type":"Email","from":"', ['news@acme.test', 'billing@acme.test', 'team@acme.test'][1 + n % 3],
        '","to":"', user, '@example.com","subject":"Hello ', user, '","body":"<html><body><p>Hello there,',
        ' this is a message with some body text.</p></body></html>","provider":{"type":"',
        ['SendGrid', 'AmazonSes'][1 + n % 2], '","messageId":"', hex(cityHash64(n)), '"}}')),
    '}}'),
  mid, {workspace:String}, pt, pt
FROM (
  SELECT number AS n, concat({prefix:String}, leftPad(toString(n), 12, '0')) AS mid,
    concat('u', toString(cityHash64(n, 1) % 50000)) AS user, n % 5 = 4 AS sms,
    addMilliseconds({since:DateTime64(3, 'UTC')}, toUInt64(n * {step:Float64})) AS pt
  FROM numbers({messages:UInt64}))
"""

_STATUSES = """
INSERT INTO user_events_v2 (message_raw, message_id, workspace_id, processing_time, server_time)
SELECT
  concat('{"type":"track","event":"', ev, '","userId":"', user, '","messageId":"', smid,
    '","timestamp":"', formatDateTime(et, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC'),
    '","properties":{"workspaceId":"', {workspace:String}, '","messageId":"', mid, '","userId":"', user,
    '","email":"', user, '@example.com"}}'),
  smid, {workspace:String}, addSeconds(pt, 5 + round * 60), addSeconds(pt, 5 + round * 60)
FROM (
  SELECT intDiv(number, {messages:UInt64}) AS round, number % {messages:UInt64} AS n,
    concat({prefix:String}, leftPad(toString(n), 12, '0')) AS mid, concat(mid, '-', toString(round)) AS smid,
    concat('u', toString(cityHash64(n, 1) % 50000)) AS user, n % 5 = 4 AS sms,
    addMilliseconds({since:DateTime64(3, 'UTC')}, toUInt64(n * {step:Float64})) AS pt,
    -- one in ten arrive out of order: later statuses carry earlier event times
    addSeconds(pt, if(cityHash64(n, 9) % 10 = 0, 100 - round * 40, 5 + round * 60)) AS et,
    if(sms, if(cityHash64(n, 3) % 10 = 0, 'DFSmsFailed', 'DFSmsDelivered'),
      if(round = 0, if(cityHash64(n, 3) % 20 = 0, 'DFEmailBounced', 'DFEmailDelivered'),
        if(round = 1, 'DFEmailOpened', 'DFEmailClicked'))) AS ev
  FROM numbers({messages:UInt64} * 3)
  WHERE round < cityHash64(n, 2) % 4 AND NOT (sms AND round > 0))
"""

# Bare: per sent message of the workspace, from the raw internal events, its sent time and latest status.
_BARE_MESSAGES = """
SELECT origin, maxIf(event_time, event = 'DFInternalMessageSent') AS sent_at,
  argMaxIf(event, (event_time, cityHash64(message_id)), event != 'DFInternalMessageSent') AS latest,
  if(latest = '', 'DFInternalMessageSent', latest) AS status,
  maxIf(1, event IN ('DFEmailDelivered', 'DFSmsDelivered')) AS delivered,
  maxIf(1, event = 'DFEmailOpened') AS opened, maxIf(1, event = 'DFEmailClicked') AS clicked,
  maxIf(1, event IN ('DFEmailBounced', 'DFSmsFailed')) AS bounced,
  anyIf(processing_time, event = 'DFInternalMessageSent') AS processed,
  anyIf(channel_type, event = 'DFInternalMessageSent') AS channel
FROM (SELECT if(event = 'DFInternalMessageSent', message_id, origin_message_id) AS origin, event, event_time,
    message_id, processing_time, channel_type
  FROM internal_events WHERE workspace_id = {w:String} AND NOT hidden)
GROUP BY origin HAVING countIf(event = 'DFInternalMessageSent') > 0
"""
_SENT_ROWS = (
    "FROM internal_events WHERE workspace_id = {w:String} AND event = 'DFInternalMessageSent' AND NOT hidden"
)


def generate(store: EventStore, workspace: str, prefix: str, messages: int, since: datetime) -> None:
    step = timedelta(days=30).total_seconds() * 1000 / messages
    params = {"workspace": workspace, "prefix": prefix, "messages": messages, "since": since, "step": step}
    store.command(_SENT, params)
    store.command(_STATUSES, params)


def median_ms(call: Callable[[], Any], runs: int) -> tuple[float, Any]:
    result = call()  # warm-up, and the answer to compare
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=420_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--json", action="store_true", help="end with one JSON summary line (bench/report.py)"
    )
    args = parser.parse_args(argv)

    directory = Path(tempfile.mkdtemp(prefix="feedgate-bench-deliveries-"))
    try:
        store = EventStore.open(f"chdb://{directory / 'chdb'}", "bench")
        since = datetime(2026, 5, 1, tzinfo=UTC)
        until = since + timedelta(days=30)
        big, small = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
        started = time.perf_counter()
        generate(store, big, "00000000-0000-4000-8000-", args.messages * 5 // 7, since)
        generate(store, small, "10000000-0000-4000-8000-", args.messages * 2 // 7, since)
        [(events, sent)] = store.query(
            "SELECT count(), countIf(event = 'DFInternalMessageSent') FROM internal_events"
        )
        print(
            f"data: {events:,} delivery events ({sent:,} sent messages, the rest status events) in two"
            f" workspaces, generated in {time.perf_counter() - started:.1f} s; measured on the larger one"
        )
        started = time.perf_counter()
        changes = sum(fold_pending_statuses(store, workspace) for workspace in (big, small))
        print(
            f"folded into the analysis facts (as the compute loop does): {changes:,} state changes"
            f" in {time.perf_counter() - started:.1f} s"
        )

        def bare(sql: str, **params: Any) -> Callable[[], list[tuple[Any, ...]]]:
            return lambda: store.query(sql, {"w": big, **params})

        def page_ids(page: dict[str, Any]) -> list[str]:
            return [item["originMessageId"] for item in page["items"]]

        month = SentFilter(start=since, end=until)
        cases: list[
            tuple[str, Callable[[], Any], Callable[[Any], Any], Callable[[], Any], Callable[[Any], Any]]
        ] = [
            (
                "search: first page, default sort",
                lambda: deliveries.search_deliveries(store, big, deliveries.DeliveryFilter()),
                page_ids,
                bare(
                    f"SELECT message_id, properties {_SENT_ROWS}"
                    " ORDER BY event_time DESC, message_id LIMIT 20"
                ),
                lambda rows: [row[0] for row in rows],
            ),
            (
                "search: one template",
                lambda: deliveries.search_deliveries(
                    store, big, deliveries.DeliveryFilter(SentFilter(template_ids=["tmpl-3"]))
                ),
                page_ids,
                bare(
                    f"SELECT message_id, properties {_SENT_ROWS} AND template_id = 'tmpl-3'"
                    " ORDER BY event_time DESC, message_id LIMIT 20"
                ),
                lambda rows: [row[0] for row in rows],
            ),
            (
                "search: sorted by status",
                lambda: deliveries.search_deliveries(
                    store, big, deliveries.DeliveryFilter(), sort=deliveries.DeliverySort("status", "Asc")
                ),
                page_ids,
                bare(f"SELECT origin FROM ({_BARE_MESSAGES}) ORDER BY status, sent_at DESC, origin LIMIT 20"),  # noqa: S608
                lambda rows: [row[0] for row in rows],
            ),
            (
                "search: status = DFEmailOpened",
                lambda: deliveries.search_deliveries(
                    store, big, deliveries.DeliveryFilter(statuses=["DFEmailOpened"])
                ),
                page_ids,
                bare(
                    f"SELECT origin FROM ({_BARE_MESSAGES}) WHERE status = 'DFEmailOpened'"  # noqa: S608
                    " ORDER BY sent_at DESC, origin LIMIT 20"
                ),
                lambda rows: [row[0] for row in rows],
            ),
            (
                "count: status = DFEmailOpened",
                lambda: deliveries.count_deliveries(
                    store, big, deliveries.DeliveryFilter(statuses=["DFEmailOpened"])
                ),
                lambda count: count,
                bare(f"SELECT count() FROM ({_BARE_MESSAGES}) WHERE status = 'DFEmailOpened'"),  # noqa: S608
                lambda rows: rows[0][0],
            ),
            (
                "chart-data: 30 days (6 hours)",
                lambda: analysis.chart_data(store, big, analysis.AnalysisFilter(month)),
                lambda chart: [point["count"] for point in chart["data"]],
                bare(
                    f"SELECT toStartOfInterval(processing_time, INTERVAL 6 HOUR) AS b, count() {_SENT_ROWS}"
                    " AND processing_time BETWEEN {s:DateTime64(3, 'UTC')} AND {e:DateTime64(3, 'UTC')}"
                    " GROUP BY b ORDER BY b",
                    s=since,
                    e=until,
                ),
                lambda rows: [row[1] for row in rows],
            ),
            (
                "chart-data: by message state",
                lambda: analysis.chart_data(
                    store, big, analysis.AnalysisFilter(month), group_by="messageState"
                ),
                lambda chart: [point["count"] for point in chart["data"]],
                bare(
                    "SELECT toStartOfInterval(processed, INTERVAL 6 HOUR) AS b,"  # noqa: S608
                    " arrayJoin(arrayFilter((s, f) -> f = 1,"
                    " ['sent', 'delivered', 'opened', 'clicked', 'bounced'],"
                    " [1, delivered, opened, clicked, bounced])) AS state, count()"
                    f" FROM ({_BARE_MESSAGES}) GROUP BY b, state ORDER BY b, state"
                ),
                lambda rows: [row[2] for row in rows],
            ),
            (
                "summary: Email",
                lambda: analysis.summary(store, big, analysis.AnalysisFilter(month), channel="Email"),
                lambda result: result["summary"],
                bare(
                    "SELECT countIf(delivered OR opened OR clicked), count(), countIf(opened OR clicked),"  # noqa: S608
                    f" countIf(clicked), countIf(bounced) FROM ({_BARE_MESSAGES}) WHERE channel = 'Email'"
                ),
                lambda rows: dict(
                    zip(("deliveries", "sent", "opens", "clicks", "bounces"), rows[0], strict=True)
                ),
            ),
        ]
        failed = []
        rows: list[dict[str, Any]] = []
        print(f"{'query':<34} {'ours':>9} {'bare':>9} {'ratio':>6}")
        for name, ours, ours_answer, raw, raw_answer in cases:
            ours_ms, ours_result = median_ms(ours, args.runs)
            bare_ms, bare_result = median_ms(raw, args.runs)
            agrees = ours_answer(ours_result) == raw_answer(bare_result)
            failed += [] if agrees else [name]
            print(
                f"{name:<34} {ours_ms:>6.1f} ms {bare_ms:>6.1f} ms {ours_ms / bare_ms:>5.2f}x"
                + ("" if agrees else "  ANSWERS DIFFER")
            )
            rows.append(
                {
                    "workload": f"deliveries {name}",
                    "figure": ours_ms,
                    "bare": bare_ms,
                    "unit": "ms",
                    "better": "lower",
                }
            )
        if failed:
            print(f"answers differ from the bare queries: {failed}", file=sys.stderr)
            return 1
        if args.json:
            size = f"{events:,} delivery events"
            print(json.dumps({"bench": "delivery_queries", "size": size, "rows": rows}))
        return 0
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
