"""The worker loop's failure log: one traceback per kind of failure, one line per repeat, and the
recovery, so that a database down for minutes does not fill the log with identical tracebacks."""

from __future__ import annotations

import logging
import threading

import pytest

from engine.worker import FailureLog, Worker, run_isolated


class FlakyTask:
    name = "journeys"

    def __init__(self, outcomes: list[Exception | None]) -> None:
        self.outcomes = outcomes
        self.runs = 0

    def run_once(self) -> None:
        outcome = self.outcomes[min(self.runs, len(self.outcomes) - 1)]
        self.runs += 1
        if outcome is not None:
            raise outcome


def run_periods(task: FlakyTask, periods: int) -> None:
    failures = FailureLog(task.name)
    for _ in range(periods):
        run_isolated(task, failures)


def test_a_repeated_failure_is_logged_in_full_once_then_one_line_per_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = ConnectionError("postgres is down")
    task = FlakyTask([down, down, down, None])

    with caplog.at_level(logging.INFO, logger="engine.worker"):
        run_periods(task, 4)

    lines = [
        (record.levelname, record.getMessage(), record.exc_info is not None) for record in caplog.records
    ]
    assert lines == [
        ("ERROR", "worker task journeys failed; retrying next period", True),
        (
            "ERROR",
            "worker task journeys failed again (2 periods in a row): ConnectionError: postgres is down",
            False,
        ),
        (
            "ERROR",
            "worker task journeys failed again (3 periods in a row): ConnectionError: postgres is down",
            False,
        ),
        ("INFO", "worker task journeys recovered after 3 failed period(s)", False),
    ]


def test_a_different_failure_gets_its_own_traceback(caplog: pytest.LogCaptureFixture) -> None:
    task = FlakyTask([ConnectionError("postgres is down"), TimeoutError("clickhouse timed out"), None])

    with caplog.at_level(logging.INFO, logger="engine.worker"):
        run_periods(task, 3)

    assert [record.exc_info is not None for record in caplog.records if record.levelname == "ERROR"] == [
        True,
        True,
    ]


def test_a_failure_after_a_recovery_is_logged_in_full_again(caplog: pytest.LogCaptureFixture) -> None:
    down = ConnectionError("postgres is down")
    task = FlakyTask([down, None, down, None])

    with caplog.at_level(logging.INFO, logger="engine.worker"):
        run_periods(task, 4)

    assert [record.exc_info is not None for record in caplog.records if record.levelname == "ERROR"] == [
        True,
        True,
    ]


def test_the_worker_keeps_running_a_failing_task_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    task = FlakyTask([ConnectionError("postgres is down")])
    stop = threading.Event()
    worker = Worker([(task, 0.01)])
    thread = threading.Thread(target=worker.run, args=(stop,))

    with caplog.at_level(logging.INFO, logger="engine.worker"):
        thread.start()
        while task.runs < 3:
            stop.wait(0.01)
        stop.set()
        thread.join()

    tracebacks = [record for record in caplog.records if record.exc_info is not None]
    assert len(tracebacks) == 1
    assert "failed again" in caplog.text
