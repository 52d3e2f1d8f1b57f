"""Storage doors: SQL for resources (SQLite or Postgres) and ClickHouse for events (chdb or HTTP)."""

from __future__ import annotations

from engine.storage.db import make_engine, make_read_session_factory, make_session_factory
from engine.storage.event_store import EventStore
from engine.storage.migrate import upgrade_database

__all__ = [
    "EventStore",
    "make_engine",
    "make_read_session_factory",
    "make_session_factory",
    "upgrade_database",
]
