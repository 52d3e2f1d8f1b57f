"""The background loop: each registered periodic task runs on its own thread and period.

Tasks are the compute loop, journey steps and broadcast batches. A slow one (a large recompute) does
not hold the others back, and one that fails is logged and retried next period without stopping the
rest.
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
    """Runs each `(task, period_seconds)` every period until `stop` is set."""

    def __init__(self, tasks: Sequence[tuple[PeriodicTask, float]]) -> None:
        self.tasks = tuple(tasks)

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set; returns once every task finished its current period."""
        logger.info("worker started with task(s): %s", [task.name for task, _ in self.tasks])
        threads = [
            threading.Thread(target=self._loop, args=(task, period, stop), name=f"feedgate-{task.name}")
            for task, period in self.tasks
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        logger.info("worker stopped")

    @staticmethod
    def _loop(task: PeriodicTask, period_seconds: float, stop: threading.Event) -> None:
        while not stop.is_set():
            run_isolated(task)
            stop.wait(period_seconds)


def run_isolated(task: PeriodicTask) -> None:
    """Run one period of `task`, logging instead of raising what it raises."""
    try:
        task.run_once()
    except Exception:
        logger.exception("worker task %s failed; retrying next period", task.name)
