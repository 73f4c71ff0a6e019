"""The spanledger collector: OTLP/gRPC in, ClickHouse out."""
