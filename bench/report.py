"""bench/report: runs every benchmark one after the other and prints one table of every workload —
feedgate's figure, the bare engine's figure measured in the same run, and the ratio. `bench/run` is
its entry point.

Each bench runs in its own process (chdb belongs to one process) with `--json`, which makes it end
its output with one summary line:

    {"bench": "pages", "size": "1,000,000 deliveries",
     "rows": [{"workload": "...", "figure": 12.3, "bare": 8.1, "unit": "ms", "better": "lower"}]}

`bare` is null when the workload has no bare counterpart; `better` says whether a lower or a higher
figure is the faster one. The ratio is always feedgate's cost over the bare engine's (time ÷ time, or
the bare rate ÷ feedgate's rate): 1.00x is as fast as the bare engine, 2.00x takes twice as long.

Run: bench/run [--quick] [--only NAME,...]   (NAME: ingest, segments, messaging, delivery_queries,
gateway_auth, broadcast, pages)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Bench:
    name: str
    # The sizes are each bench's defaults; `quick` scales them down to a few seconds each.
    quick: tuple[str, ...]
    full: tuple[str, ...] = ()

    @property
    def script(self) -> Path:
        return ROOT / "bench" / f"{self.name}.py"


BENCHES = (
    Bench("ingest", ("--requests", "60", "--rate", "100", "--seconds", "2")),
    Bench("segments", ("--users", "5000", "--events", "100000", "--new-events", "1000")),
    Bench("messaging", ("--users", "1000", "--smtp-users", "200", "--batch", "100")),
    Bench("delivery_queries", ("--messages", "20000", "--runs", "3")),
    Bench(
        "gateway_auth",
        (
            "--requests",
            "100",
        ),
    ),
    Bench(
        "broadcast",
        (
            "--users",
            "2000",
        ),
    ),
    Bench("pages", ("--deliveries", "20000", "--requests", "10", "--warmup", "2")),
    Bench("load", ("--seconds", "10", "--concurrency", "8")),
)


@dataclass(frozen=True)
class Outcome:
    bench: str
    seconds: float
    summary: dict[str, Any] | None
    error: str | None = None


def run_bench(bench: Bench, quick: bool) -> Outcome:
    """Run one bench, echoing its output (indented, to stderr) and keeping its summary line."""
    command = [sys.executable, str(bench.script), *(bench.quick if quick else bench.full), "--json"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    print(f"== {bench.name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    summary = None
    tail: list[str] = []
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(('{"bench"', '{"workload"')):
                summary = as_bench_summary(json.loads(line))
                continue
            print(f"   {line}", end="", file=sys.stderr, flush=True)
            tail = [*tail[-4:], line.strip()]
    seconds = time.perf_counter() - started
    if process.returncode != 0 or summary is None:
        last = tail[-1] if tail else "no output"
        return Outcome(bench.name, seconds, None, f"exit status {process.returncode}: {last}")
    return Outcome(bench.name, seconds, summary)


def as_bench_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """bench/load.py prints one workload with its details; the table wants rows like the others'."""
    if "bench" in summary:
        return summary
    overall = summary["details"]["overall"]
    return {
        "bench": summary["workload"],
        "size": f"{summary['details'].get('cpu_count')} cores",
        "rows": [
            {
                "workload": "mixed load, throughput",
                "figure": summary["figure"],
                "bare": None,
                "unit": summary["unit"],
                "better": "higher",
            },
            {
                "workload": "mixed load, p99",
                "figure": overall["p99_ms"],
                "bare": None,
                "unit": "ms",
                "better": "lower",
            },
        ],
    }


def ratio(row: dict[str, Any]) -> float | None:
    figure, bare = row["figure"], row.get("bare")
    if not bare or not figure:
        return None
    return (
        float(figure) / float(bare) if row.get("better", "lower") == "lower" else float(bare) / float(figure)
    )


def format_figure(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit.endswith("/s"):
        return f"{value:,.0f} {unit}"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.1f} {unit}"


def render_table(outcomes: list[Outcome]) -> str:
    header = ("workload", "feedgate", "bare engine", "ratio")
    lines: list[tuple[str, str, str, str]] = []
    for outcome in outcomes:
        if outcome.summary is None:
            lines.append((f"{outcome.bench}: FAILED ({outcome.error})", "—", "—", "—"))
            continue
        for row in outcome.summary["rows"]:
            found = ratio(row)
            lines.append(
                (
                    row["workload"],
                    format_figure(row["figure"], row["unit"]),
                    format_figure(row.get("bare"), row["unit"]),
                    f"{found:.2f}x" if found is not None else "—",
                )
            )
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(4)]
    rule = "  ".join("-" * width for width in widths)

    def show(line: tuple[str, str, str, str]) -> str:
        first, *rest = line
        return "  ".join(
            [first.ljust(widths[0]), *(cell.rjust(w) for cell, w in zip(rest, widths[1:], strict=True))]
        )

    sizes = "; ".join(
        f"{outcome.bench} {outcome.summary.get('size', '')} ({outcome.seconds:.0f} s)"
        for outcome in outcomes
        if outcome.summary is not None
    )
    return "\n".join(
        [
            show(header),
            rule,
            *(show(line) for line in lines),
            rule,
            "ratio: feedgate's cost over the bare engine's in the same run (1.00x = as fast as bare)",
            f"sizes: {sizes}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes: a check that every bench runs")
    parser.add_argument("--only", help="comma-separated bench names (default: all)")
    args = parser.parse_args(argv)
    chosen = list(BENCHES)
    if args.only:
        names = {name.strip() for name in args.only.split(",") if name.strip()}
        unknown = names - {bench.name for bench in BENCHES}
        if unknown:
            parser.error(f"--only: unknown bench {', '.join(sorted(unknown))}")
        chosen = [bench for bench in BENCHES if bench.name in names]
    outcomes = [run_bench(bench, args.quick) for bench in chosen]
    print(render_table(outcomes))
    return 0 if all(outcome.summary is not None for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
