"""Journey execution on durable SQL state (Dittofeed §7.3), on SQLite and Postgres, walked on a clock the
tests hold: runs start from segment membership or track events, wait at delays and wait-for nodes until
due, branch, and send each message exactly once through the send ledger — across transient failures,
concurrent workers and a worker that dies mid-way.

Membership and user properties are written to their SQL copies directly, as the compute loop would;
messages go through the Test email provider, or SendGrid's local stand-in where a test needs a provider
that fails or counts requests.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from engine.events import EventRow
from engine.journeys.entry import enter_from_events
from engine.journeys.runner import JourneyRunner
from engine.messaging.ledger import WriteEvents, derive_message_id
from engine.messaging.provider_settings import upsert_provider_config
from engine.messaging.providers.base import ProviderContext
from engine.messaging.send import SendServices
from engine.storage.assignment_models import SegmentAssignment, UserPropertyAssignment
from engine.storage.journey_models import Journey, JourneyRun, JourneyStatus, RunState
from engine.storage.models import Workspace, WorkspaceStatus
from engine.storage.resource_models import MessageTemplate, Segment, UserProperty
from engine.storage.send_models import MessageSend, SendState
from engine.workspaces import create_workspace
from tests.support.provider_servers import SENDGRID_API_KEY, ProviderServers

MONDAY = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 09:00 UTC on Monday 2 March 2026
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
SENT = "DFInternalMessageSent"
PROCESSED = "DFJourneyNodeProcessed"
EXIT_NODE = {"type": "ExitNode"}


# -- the world ------------------------------------------------------------------------------------------


class Shop:
    """A bootstrapped workspace (Test email provider by default; `email` and `timezone` user properties)
    with segments, templates and journeys of its own."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        with sessions.begin() as session:
            self.id = create_workspace(session, f"shop-{uuid.uuid4()}").id
            self.properties = {
                p.name: p.id
                for p in session.scalars(select(UserProperty).where(UserProperty.workspace_id == self.id))
            }

    def segment(self, name: str) -> str:
        definition = {"entryNode": {"type": "Trait", "id": "1", "path": name, "operator": {"type": "Exists"}}}
        with self.sessions.begin() as session:
            segment = Segment(workspace_id=self.id, name=name, definition={**definition, "nodes": []})
            session.add(segment)
            session.flush()
            return segment.id

    def template(self, subject: str, *, body: str = "Hello {{ user.id }}") -> str:
        definition = {"type": "Email", "from": "shop@example.com", "subject": subject, "body": body}
        with self.sessions.begin() as session:
            template = MessageTemplate(workspace_id=self.id, name=subject, definition=definition)
            session.add(template)
            session.flush()
            return template.id

    def journey(self, definition: dict[str, Any], *, can_run_multiple: bool = False) -> str:
        with self.sessions.begin() as session:
            journey = Journey(
                workspace_id=self.id,
                name=f"journey-{uuid.uuid4()}",
                status=JourneyStatus.RUNNING,
                definition=definition,
                can_run_multiple=can_run_multiple,
            )
            session.add(journey)
            session.flush()
            return journey.id

    def update_journey(self, journey_id: str, **values: Any) -> None:
        with self.sessions.begin() as session:
            journey = session.get(Journey, journey_id)
            assert journey is not None
            for name, value in values.items():
                setattr(journey, name, value)

    def user(self, user_id: str, **properties: Any) -> None:
        """Give the user property values (a missing user property is created as a trait)."""
        with self.sessions.begin() as session:
            for name, value in properties.items():
                if name not in self.properties:
                    prop = UserProperty(
                        workspace_id=self.id, name=name, definition={"type": "Trait", "path": name}
                    )
                    session.add(prop)
                    session.flush()
                    self.properties[name] = prop.id
                session.merge(
                    UserPropertyAssignment(
                        workspace_id=self.id,
                        user_property_id=self.properties[name],
                        user_id=user_id,
                        value=json.dumps(value),
                        assigned_at=MONDAY - DAY,
                    )
                )

    def member(self, segment_id: str, user_id: str, at: datetime, *, in_segment: bool = True) -> None:
        with self.sessions.begin() as session:
            session.merge(
                SegmentAssignment(
                    workspace_id=self.id,
                    segment_id=segment_id,
                    user_id=user_id,
                    in_segment=in_segment,
                    assigned_at=at,
                )
            )

    def runs(self, journey_id: str, user_id: str | None = None) -> list[JourneyRun]:
        with self.sessions() as session:
            statement = select(JourneyRun).where(
                JourneyRun.workspace_id == self.id, JourneyRun.journey_id == journey_id
            )
            if user_id is not None:
                statement = statement.where(JourneyRun.user_id == user_id)
            return list(session.scalars(statement.order_by(JourneyRun.started_at, JourneyRun.id)))

    def run(self, journey_id: str, user_id: str) -> JourneyRun:
        (run,) = self.runs(journey_id, user_id)
        return run

    def sends(self, user_id: str) -> list[MessageSend]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(MessageSend).where(
                        MessageSend.workspace_id == self.id, MessageSend.user_id == user_id
                    )
                )
            )


@dataclass
class Outbox:
    """The `write_events` of a runner: keeps every event row it is handed."""

    rows: list[EventRow] = field(default_factory=list)

    def __call__(self, rows: Sequence[EventRow]) -> None:
        self.rows.extend(rows)

    def events(self, event: str, user_id: str | None = None) -> list[dict[str, Any]]:
        messages = [json.loads(row.message_raw) for row in self.rows]
        return [m for m in messages if m["event"] == event and user_id in (None, m.get("userId"))]

    def sent(self, user_id: str) -> list[str]:
        """The message nodes the user was sent, in order."""
        return [m["properties"]["nodeId"] for m in self.events(SENT, user_id)]

    def path(self, user_id: str) -> list[str]:
        """The nodes the user's runs were recorded passing, in order."""
        return [m["properties"]["nodeId"] for m in self.events(PROCESSED, user_id)]


@pytest.fixture
def shop(sessions: sessionmaker[Session]) -> Shop:
    return Shop(sessions)


@pytest.fixture(scope="module")
def stand_in_servers() -> Iterator[ProviderServers]:
    servers = ProviderServers().start()
    yield servers
    servers.stop()


@pytest.fixture
def services(stand_in_servers: ProviderServers) -> Iterator[SendServices]:
    stand_in_servers.reset()
    with httpx.Client(timeout=5.0) as http:
        yield SendServices(
            ProviderContext(http, {"SendGrid": stand_in_servers.url}), "https://feedgate.example.com"
        )


def runner(
    sessions: sessionmaker[Session],
    services: SendServices,
    outbox: WriteEvents,
    *,
    seed: int = 0,
    **options: Any,
) -> JourneyRunner:
    return JourneyRunner(
        sessions, services, outbox, clock=lambda: MONDAY, rng=random.Random(seed), owner="worker-1", **options
    )


def message(node_id: str, template_id: str, child: str = "ExitNode", **fields: Any) -> dict[str, Any]:
    return {
        "type": "MessageNode",
        "id": node_id,
        "variant": {"type": "Email", "templateId": template_id, **fields.pop("variant", {})},
        "child": child,
        **fields,
    }


def delay(node_id: str, child: str, **variant: Any) -> dict[str, Any]:
    return {"type": "DelayNode", "id": node_id, "variant": variant, "child": child}


def segment_entry(segment_id: str, child: str, **fields: Any) -> dict[str, Any]:
    return {"type": "EntryNode", "segment": segment_id, "child": child, **fields}


def journey_of(entry: dict[str, Any], *nodes: dict[str, Any]) -> dict[str, Any]:
    return {"entryNode": entry, "nodes": list(nodes), "exitNode": EXIT_NODE}


# -- every node type --------------------------------------------------------------------------------------


def test_a_journey_with_every_node_type_walks_each_user_down_their_branch_on_time(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    signed_up, vip, buyer = shop.segment("signedUp"), shop.segment("vip"), shop.segment("buyer")
    templates = {name: shop.template(name) for name in ("welcome-vip", "welcome", "thanks", "nudge")}
    definition = journey_of(
        segment_entry(signed_up, "vip-split"),
        {
            "type": "SegmentSplitNode",
            "id": "vip-split",
            "variant": {
                "type": "Boolean",
                "segment": vip,
                "trueChild": "welcome-vip",
                "falseChild": "welcome",
            },
        },
        message("welcome-vip", templates["welcome-vip"], "a-day"),
        message("welcome", templates["welcome"], "a-day"),
        delay("a-day", "nine-local", type="Second", seconds=86400),
        delay("nine-local", "await-purchase", type="LocalTime", hour=9),
        {
            "type": "WaitForNode",
            "id": "await-purchase",
            "timeoutSeconds": 3 * 86400,
            "timeoutChild": "cohort",
            "segmentChildren": [{"id": "thanks", "segmentId": buyer}],
        },
        message("thanks", templates["thanks"], "rate-limit"),
        {"type": "RateLimitNode", "id": "rate-limit"},
        {
            "type": "RandomCohortNode",
            "id": "cohort",
            "children": [
                {"id": "nudge", "percent": 50, "name": "nudged"},
                {"id": "ExitNode", "percent": 50, "name": "left alone"},
            ],
        },
        message("nudge", templates["nudge"]),
    )
    journey = shop.journey(definition)
    shop.user("ana", email="ana@example.com", timezone="Europe/Paris")
    shop.user("bo", email="bo@example.com", timezone="America/New_York")
    for user in ("ana", "bo"):
        shop.member(signed_up, user, MONDAY - HOUR)
    shop.member(vip, "ana", MONDAY - HOUR)
    outbox = Outbox()
    # Random(1) draws 13.4 first: bo, the only one to reach the cohort, is nudged.
    worker = runner(sessions, services, outbox, seed=1)

    # Monday 09:00 UTC: both enter, split by VIP status, get their welcome and wait a day.
    assert worker.run_due(MONDAY) == 2
    assert outbox.sent("ana") == ["welcome-vip"]
    assert outbox.sent("bo") == ["welcome"]
    assert shop.run(journey, "ana").due_at == MONDAY + DAY

    # Not a second early.
    assert worker.run_due(MONDAY + DAY - timedelta(seconds=1)) == 0

    # Tuesday 09:00 UTC: both wait for 9:00 on their own wall clock next.
    worker.run_due(MONDAY + DAY)
    ana, bo = shop.run(journey, "ana"), shop.run(journey, "bo")
    assert (ana.node_id, bo.node_id) == ("nine-local", "nine-local")
    # Already 10:00 in Paris: Wednesday 09:00 Paris. Only 04:00 in New York: 09:00 there today.
    assert ana.due_at == datetime.fromisoformat("2026-03-04T09:00:00+01:00")
    assert bo.due_at == datetime.fromisoformat("2026-03-03T09:00:00-05:00")

    tuesday_9_new_york = datetime(2026, 3, 3, 14, 0, tzinfo=UTC)
    assert worker.run_due(tuesday_9_new_york) == 1
    bo = shop.run(journey, "bo")
    assert (bo.node_id, bo.state, bo.due_at) == (
        "await-purchase",
        RunState.WAITING,
        tuesday_9_new_york + 3 * DAY,
    )

    wednesday_9_paris = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)
    assert worker.run_due(wednesday_9_paris) == 1
    assert shop.run(journey, "ana").state == RunState.WAITING

    # Thursday: ana buys before her wait times out and is thanked at once; bo keeps waiting.
    thursday = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
    shop.member(buyer, "ana", thursday)
    assert worker.run_due(thursday) == 1
    assert outbox.sent("ana") == ["welcome-vip", "thanks"]
    assert shop.run(journey, "ana").state == RunState.EXITED

    # Friday: bo's wait times out, to the cohort draw.
    assert worker.run_due(tuesday_9_new_york + 3 * DAY - timedelta(seconds=1)) == 0
    assert worker.run_due(tuesday_9_new_york + 3 * DAY) == 1
    assert outbox.sent("bo") == ["welcome", "nudge"]

    assert outbox.path("ana") == [
        "EntryNode", "vip-split", "welcome-vip", "a-day", "nine-local", "await-purchase", "thanks",
        "rate-limit", "ExitNode",
    ]  # fmt: skip
    assert outbox.path("bo") == [
        "EntryNode", "vip-split", "welcome", "a-day", "nine-local", "await-purchase", "cohort", "nudge",
        "ExitNode",
    ]  # fmt: skip
    for user in ("ana", "bo"):
        run = shop.run(journey, user)
        assert (run.state, run.live_key, run.lease_owner) == (RunState.EXITED, None, None)
        assert {send.state for send in shop.sends(user)} == {SendState.SENT}
        assert len(shop.sends(user)) == 2

    (thanks,) = [m for m in outbox.events(SENT, "ana") if m["properties"]["nodeId"] == "thanks"]
    run = shop.run(journey, "ana")
    assert thanks["messageId"] == derive_message_id(shop.id, f"{run.id}-thanks")
    assert thanks["properties"] | {"variant": None} == {
        "workspaceId": shop.id,
        "journeyId": journey,
        "nodeId": "thanks",
        "runId": run.id,
        "templateId": templates["thanks"],
        "channel": "Email",
        "messageId": thanks["messageId"],
        "userId": "ana",
        "variant": None,
    }
    assert thanks["properties"]["variant"]["to"] == "ana@example.com"
    (entry,) = [m for m in outbox.events(PROCESSED, "ana") if m["properties"]["nodeId"] == "EntryNode"]
    assert entry["properties"] == {
        "journeyStartedAt": "2026-03-02T09:00:00Z",
        "journeyId": journey,
        "type": "EntryNode",
        "nodeId": "EntryNode",
    }
    assert entry["messageId"] == derive_message_id(shop.id, f"{run.id}-EntryNode-processed")


def test_a_wait_for_whose_segment_is_already_true_goes_on_at_once(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    signed_up, buyer = shop.segment("signedUp"), shop.segment("buyer")
    journey = shop.journey(
        journey_of(
            segment_entry(signed_up, "await-purchase"),
            {
                "type": "WaitForNode",
                "id": "await-purchase",
                "timeoutSeconds": 3600,
                "timeoutChild": "ExitNode",
                "segmentChildren": [{"id": "thanks", "segmentId": buyer}],
            },
            message("thanks", shop.template("Thanks")),
        )
    )
    shop.user("ana", email="ana@example.com")
    shop.member(signed_up, "ana", MONDAY - HOUR)
    shop.member(buyer, "ana", MONDAY - HOUR)
    outbox = Outbox()

    runner(sessions, services, outbox).run_due(MONDAY)

    assert outbox.sent("ana") == ["thanks"]
    assert shop.run(journey, "ana").state == RunState.EXITED


def test_a_user_property_delay_waits_for_the_users_own_moment(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    signed_up = shop.segment("signedUp")
    journey = shop.journey(
        journey_of(
            segment_entry(signed_up, "before-trial-ends"),
            delay(
                "before-trial-ends",
                "reminder",
                type="UserProperty",
                userProperty="trialEndsAt",
                offsetSeconds=86400,
                offsetDirection="before",
            ),
            message("reminder", shop.template("Your trial ends tomorrow")),
        )
    )
    trial_ends = MONDAY + 10 * DAY
    shop.user("ana", email="ana@example.com", trialEndsAt=int(trial_ends.timestamp() * 1000))
    shop.user("bo", email="bo@example.com", trialEndsAt="2026-01-01T00:00:00Z")  # long past: no wait
    for user in ("ana", "bo"):
        shop.member(signed_up, user, MONDAY - HOUR)
    outbox = Outbox()
    worker = runner(sessions, services, outbox)

    worker.run_due(MONDAY)
    assert outbox.sent("bo") == ["reminder"]
    assert shop.run(journey, "ana").due_at == trial_ends - DAY

    assert worker.run_due(trial_ends - DAY - timedelta(seconds=1)) == 0
    worker.run_due(trial_ends - DAY)
    assert outbox.sent("ana") == ["reminder"]


def test_a_seeded_random_makes_the_cohort_draw_reproducible(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    signed_up = shop.segment("signedUp")
    shop.journey(
        journey_of(
            segment_entry(signed_up, "cohort"),
            {
                "type": "RandomCohortNode",
                "id": "cohort",
                "children": [
                    {"id": "a", "percent": 50, "name": "A"},
                    {"id": "b", "percent": 50, "name": "B"},
                ],
            },
            message("a", shop.template("Variant A")),
            message("b", shop.template("Variant B")),
        )
    )
    users = [f"user-{n:02}" for n in range(20)]
    for user in users:
        shop.user(user, email=f"{user}@example.com")
        shop.member(signed_up, user, MONDAY - HOUR)
    outbox = Outbox()

    runner(sessions, services, outbox, seed=5).run_due(MONDAY)

    draws = random.Random(5)
    expected_a = sum(draws.random() * 100 < 50 for _ in users)
    sent = [node for user in users for node in outbox.sent(user)]
    assert (sent.count("a"), sent.count("b")) == (expected_a, len(users) - expected_a)
    assert 0 < expected_a < len(users)


# -- entry and re-entry -----------------------------------------------------------------------------------


def _leave_and_return(shop: Shop, segment: str, user: str) -> None:
    shop.member(segment, user, MONDAY + HOUR, in_segment=False)
    shop.member(segment, user, MONDAY + 2 * HOUR)


def test_without_can_run_multiple_a_user_never_enters_twice(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    signed_up = shop.segment("signedUp")
    # reEnter alone does not allow re-entry: upstream requires canRunMultiple.
    journey = shop.journey(
        journey_of(segment_entry(signed_up, "hello", reEnter=True), message("hello", shop.template("Hi")))
    )
    shop.user("ana", email="ana@example.com")
    shop.member(signed_up, "ana", MONDAY - HOUR)
    outbox = Outbox()
    worker = runner(sessions, services, outbox)

    worker.run_due(MONDAY)
    _leave_and_return(shop, signed_up, "ana")
    worker.run_due(MONDAY + 3 * HOUR)
    worker.run_due(MONDAY + 4 * HOUR)

    assert len(shop.runs(journey, "ana")) == 1
    assert outbox.sent("ana") == ["hello"]


def test_with_can_run_multiple_a_user_enters_again_after_rejoining_the_segment(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    signed_up = shop.segment("signedUp")
    journey = shop.journey(
        journey_of(segment_entry(signed_up, "hello"), message("hello", shop.template("Hi"))),
        can_run_multiple=True,
    )
    shop.user("ana", email="ana@example.com")
    shop.member(signed_up, "ana", MONDAY - HOUR)
    outbox = Outbox()
    worker = runner(sessions, services, outbox)

    worker.run_due(MONDAY)
    worker.run_due(MONDAY + HOUR / 2)  # still in the segment, never left it: no second run
    assert len(shop.runs(journey, "ana")) == 1

    _leave_and_return(shop, signed_up, "ana")
    worker.run_due(MONDAY + 3 * HOUR)

    first, second = shop.runs(journey, "ana")
    assert (first.state, second.state) == (RunState.EXITED, RunState.EXITED)
    assert outbox.sent("ana") == ["hello", "hello"]
    assert len({m["messageId"] for m in outbox.events(SENT, "ana")}) == 2


def test_with_re_enter_a_user_still_in_the_segment_enters_again_after_exiting(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    signed_up = shop.segment("signedUp")
    journey = shop.journey(
        journey_of(
            segment_entry(signed_up, "weekly", reEnter=True),
            delay("weekly", "digest", type="Second", seconds=7 * 86400),
            message("digest", shop.template("Your week")),
        ),
        can_run_multiple=True,
    )
    shop.user("ana", email="ana@example.com")
    shop.member(signed_up, "ana", MONDAY - HOUR)
    outbox = Outbox()
    worker = runner(sessions, services, outbox)

    worker.run_due(MONDAY)
    worker.run_due(MONDAY + 7 * DAY)  # the digest is sent and the run exits
    worker.run_due(MONDAY + 7 * DAY + HOUR)  # the next period starts the next week
    worker.run_due(MONDAY + 14 * DAY + HOUR)  # the second digest; that run exits too
    worker.run_due(MONDAY + 14 * DAY + 2 * HOUR)  # and the third week begins

    assert outbox.sent("ana") == ["digest", "digest"]
    assert [run.state for run in shop.runs(journey, "ana")] == [
        RunState.EXITED,
        RunState.EXITED,
        RunState.ACTIVE,
    ]


def track(user_id: str | None, event: str, message_id: str, **properties: Any) -> dict[str, Any]:
    return {"userId": user_id, "event": event, "messageId": message_id, "properties": properties}


def test_event_entry_starts_one_run_per_key_while_it_is_live_and_none_after_unless_it_may_run_again(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    keyed = shop.journey(
        journey_of(
            {"type": "EventEntryNode", "event": "Order*", "key": "order.id", "child": "an-hour"},
            delay("an-hour", "receipt", type="Second", seconds=3600),
            message("receipt", shop.template("Your order")),
        )
    )
    unkeyed = shop.journey(
        journey_of(
            {"type": "EventEntryNode", "event": "SignedUp", "child": "hello"},
            message("hello", shop.template("Hi")),
        )
    )
    shop.user("ana", email="ana@example.com")
    outbox = Outbox()
    worker = runner(sessions, services, outbox)

    def enter(*events: dict[str, Any]) -> int:
        with sessions.begin() as session:
            return enter_from_events(session, shop.id, events, MONDAY)

    started = enter(
        track("ana", "OrderPlaced", "m1", order={"id": 7}),
        track("ana", "OrderPlaced", "m2", order={"id": 7}),  # the same key as m1: the same run
        track("ana", "OrderPaid", "m3", order={"id": 8.0}),
        track("ana", "Browsed", "m4", order={"id": 9}),  # another event
        track("bo", "OrderPlaced", "m5", cart={}),  # no key
        track(None, "OrderPlaced", "m6", order={"id": 10}),  # no user
        track("ana", "SignedUp", "m7"),
        track("ana", "SignedUp", "m7"),  # a repeat: its messageId is its key
        track("ana", "SignedUp", "m8"),
    )
    assert started == 4
    assert enter(track("ana", "OrderPlaced", "m1", order={"id": 7})) == 0  # m1 again, still live

    seven, eight = sorted(shop.runs(keyed, "ana"), key=lambda run: str(run.triggering_message_id))
    assert (seven.triggering_message_id, seven.event) == ("m1", {"order": {"id": 7}})
    assert eight.triggering_message_id == "m3"
    assert seven.instance_key == derive_message_id(shop.id, "ana-order.id-7")
    assert eight.instance_key == derive_message_id(shop.id, "ana-order.id-8")
    assert {run.triggering_message_id for run in shop.runs(unkeyed, "ana")} == {"m7", "m8"}

    worker.run_due(MONDAY)
    worker.run_due(MONDAY + HOUR)
    receipts = outbox.events(SENT, "ana")
    assert sorted(m["properties"].get("triggeringMessageId") for m in receipts) == ["m1", "m3", "m7", "m8"]
    entries = [
        m["properties"]
        for m in outbox.events(PROCESSED, "ana")
        if m["properties"]["nodeId"] == "EventEntryNode"
    ]
    assert sorted((e["eventKey"], e.get("eventKeyName")) for e in entries) == [
        ("7", "order.id"), ("8", "order.id"), ("m7", None), ("m8", None),
    ]  # fmt: skip

    # Exited: key 7 does not run again, until the journey may run more than once.
    assert enter(track("ana", "OrderPlaced", "m9", order={"id": 7})) == 0
    shop.update_journey(keyed, can_run_multiple=True)
    assert enter(track("ana", "OrderPlaced", "m9", order={"id": 7})) == 1
    assert len(shop.runs(keyed, "ana")) == 3


def test_a_paused_journey_holds_its_runs_and_starts_none_until_it_runs_again(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    signed_up = shop.segment("signedUp")
    journey = shop.journey(
        journey_of(
            segment_entry(signed_up, "an-hour"),
            delay("an-hour", "hello", type="Second", seconds=3600),
            message("hello", shop.template("Hi")),
        )
    )
    for user in ("ana", "bo"):
        shop.user(user, email=f"{user}@example.com")
    shop.member(signed_up, "ana", MONDAY - HOUR)
    outbox = Outbox()
    worker = runner(sessions, services, outbox)
    worker.run_due(MONDAY)

    shop.update_journey(journey, status=JourneyStatus.PAUSED)
    shop.member(signed_up, "bo", MONDAY + HOUR)
    assert worker.run_due(MONDAY + 2 * HOUR) == 0
    assert (shop.run(journey, "ana").node_id, outbox.sent("ana")) == ("an-hour", [])
    assert shop.runs(journey, "bo") == []

    shop.update_journey(journey, status=JourneyStatus.RUNNING)
    worker.run_due(MONDAY + 3 * HOUR)
    worker.run_due(MONDAY + 4 * HOUR)
    assert outbox.sent("ana") == outbox.sent("bo") == ["hello"]


def test_a_run_exits_after_a_delay_once_its_workspace_is_no_longer_active(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    signed_up = shop.segment("signedUp")
    journey = shop.journey(
        journey_of(
            segment_entry(signed_up, "an-hour"),
            delay("an-hour", "hello", type="Second", seconds=3600),
            message("hello", shop.template("Hi")),
        )
    )
    shop.user("ana", email="ana@example.com")
    shop.member(signed_up, "ana", MONDAY - HOUR)
    outbox = Outbox()
    worker = runner(sessions, services, outbox)
    worker.run_due(MONDAY)

    with sessions.begin() as session:
        workspace = session.get(Workspace, shop.id)
        assert workspace is not None
        workspace.status = WorkspaceStatus.PAUSED
    worker.run_due(MONDAY + HOUR)

    assert outbox.sent("ana") == []
    assert outbox.path("ana") == ["EntryNode", "an-hour", "ExitNode"]
    assert shop.run(journey, "ana").state == RunState.EXITED


# The pause is written from inside the event write, which on SQLite runs under the runner's write lock
# (the ledger holds its rows while it records them): only Postgres lets another session write then.
@pytest.mark.parametrize("sql_url", ["postgres"], indirect=True)
def test_a_journey_paused_while_a_run_is_on_its_way_exits_the_run_at_its_next_message(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    signed_up = shop.segment("signedUp")
    journey = shop.journey(
        journey_of(
            segment_entry(signed_up, "first"),
            message("first", shop.template("One"), "second"),
            message("second", shop.template("Two")),
        )
    )
    shop.user("ana", email="ana@example.com")
    shop.member(signed_up, "ana", MONDAY - HOUR)
    outbox = Outbox()

    def pause_after_the_first_send(rows: Sequence[EventRow]) -> None:
        outbox(rows)
        if any(json.loads(row.message_raw)["event"] == SENT for row in rows):
            shop.update_journey(journey, status=JourneyStatus.PAUSED)

    runner(sessions, services, pause_after_the_first_send).run_due(MONDAY)

    assert outbox.sent("ana") == ["first"]
    (early_exit,) = outbox.events("DFJourneyEarlyExit", "ana")
    assert early_exit["properties"]["nodeId"] == "second"
    assert early_exit["properties"]["message"] == "the journey is no longer running"
    assert outbox.path("ana") == ["EntryNode", "first", "second", "ExitNode"]
    assert shop.run(journey, "ana").state == RunState.EXITED


# -- sending ----------------------------------------------------------------------------------------------


def test_a_skipped_message_exits_the_journey_unless_the_node_skips_on_failure(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    signed_up = shop.segment("signedUp")
    journey = shop.journey(
        journey_of(
            segment_entry(signed_up, "first"),
            message("first", shop.template("One"), "second", skipOnFailure=True),
            message("second", shop.template("Two"), "third"),
            message("third", shop.template("Three")),
        )
    )
    shop.member(signed_up, "nomail", MONDAY - HOUR)  # no email: every send is skipped
    outbox = Outbox()

    runner(sessions, services, outbox).run_due(MONDAY)

    assert outbox.path("nomail") == ["EntryNode", "first", "second", "ExitNode"]
    skipped = outbox.events("DFMessageSkipped", "nomail")
    assert [m["properties"]["nodeId"] for m in skipped] == ["first", "second"]
    assert skipped[0]["properties"]["variant"] == {"type": "MissingIdentifier", "identifierKey": "email"}
    assert shop.run(journey, "nomail").state == RunState.EXITED


def _sendgrid_journey(shop: Shop, **node: Any) -> tuple[str, str]:
    with shop.sessions.begin() as session:
        upsert_provider_config(
            session, shop.id, "Email", {"type": "SendGrid", "apiKey": SENDGRID_API_KEY}, set_default=False
        )
    signed_up = shop.segment("signedUp")
    journey = shop.journey(
        journey_of(
            segment_entry(signed_up, "hello"),
            message("hello", shop.template("Hi"), variant={"providerOverride": "SendGrid"}, **node),
        )
    )
    shop.user("ana", email="ana@example.com")
    shop.member(signed_up, "ana", MONDAY - HOUR)
    return journey, signed_up


def test_a_transient_provider_failure_is_retried_after_a_backoff_and_sent_once(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices, stand_in_servers: ProviderServers
) -> None:
    journey, _ = _sendgrid_journey(shop)
    stand_in_servers.answer_next("sendgrid", 500)
    outbox = Outbox()
    worker = runner(sessions, services, outbox)

    worker.run_due(MONDAY)
    run = shop.run(journey, "ana")
    assert (run.node_id, run.state, run.due_at, run.attempts) == (
        "hello",
        RunState.ACTIVE,
        MONDAY + timedelta(seconds=1),
        1,
    )
    assert outbox.sent("ana") == []

    worker.run_due(MONDAY + timedelta(seconds=1))

    requests = stand_in_servers.sent("sendgrid")
    assert len(requests) == 2
    message_id = derive_message_id(shop.id, f"{run.id}-hello")
    assert [r.json()["personalizations"][0]["custom_args"]["messageId"] for r in requests] == [message_id] * 2
    assert outbox.sent("ana") == ["hello"]
    assert outbox.events("DFMessageFailure") == []
    assert outbox.path("ana") == ["EntryNode", "hello", "ExitNode"]


def test_when_every_attempt_fails_the_journey_records_an_early_exit(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices, stand_in_servers: ProviderServers
) -> None:
    journey, _ = _sendgrid_journey(shop, retryCount=2, skipOnFailure=True)
    for _ in range(2):
        stand_in_servers.answer_next("sendgrid", 500)
    outbox = Outbox()
    worker = runner(sessions, services, outbox)

    worker.run_due(MONDAY)
    worker.run_due(MONDAY + timedelta(seconds=1))

    assert len(stand_in_servers.sent("sendgrid")) == 2
    (failure,) = outbox.events("DFMessageFailure", "ana")
    assert failure["properties"]["variant"]["provider"]["type"] == "RetriesExhausted"
    (early_exit,) = outbox.events("DFJourneyEarlyExit", "ana")
    assert early_exit["messageId"] == failure["messageId"]
    assert early_exit["properties"]["message"] == "the message failed after 2 attempts"
    assert shop.run(journey, "ana").state == RunState.EXITED


def test_a_run_left_by_a_dead_worker_is_taken_over_without_sending_its_message_again(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices, stand_in_servers: ProviderServers
) -> None:
    journey, _ = _sendgrid_journey(shop)

    def dies_recording_the_send(rows: Sequence[EventRow]) -> None:
        if any(json.loads(row.message_raw)["event"] == SENT for row in rows):
            raise RuntimeError("killed after the send was settled, before it was recorded")

    doomed = JourneyRunner(sessions, services, dies_recording_the_send, rng=random.Random(0), owner="doomed")
    with pytest.raises(RuntimeError, match="killed"):
        doomed.run_due(MONDAY)
    run = shop.run(journey, "ana")
    (send,) = shop.sends("ana")
    assert (run.lease_owner, run.node_id, send.state, send.recorded_at) == (
        "doomed",
        "hello",
        SendState.SENT,
        None,
    )

    outbox = Outbox()
    survivor = runner(sessions, services, outbox)
    assert survivor.run_due(MONDAY + timedelta(minutes=1)) == 0  # the lease still holds
    assert survivor.run_due(MONDAY + timedelta(minutes=6)) == 1

    assert len(stand_in_servers.sent("sendgrid")) == 1
    (sent,) = outbox.events(SENT, "ana")
    assert sent["messageId"] == send.message_id
    assert outbox.path("ana") == ["hello", "ExitNode"]
    run = shop.run(journey, "ana")
    assert (run.state, run.lease_owner) == (RunState.EXITED, None)
    (send,) = shop.sends("ana")
    assert send.recorded_at is not None


def test_concurrent_workers_walk_each_run_once_and_send_each_message_once(
    shop: Shop, sessions: sessionmaker[Session], services: SendServices
) -> None:
    signed_up = shop.segment("signedUp")
    journey = shop.journey(
        journey_of(segment_entry(signed_up, "hello"), message("hello", shop.template("Hi")))
    )
    users = [f"user-{n:02}" for n in range(30)]
    for user in users:
        shop.user(user, email=f"{user}@example.com")
        shop.member(signed_up, user, MONDAY - HOUR)
    outboxes = [Outbox(), Outbox()]
    workers = [
        JourneyRunner(sessions, services, outbox, rng=random.Random(0), owner=f"worker-{n}", batch_size=4)
        for n, outbox in enumerate(outboxes)
    ]
    start = threading.Barrier(2)
    walked = [0, 0]

    def work(n: int) -> None:
        start.wait()
        walked[n] = workers[n].run_due(MONDAY)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(walked) == len(users)
    sent = [m["userId"] for outbox in outboxes for m in outbox.events(SENT)]
    assert sorted(sent) == users
    assert {run.state for run in shop.runs(journey)} == {RunState.EXITED}
    assert len(shop.runs(journey)) == len(users)
