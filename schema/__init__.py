"""Plain .sql DDL files, applied in order by spanledger.collector.store.migrations; packaged as data."""
