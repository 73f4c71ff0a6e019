-- spanledger: repeatable
-- Retention by tier (exporters.clickhouse.retention in otel-config.yaml): raw
-- spans (and the trace-id lookup that finds them) and the rollups each keep
-- their own number of days.  TTLs are configuration, so this file is
-- re-applied at start whenever the configured days change.  "Forever" is a
-- TTL that deletes nothing (DELETE WHERE 0): REMOVE TTL fails on a table that
-- has none, and a far-future interval would overflow DateTime.  Raw spans go
-- by whole days (ttl_only_drop_parts: a day's part is dropped, never
-- rewritten).  Captured content (prompts, outputs) is cut from older spans by
-- collector/store/retention.py, since one attribute map cannot carry a TTL.
ALTER TABLE ${database}.${traces_table} ${on_cluster}
    MODIFY TTL toDateTime(Timestamp) + toIntervalDay(${retention_spans_days}) ${retention_spans_where};

ALTER TABLE ${database}.${traces_table}_trace_id_ts ${on_cluster}
    MODIFY TTL toDateTime(Start) + toIntervalDay(${retention_spans_days}) ${retention_spans_where};

ALTER TABLE ${database}.spanledger_usage_hourly${local_suffix} ${on_cluster}
    MODIFY TTL Hour + toIntervalDay(${retention_rollups_days}) ${retention_rollups_where};

ALTER TABLE ${database}.spanledger_cost_daily${local_suffix} ${on_cluster}
    MODIFY TTL toDateTime(Day) + toIntervalDay(${retention_rollups_days}) ${retention_rollups_where};
