"""A text progress bar for the long operator jobs (recompute, CSV uploads, bootstrap's sample events).

It writes to stderr, so a command's stdout stays parseable (`feedgate admin ... > out`). On a
terminal the bar is one line redrawn in place with `\\r`; anywhere else (a pipe, a log file, CI)
nothing is drawn while the job runs and one plain line says how it ended, so logs get no line per step.
No dependency: the operator image carries only what the gateway needs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

BAR_CELLS = 30
# A terminal redraw costs a write; a job advancing per row would otherwise write per row.
REDRAW_EVERY_SECONDS = 0.1


class ProgressBar:
    """Counts steps towards `total` (None when unknown) and shows them on `stream`."""

    def __init__(self, label: str, total: int | None, stream: TextIO, *, interactive: bool) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self._stream = stream
        self._interactive = interactive
        self._started = time.monotonic()
        self._last_drawn = float("-inf")
        self._drawn_width = 0

    def advance(self, steps: int = 1) -> None:
        self.done += steps
        if self._interactive and time.monotonic() - self._last_drawn >= REDRAW_EVERY_SECONDS:
            self._draw()

    def finish(self, *, failed: bool = False) -> None:
        """End the bar: complete the terminal line, or write the one plain line."""
        elapsed = time.monotonic() - self._started
        outcome = "failed after" if failed else "done:"
        summary = f"{self.label}: {outcome} {self._count()} in {elapsed:.1f}s"
        if self._interactive:
            self._draw()
            self._stream.write("\n")
            if failed:
                self._stream.write(summary + "\n")
        else:
            self._stream.write(summary + "\n")
        self._stream.flush()

    def render(self) -> str:
        """The bar as one line, without the carriage return."""
        if not self.total:
            return f"{self.label} {self._count()}"
        fraction = min(self.done / self.total, 1.0)
        filled = round(fraction * BAR_CELLS)
        bar = "#" * filled + "." * (BAR_CELLS - filled)
        return f"{self.label} [{bar}] {fraction:4.0%} {self._count()}"

    def _count(self) -> str:
        return f"{self.done}/{self.total}" if self.total else str(self.done)

    def _draw(self) -> None:
        line = self.render()
        # Blank out what a longer previous line left behind.
        self._stream.write("\r" + line.ljust(self._drawn_width))
        self._stream.flush()
        self._drawn_width = len(line)
        self._last_drawn = time.monotonic()


@contextmanager
def progress(label: str, total: int | None = None, *, stream: TextIO | None = None) -> Iterator[ProgressBar]:
    """`with progress("Recomputing", total=n) as bar: ... bar.advance()`; says "failed" on an error."""
    out = stream if stream is not None else sys.stderr
    bar = ProgressBar(label, total, out, interactive=_is_terminal(out))
    try:
        yield bar
    except BaseException:
        bar.finish(failed=True)
        raise
    bar.finish()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stand-in stream
        return False
