"""The ClickHouse schema of the event store, as an ordered list of migrations.

Each entry runs once per database, in order, and is recorded in `feedgate_migrations`; entries are
never edited after they ship, only appended. Statements use `{db}` for the database name (checked to be
a plain identifier before it is substituted). The events table mirrors Dittofeed's `user_events_v2`:
the gateway inserts the raw message and a few columns, ClickHouse derives the rest.
"""

from __future__ import annotations

EVENT_TYPE = "Enum8('identify' = 1, 'track' = 2, 'page' = 3, 'screen' = 4, 'group' = 5, 'alias' = 6)"
_EVENT_TYPE_LITERAL = EVENT_TYPE.replace("'", "\\'")

# A delivery's status (Dittofeed §8.2): the status events, plus the sent event standing for "no status
# event yet". Values in alphabetical order, so ordering by the enum orders by name as upstream does.
DELIVERY_STATUS = (
    "Enum8('DFEmailBounced' = 1, 'DFEmailClicked' = 2, 'DFEmailDelivered' = 3, 'DFEmailDropped' = 4,"
    " 'DFEmailMarkedSpam' = 5, 'DFEmailOpened' = 6, 'DFInternalMessageSent' = 7, 'DFSmsDelivered' = 8,"
    " 'DFSmsFailed' = 9)"
)
_DELIVERY_STATUS_LITERAL = DELIVERY_STATUS.replace("'", "\\'")

# The delivery_status rows of a set of internal events (one per message they report on).
_DELIVERY_STATUS_ROWS = f"""
        SELECT
            ie.workspace_id AS workspace_id,
            ie.origin_message_id AS origin_message_id,
            max((ie.event_time, cityHash64(ie.message_id), CAST(ie.event, '{_DELIVERY_STATUS_LITERAL}')))
                AS latest,
            max(ie.event IN ('DFEmailDelivered', 'DFSmsDelivered')) AS delivered,
            max(ie.event = 'DFEmailOpened') AS opened,
            max(ie.event = 'DFEmailClicked') AS clicked,
            max(ie.event IN ('DFEmailBounced', 'DFSmsFailed')) AS bounced
        FROM {{db}}.internal_events AS ie
        WHERE ie.event IN ('DFEmailDropped', 'DFEmailDelivered', 'DFEmailOpened', 'DFEmailClicked',
            'DFEmailBounced', 'DFEmailMarkedSpam', 'DFSmsDelivered', 'DFSmsFailed')
            AND NOT ie.hidden AND ie.origin_message_id != ''
        GROUP BY ie.workspace_id, ie.origin_message_id
"""  # noqa: S608 - constants only

# The sent_message_facts row of each sent message among a set of internal events. Hidden ones too
# (analysis leaves them out): their status events then fold like any other instead of staying pending.
_SENT_FACT_ROWS = """
        SELECT
            ie.workspace_id AS workspace_id, ie.processing_time AS processing_time,
            cityHash64(ie.message_id) AS message_key, ie.user_id AS user_id,
            ie.anonymous_id AS anonymous_id, ie.journey_id AS journey_id,
            JSONExtractString(ie.properties, 'nodeId') AS node_id, ie.broadcast_id AS broadcast_id,
            ie.template_id AS template_id, ie.channel_type AS channel_type,
            JSONExtractString(ie.properties, 'variant', 'provider', 'type') AS provider,
            ie.hidden AS hidden, toUInt8(1) AS sent, toUInt8(0) AS from_mask, toUInt8(0) AS to_mask
        FROM {db}.internal_events AS ie
        WHERE ie.event = 'DFInternalMessageSent'
"""

# The delivery_status_pending row of each status event that sets a state flag.
_PENDING_STATUS_ROWS = """
        SELECT
            ie.workspace_id AS workspace_id, cityHash64(ie.origin_message_id) AS message_key,
            toUInt8(multiIf(ie.event IN ('DFEmailDelivered', 'DFSmsDelivered'), 1,
                ie.event = 'DFEmailOpened', 2, ie.event = 'DFEmailClicked', 4, 8)) AS mask,
            ie.user_id AS user_id, ie.anonymous_id AS anonymous_id, toInt64(1) AS pending
        FROM {db}.internal_events AS ie
        WHERE ie.event IN ('DFEmailDelivered', 'DFSmsDelivered', 'DFEmailOpened', 'DFEmailClicked',
            'DFEmailBounced', 'DFSmsFailed')
            AND NOT ie.hidden AND ie.origin_message_id != ''
"""

# The hourly projection of sent_message_facts: its rows counted per workspace, hour of processing time,
# the dimensions analysis filters and groups by without a narrower cohort, and state change.
_HOURLY_KEYS = (
    "workspace_id, toStartOfHour(processing_time), hidden, channel_type, provider, sent, from_mask, to_mask"
)
_HOURLY_COUNTS = f"SELECT {_HOURLY_KEYS}, count() GROUP BY {_HOURLY_KEYS}"

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
    (
        # Internal (DF*) track events with the fields deliveries and analysis filter on.
        """
        CREATE TABLE IF NOT EXISTS {db}.internal_events (
            workspace_id String,
            user_or_anonymous_id String,
            user_id String,
            anonymous_id String,
            message_id String,
            event String,
            event_time DateTime64(3, 'UTC'),
            processing_time DateTime64(3, 'UTC'),
            properties String,
            template_id String,
            broadcast_id String,
            journey_id String,
            triggering_message_id String,
            channel_type String,
            delivery_to String,
            delivery_from String,
            origin_message_id String,
            hidden Bool,
            INDEX idx_template_id template_id TYPE bloom_filter(0.01) GRANULARITY 4,
            INDEX idx_broadcast_id broadcast_id TYPE bloom_filter(0.01) GRANULARITY 4,
            INDEX idx_journey_id journey_id TYPE bloom_filter(0.01) GRANULARITY 4
        )
        ENGINE = MergeTree
        ORDER BY (workspace_id, processing_time, event, user_or_anonymous_id, message_id)
        """,
        """
        CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.internal_events_mv TO {db}.internal_events AS
        SELECT
            workspace_id, user_or_anonymous_id, user_id, anonymous_id, message_id, event, event_time,
            processing_time, properties,
            JSONExtractString(properties, 'templateId') AS template_id,
            JSONExtractString(properties, 'broadcastId') AS broadcast_id,
            JSONExtractString(properties, 'journeyId') AS journey_id,
            JSONExtractString(properties, 'triggeringMessageId') AS triggering_message_id,
            JSONExtractString(properties, 'variant', 'type') AS channel_type,
            JSONExtractString(properties, 'variant', 'to') AS delivery_to,
            JSONExtractString(properties, 'variant', 'from') AS delivery_from,
            JSONExtractString(properties, 'messageId') AS origin_message_id,
            hidden
        FROM {db}.user_events_v2
        WHERE event_type = 'track' AND startsWith(event, 'DF')
        """,
        # Group membership, both directions; the latest row per pair (by assigned_at) is the truth.
        # The views qualify every column: an alias such as `user_id` would otherwise shadow the column.
        """
        CREATE TABLE IF NOT EXISTS {db}.group_user_assignments (
            workspace_id LowCardinality(String),
            group_id String,
            user_id String,
            assigned Bool,
            assigned_at DateTime64(3, 'UTC') DEFAULT now64(3)
        )
        ENGINE = ReplacingMergeTree(assigned_at)
        ORDER BY (workspace_id, group_id, user_id)
        """,
        """
        CREATE TABLE IF NOT EXISTS {db}.user_group_assignments (
            workspace_id LowCardinality(String),
            user_id String,
            group_id String,
            assigned Bool,
            assigned_at DateTime64(3, 'UTC') DEFAULT now64(3)
        )
        ENGINE = ReplacingMergeTree(assigned_at)
        ORDER BY (workspace_id, user_id, group_id)
        """,
        """
        CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.group_user_assignments_mv
        TO {db}.group_user_assignments AS
        SELECT
            uev.workspace_id AS workspace_id,
            uev.user_id AS group_id,
            JSONExtractString(uev.properties, 'userId') AS user_id,
            JSONExtractBool(uev.properties, 'assigned') AS assigned,
            uev.processing_time AS assigned_at
        FROM {db}.user_events_v2 AS uev
        WHERE uev.event_type = 'track' AND uev.event = 'DFGroupUserAssignment'
        """,
        """
        CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.user_group_assignments_mv
        TO {db}.user_group_assignments AS
        SELECT
            uev.workspace_id AS workspace_id,
            uev.user_or_anonymous_id AS user_id,
            JSONExtractString(uev.properties, 'groupId') AS group_id,
            JSONExtractBool(uev.properties, 'assigned') AS assigned,
            uev.processing_time AS assigned_at
        FROM {db}.user_events_v2 AS uev
        WHERE uev.event_type = 'track' AND uev.event = 'DFUserGroupAssignment'
        """,
        # What users are: the computed values of segments and user properties, latest by assigned_at.
        """
        CREATE TABLE IF NOT EXISTS {db}.computed_property_assignments_v2 (
            workspace_id LowCardinality(String),
            type Enum8('user_property' = 1, 'segment' = 2),
            computed_property_id LowCardinality(String),
            user_id String,
            segment_value Bool,
            user_property_value String,
            max_event_time DateTime64(3, 'UTC'),
            assigned_at DateTime64(3, 'UTC') DEFAULT now64(3)
        )
        ENGINE = ReplacingMergeTree(assigned_at)
        ORDER BY (workspace_id, type, computed_property_id, user_id)
        """,
    ),
    (
        # Per (segment or user property, node, user, time bucket) partial aggregates of the events
        # matching the node; each compute period adds the aggregates of its new events.
        """
        CREATE TABLE IF NOT EXISTS {db}.computed_property_state_v3 (
            workspace_id LowCardinality(String),
            type Enum8('user_property' = 1, 'segment' = 2),
            computed_property_id LowCardinality(String),
            state_id LowCardinality(String),
            user_id String,
            -- the latest value by (event_time, message_id): a total order, so any merge order agrees
            last_value AggregateFunction(argMax, String, Tuple(DateTime64(3, 'UTC'), String)),
            unique_count AggregateFunction(uniq, String),
            grouped_values AggregateFunction(groupArray, String),
            event_time DateTime64(3, 'UTC'),
            computed_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
        )
        ENGINE = AggregatingMergeTree
        ORDER BY (workspace_id, type, computed_property_id, state_id, user_id, event_time)
        """,
    ),
    (
        # When each segment and user property was last computed, per definition version and step.
        """
        CREATE TABLE IF NOT EXISTS {db}.computed_property_periods (
            workspace_id LowCardinality(String),
            type Enum8('user_property' = 1, 'segment' = 2),
            computed_property_id String,
            version String,
            step LowCardinality(String),
            period_to DateTime64(3, 'UTC'),
            created_at DateTime64(3, 'UTC') DEFAULT now64(3)
        )
        ENGINE = MergeTree
        ORDER BY (workspace_id, computed_property_id, step, version, period_to)
        """,
    ),
    (
        # The delivery status of each sent message, kept up to date as status events arrive: the latest
        # status event by (event_time, then a hash of its message id: a total order, so every merge
        # order agrees) and the states the message ever reached. Every aggregate is idempotent, so a
        # status event counted twice (the view racing the backfill below) changes nothing. Hidden
        # status events are ignored, as upstream's search does.
        f"""
        CREATE TABLE IF NOT EXISTS {{db}}.delivery_status (
            workspace_id LowCardinality(String),
            origin_message_id String,
            latest SimpleAggregateFunction(max, Tuple(DateTime64(3, 'UTC'), UInt64, {DELIVERY_STATUS})),
            delivered SimpleAggregateFunction(max, UInt8),
            opened SimpleAggregateFunction(max, UInt8),
            clicked SimpleAggregateFunction(max, UInt8),
            bounced SimpleAggregateFunction(max, UInt8)
        )
        ENGINE = AggregatingMergeTree
        ORDER BY (workspace_id, origin_message_id)
        """,
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.delivery_status_mv TO {db}.delivery_status AS"
        + _DELIVERY_STATUS_ROWS,
        # Status events stored before this table existed.
        "INSERT INTO {db}.delivery_status" + _DELIVERY_STATUS_ROWS,
    ),
    (
        # What analysis counts, without a join: a row per sent message (`sent` = 1, no state yet) and a
        # row per change of the states it reached (`sent` = 0, from one state mask to a larger one),
        # each carrying the message's processing time and dimensions. Counting the messages whose
        # states satisfy P is then a plain sum: P(to_mask) less P(from_mask) of each change. Masks:
        # delivered 1, opened 2, clicked 4, bounced 8 (engine.delivery_facts).
        """
        CREATE TABLE IF NOT EXISTS {db}.sent_message_facts (
            workspace_id LowCardinality(String),
            processing_time DateTime64(3, 'UTC'),
            message_key UInt64,
            user_id String,
            anonymous_id String,
            journey_id LowCardinality(String),
            node_id LowCardinality(String),
            broadcast_id LowCardinality(String),
            template_id LowCardinality(String),
            channel_type LowCardinality(String),
            provider LowCardinality(String),
            hidden Bool,
            sent UInt8,
            from_mask UInt8,
            to_mask UInt8
        )
        ENGINE = MergeTree
        ORDER BY (workspace_id, processing_time, message_key)
        """,
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.sent_message_facts_mv TO {db}.sent_message_facts AS"
        + _SENT_FACT_ROWS,
        # Status events not yet folded into the facts: +1 as they are stored, the count read back
        # negated once folded (engine.delivery_facts); rows summing to zero go away in merges.
        """
        CREATE TABLE IF NOT EXISTS {db}.delivery_status_pending (
            workspace_id LowCardinality(String),
            message_key UInt64,
            mask UInt8,
            user_id String,
            anonymous_id String,
            pending Int64
        )
        ENGINE = SummingMergeTree(pending)
        ORDER BY (workspace_id, message_key, mask)
        """,
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.delivery_status_pending_mv"
        " TO {db}.delivery_status_pending AS" + _PENDING_STATUS_ROWS,
        # What was stored before these tables existed.
        "INSERT INTO {db}.sent_message_facts" + _SENT_FACT_ROWS,
        # Named columns: another process may run migration 8 (stored_at) before this one gets here.
        "INSERT INTO {db}.delivery_status_pending"
        " (workspace_id, message_key, mask, user_id, anonymous_id, pending)" + _PENDING_STATUS_ROWS,
    ),
    (
        # The facts counted per hour, kept by ClickHouse in every part beside its rows: analysis over
        # whole hours reads these counts instead of every row (engine.delivery_facts). Deleting rows
        # (a user's) rebuilds the counts of the parts it touches, so they stay exact.
        "ALTER TABLE {db}.sent_message_facts MODIFY SETTING lightweight_mutation_projection_mode = 'rebuild'",
        f"ALTER TABLE {{db}}.sent_message_facts ADD PROJECTION IF NOT EXISTS hourly ({_HOURLY_COUNTS})",
        "ALTER TABLE {db}.sent_message_facts MATERIALIZE PROJECTION hourly",
    ),
    (
        # When each pending status row was stored: a fold drops the status events of messages that are
        # still unknown a while later (engine.delivery_facts.ORPHANS_AFTER), so that they are not
        # pending for ever. Rows stored before this migration take its time.
        "ALTER TABLE {db}.delivery_status_pending ADD COLUMN IF NOT EXISTS stored_at DateTime DEFAULT now()",
        "ALTER TABLE {db}.delivery_status_pending MATERIALIZE COLUMN stored_at",
    ),
    (
        # Each granule's range of event times: a search for the latest sent messages (deliveries, newest
        # first) skips every granule that cannot hold them (top-k pruning, ClickHouse 25.10 and later;
        # an older server keeps the index and ignores it there).
        "ALTER TABLE {db}.internal_events"
        " ADD INDEX IF NOT EXISTS idx_event_time event_time TYPE minmax GRANULARITY 1",
        "ALTER TABLE {db}.internal_events MATERIALIZE INDEX idx_event_time",
    ),
    (
        # computed_property_state_v3 again, with the latest value ordered by one Int128 (the event time
        # in milliseconds, then a hash of the message id: still a total order) instead of a
        # Tuple(DateTime64, String), which argMax keeps as a generic field: two thirds of a value
        # state's cost. A state row now holds only the aggregates its definition reads; the others
        # are left empty.
        """
        CREATE TABLE IF NOT EXISTS {db}.computed_property_state_v4 (
            workspace_id LowCardinality(String),
            type Enum8('user_property' = 1, 'segment' = 2),
            computed_property_id LowCardinality(String),
            state_id LowCardinality(String),
            user_id String,
            last_value AggregateFunction(argMax, String, Int128),
            unique_count AggregateFunction(uniq, String),
            grouped_values AggregateFunction(groupArray, String),
            event_time DateTime64(3, 'UTC'),
            computed_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
        )
        ENGINE = AggregatingMergeTree
        ORDER BY (workspace_id, type, computed_property_id, state_id, user_id, event_time)
        """,
        # The v3 states are not carried over: forgetting every computed period makes each segment and
        # user property compute its states again from all events on its next period. Its assignments
        # stay, so only what really changed is signalled.
        "DELETE FROM {db}.computed_property_periods WHERE step = 'ComputeAssignments'",
        "DROP TABLE IF EXISTS {db}.computed_property_state_v3",
    ),
)
