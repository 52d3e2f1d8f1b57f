"""Local files that survive a crash: the step every writer of new files needs, whatever it writes
(the local blob store, the ingest log)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Make the names of files created or renamed in `directory` durable, as fsync does their data."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
