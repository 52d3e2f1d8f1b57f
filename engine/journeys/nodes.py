"""What each journey node does with a run (Dittofeed §7.3), sending aside (`engine.journeys.messages`):
how a run that reaches a node waits there (`arrival`), and where it goes when it leaves (`departure`).

Both are decisions on facts about the run's user that the runner supplies, so they hold no storage of
their own. A run waits at a delay until its due time, and at a wait-for node until one of its segments is
true for the user or the timeout passes; every other node is left at once.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from engine.journeys.definition import (
    EXIT,
    DelayNode,
    EventEntryNode,
    RandomCohortNode,
    RateLimitNode,
    SegmentEntryNode,
    SegmentSplitNode,
    WaitForNode,
)
from engine.journeys.timing import delay_due, pick_cohort
from engine.storage.journey_models import RunState

# After leaving one of these, a run exits if its workspace is no longer Active (upstream checks after
# its long-running nodes: the entry wait, delays and wait-fors).
LONG_RUNNING = (SegmentEntryNode, DelayNode, WaitForNode)


class RunFacts(Protocol):
    """What nodes may ask about the run's user, as of `now`."""

    now: datetime
    rng: random.Random

    def in_segment(self, segment_id: str) -> bool: ...

    def user_properties(self) -> Mapping[str, Any]: ...


def arrival(node: Any, facts: RunFacts) -> tuple[RunState, datetime]:
    """The state and due time of a run that has just reached `node`."""
    if isinstance(node, DelayNode):
        return RunState.ACTIVE, delay_due(node.variant, facts.now, facts.user_properties())
    if isinstance(node, WaitForNode):
        return RunState.WAITING, facts.now + timedelta(seconds=node.timeoutSeconds)
    return RunState.ACTIVE, facts.now


def departure(node: Any, due_at: datetime | None, facts: RunFacts) -> str | None:
    """The id of the node a run at `node`, due at `due_at`, goes to now; None while it stays.

    Not for message nodes (their outcome is the send's) nor the exit (which ends the run).
    """
    due = due_at is None or due_at <= facts.now
    if isinstance(node, SegmentEntryNode | EventEntryNode):
        return node.child
    if isinstance(node, DelayNode):
        return node.child if due else None
    if isinstance(node, WaitForNode):
        for child in node.segmentChildren:
            if facts.in_segment(child.segmentId):
                return child.id
        return node.timeoutChild if due else None
    if isinstance(node, SegmentSplitNode):
        variant = node.variant
        return variant.trueChild if facts.in_segment(variant.segment) else variant.falseChild
    if isinstance(node, RandomCohortNode):
        return pick_cohort(node.children, facts.rng) or EXIT
    if isinstance(node, RateLimitNode):
        return EXIT  # declared upstream but not implemented: it routes to the exit
    raise TypeError(f"{type(node).__name__} is not left through departure()")
