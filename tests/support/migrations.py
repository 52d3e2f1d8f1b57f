"""Putting an event store back to an earlier schema version, to test what a migration does to data
stored before it."""

from __future__ import annotations

import re

from engine.storage.event_schema import MIGRATIONS
from engine.storage.event_store import EventStore


def forget_migrations_from(event_store: EventStore, table: str) -> int:
    """Make the database look migrated up to the version creating `table`: that version's and every
    later version's tables and views dropped, and none of them recorded. Returns how many that is."""
    first = next(
        version
        for version, statements in enumerate(MIGRATIONS, start=1)
        if any(f"CREATE TABLE IF NOT EXISTS {{db}}.{table} " in statement for statement in statements)
    )
    for statements in MIGRATIONS[first - 1 :]:
        for statement in reversed(statements):
            if created := re.search(
                r"CREATE (?:MATERIALIZED VIEW|TABLE) IF NOT EXISTS \{db\}\.(\w+)", statement
            ):
                event_store.command(f"DROP TABLE {created[1]}")
    event_store.command("TRUNCATE TABLE feedgate_migrations")
    event_store.insert("feedgate_migrations", [[v] for v in range(1, first)], ["version"], ["UInt32"])
    return len(MIGRATIONS) - first + 1
