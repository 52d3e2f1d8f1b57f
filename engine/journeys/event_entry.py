"""Which workspaces have Running event-entry journeys, remembered per process for a while (upstream
caches the same answer for 30 s), so that ingesting a track event asks SQL nothing in the common case
of a workspace without such journeys."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.journeys.definition import EVENT_ENTRY
from engine.journeys.entry import enter_from_events, running_journeys

EVENT_ENTRY_CACHE_SECONDS = 30.0


class EventEntryStarter:
    def __init__(self, ttl_seconds: float = EVENT_ENTRY_CACHE_SECONDS) -> None:
        self._ttl = ttl_seconds
        self._known: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def may_start(self, workspace_id: str) -> bool:
        """False when the workspace is known, lately, to have no Running event-entry journey."""
        with self._lock:
            known = self._known.get(workspace_id)
        return known is None or known[0] < time.monotonic() or known[1]

    def start(
        self, session: Session, workspace_id: str, events: Sequence[Mapping[str, Any]], now: datetime
    ) -> int:
        """Start the runs these track events trigger (the caller commits); remember whether any
        event-entry journey runs in the workspace."""
        has_journeys = next(running_journeys(session, workspace_id, entry=EVENT_ENTRY), None) is not None
        with self._lock:
            self._known[workspace_id] = (time.monotonic() + self._ttl, has_journeys)
        return enter_from_events(session, workspace_id, events, now) if has_journeys else 0
