"""bench/load.py runs end to end: a short burst of mixed traffic against a real `feedgate serve` is
answered without a server error or a dropped connection, and every class of traffic gets through.

Figures (throughput, latency, memory) are the bench's business, not this test's: nothing is timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

LOAD = Path(__file__).resolve().parent.parent / "bench" / "load.py"
CLASSES = {
    "ingest batch/20",
    "ingest track",
    "screen deliveries",
    "screen analysis",
    "screen segments",
    "screen broadcasts",
    "admin events",
    "admin deliveries",
    "admin users",
}


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(LOAD), "--json", "--seconds", "5", "--concurrency", "4"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=LOAD.parent.parent,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("{")]
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_the_summary_is_one_json_line_bench_run_can_read(summary: dict[str, Any]) -> None:
    assert summary["workload"] == "load"
    assert summary["unit"] == "req/s"
    assert summary["bare"] is None and summary["ratio"] is None
    assert summary["figure"] == summary["details"]["overall"]["throughput"]
    assert summary["details"]["cpu_count"] >= 1


def test_every_class_of_traffic_makes_progress(summary: dict[str, Any]) -> None:
    classes = summary["details"]["classes"]
    assert set(classes) == CLASSES
    for name, figures in classes.items():
        answered = figures["requests"] - sum(figures["errors"].values())
        assert answered > 0, f"{name}: {figures}"
    assert summary["details"]["events_ingested"] > 0


def test_no_request_gets_a_server_error_or_a_broken_connection(summary: dict[str, Any]) -> None:
    for name, figures in summary["details"]["classes"].items():
        failures = {kind: n for kind, n in figures["errors"].items() if not kind.startswith("4")}
        assert failures == {}, f"{name}: {failures}"
    assert summary["details"]["server_log_first_problems"] == []


def test_the_server_memory_is_sampled(summary: dict[str, Any]) -> None:
    memory = summary["details"]["memory"]
    assert memory["rss_samples"] >= 2
    assert 0 < memory["rss_start_mb"] <= memory["rss_peak_mb"]
