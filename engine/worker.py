"""The background loop: runs each registered periodic task, then sleeps until the next period.

Tasks (computed properties, journey timers, broadcast batches, ...) arrive with later issues; the
loop isolates them from each other, so one failing task is logged and retried next period without
stopping the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

logger = logging.getLogger(__name__)


class PeriodicTask(Protocol):
    name: str

    def run_once(self) -> None:
        """Do one period's work; raise to have it logged and retried next period."""


class Worker:
    """Runs `tasks` every `period_seconds` until `stop` is set."""

    def __init__(self, tasks: Sequence[PeriodicTask], period_seconds: float) -> None:
        self.tasks = tuple(tasks)
        self.period_seconds = period_seconds
        self.completed_periods = 0

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set; returns promptly once it is."""
        logger.info("worker started with %d task(s): %s", len(self.tasks), [t.name for t in self.tasks])
        while not stop.is_set():
            self.run_period()
            stop.wait(self.period_seconds)
        logger.info("worker stopped after %d period(s)", self.completed_periods)

    def run_period(self) -> None:
        """Run every task once, isolating failures."""
        for task in self.tasks:
            try:
                task.run_once()
            except Exception:
                logger.exception("worker task %s failed; retrying next period", task.name)
        self.completed_periods += 1
