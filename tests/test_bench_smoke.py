"""The page bench (bench/pages.py) at a tiny size, in its own process as bench/run starts it: every
embedded screen answers 200 over real HTTP with deliveries in the workspace (the bench stops with an
error naming the screen otherwise), its table has a row per screen, and the summary line it prints
for bench/run fills one row per screen of the combined report. Timings are printed, never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.report import Outcome, render_table

ROOT = Path(__file__).resolve().parent.parent
SCREENS = [
    "deliveries table",
    "analysis chart, 7 days",
    "analysis chart, 30d by state",
    "segments table",
    "segment editor",
    "templates table",
    "email editor",
    "SMS editor",
    "broadcasts table",
    "broadcast: RECIPIENTS",
    "broadcast: CONTENT",
    "broadcast: CONFIGURATION",
    "broadcast: DELIVERIES",
    "broadcast: EVENTS",
    "journeys table",
    "journey editor",
]
# The screens that read ClickHouse, measured next to the engine calls behind them.
WITH_BARE_FIGURE = {
    "deliveries table",
    "analysis chart, 7 days",
    "analysis chart, 30d by state",
    "segments table",
    "segment editor",
    "broadcast: RECIPIENTS",
    "broadcast: DELIVERIES",
    "broadcast: EVENTS",
    "journeys table",
    "journey editor",
}


@pytest.mark.slow
def test_the_page_bench_opens_every_embedded_screen_and_reports_each() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "bench/pages.py", "--deliveries", "2000", "--requests", "3", "--warmup", "1"]
    finished = subprocess.run(
        [*command, "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr

    lines = finished.stdout.splitlines()
    assert any(line.startswith("data: 2,0") and "sent messages" in line for line in lines)
    header = next(index for index, line in enumerate(lines) if line.startswith("screen "))
    table = lines[header + 1 : header + 1 + len(SCREENS)]
    assert [row[:30].strip() for row in table] == SCREENS

    summary = json.loads(lines[-1])
    assert summary["bench"] == "pages"
    rows = {row["workload"].removeprefix("page TTFB p50: "): row for row in summary["rows"]}
    assert list(rows) == SCREENS
    assert all(row["unit"] == "ms" and row["figure"] > 0 for row in rows.values())
    assert {name for name, row in rows.items() if row["bare"] is not None} == WITH_BARE_FIGURE

    report = render_table([Outcome("pages", 1.0, summary)]).splitlines()
    for screen in SCREENS:
        assert sum(line.startswith(f"page TTFB p50: {screen} ") for line in report) == 1, screen
