"""spanledger: record what AI agents do, and what it costs, as OpenTelemetry spans."""
