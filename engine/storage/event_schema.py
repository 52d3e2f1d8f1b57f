"""The ClickHouse schema of the event store, as an ordered list of migrations.

Each entry runs once per database, in order, and is recorded in `feedgate_migrations`; entries are
never edited after they ship, only appended. Statements use `{db}` for the database name (checked to be
a plain identifier before it is substituted). The events table mirrors Dittofeed's `user_events_v2`:
the gateway inserts the raw message and a few columns, ClickHouse derives the rest.
"""

from __future__ import annotations

EVENT_TYPE = "Enum8('identify' = 1, 'track' = 2, 'page' = 3, 'screen' = 4, 'group' = 5, 'alias' = 6)"
_EVENT_TYPE_LITERAL = EVENT_TYPE.replace("'", "\\'")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"""
        CREATE TABLE IF NOT EXISTS {{db}}.user_events_v2 (
            event_type {EVENT_TYPE} DEFAULT JSONExtract(message_raw, 'type', '{_EVENT_TYPE_LITERAL}'),
            event String DEFAULT JSONExtractString(message_raw, 'event'),
            event_time DateTime64(3, 'UTC') DEFAULT assumeNotNull(
                parseDateTime64BestEffortOrNull(JSONExtractString(message_raw, 'timestamp'), 3, 'UTC')),
            message_id String,
            user_id String DEFAULT JSONExtractString(message_raw, 'userId'),
            anonymous_id String DEFAULT JSONExtractString(message_raw, 'anonymousId'),
            user_or_anonymous_id String DEFAULT if(user_id != '', user_id, anonymous_id),
            properties String DEFAULT if(
                JSONHas(message_raw, 'traits'),
                JSONExtractRaw(message_raw, 'traits'),
                JSONExtractRaw(message_raw, 'properties')),
            hidden Bool DEFAULT JSONExtractBool(JSONExtractRaw(message_raw, 'context'), 'hidden'),
            processing_time DateTime64(3, 'UTC') DEFAULT now64(3),
            server_time DateTime64(3, 'UTC') DEFAULT now64(3),
            message_raw String,
            workspace_id String,
            INDEX message_id_idx message_id TYPE bloom_filter(0.01) GRANULARITY 1
        )
        ENGINE = MergeTree
        ORDER BY (workspace_id, processing_time, user_or_anonymous_id, event_time, message_id)
        """,
    ),
)
