-- Which schema files have been applied, and with what text.  Numbered files
-- apply once; files marked repeatable re-apply when their rendered text changes.
CREATE DATABASE IF NOT EXISTS ${database} ${on_cluster};

CREATE TABLE IF NOT EXISTS ${database}.spanledger_schema_versions ${on_cluster}
(
    Version UInt32,
    Name String,
    Checksum String,
    AppliedAt DateTime64(3) DEFAULT now64(3)
)
ENGINE = ${merge_tree}
ORDER BY (Version, AppliedAt);
