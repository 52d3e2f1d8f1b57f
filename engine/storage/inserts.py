"""Inserting rows that may already be there (a run already started, a send already owed), on SQLite and
Postgres alike: `INSERT … ON CONFLICT DO NOTHING`, so concurrent workers and repeats are no-ops."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

_CHUNK = 1000


def insert_new(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Insert the rows that conflict with no existing one; returns the `id` (primary key) of each row
    inserted."""
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    key = table.primary_key.columns.values()[0]
    statement = dialect.insert(table).on_conflict_do_nothing().returning(key)
    inserted: list[str] = []
    for start in range(0, len(rows), _CHUNK):
        chunk = [dict(row) for row in rows[start : start + _CHUNK]]
        inserted += session.scalars(statement, chunk).all()
    return inserted
