-- Which insert stored each row: the live feed finds the rows of a segment it
-- was just told about by this number, without scanning the table (minmax
-- index: parts of one insert hold one value, merged parts a narrow range).
-- The collector hands out strictly increasing numbers (Unix microseconds at
-- allocation, or the last one + 1) and passes them with the INSERT as its
-- log_comment; schema/900_ingest_pipeline.sql writes them here.  0 = a row
-- stored before this column existed, or by an INSERT that did not say.
-- Adding a column at the end keeps the OpenTelemetry Collector exporter's
-- layout: every column it writes is unchanged.
ALTER TABLE ${database}.${traces_table} ${on_cluster}
    ADD COLUMN IF NOT EXISTS IngestBatch UInt64 DEFAULT 0 CODEC(Delta, ZSTD(1));

ALTER TABLE ${database}.${traces_table} ${on_cluster}
    ADD INDEX IF NOT EXISTS idx_ingest_batch IngestBatch TYPE minmax GRANULARITY 1;
