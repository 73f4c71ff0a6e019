"""Every configuration key, declared once: its kind, its default and what it does.

The models mirror the OpenTelemetry Collector's layout (receivers / processors /
exporters / extensions / service).  The docstring under each key is its
documentation: ``spanledger config --schema`` and docs/configuration.md are
generated from it, so what a key does is written in one place.  Each key's
environment variable is derived from its path (``values.env_var``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .values import Duration, Flag, Mapping, Names, Records, Scalars, Text, Whole


class Section(BaseModel):
    """A mapping of known keys; any other key is refused (by the loader, naming it)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, validate_default=False)


# -- receivers ---------------------------------------------------------------------------------
class GrpcTls(Section):
    cert_file: Text = ""
    """Server certificate (PEM); with key_file, the receiver speaks TLS."""
    key_file: Text = ""
    """Server private key (PEM)."""
    client_ca_file: Text = ""
    """CA that client certificates must chain to (mutual TLS); empty: no client certificates asked."""


class Auth(Section):
    authenticator: Text = ""
    """'bearertokenauth' requires a token from extensions.bearertokenauth (on every listener); empty: no tokens."""


class Grpc(Section):
    endpoint: Text = "localhost:4317"
    """host:port of the OTLP/gRPC receiver (localhost only by default)."""
    max_recv_msg_size_mib: Whole = 4
    """Larger requests get RESOURCE_EXHAUSTED (checked after decompression)."""
    max_concurrent_streams: Whole = 16
    """Handler threads: requests served at once."""
    tls: GrpcTls = Field(default_factory=GrpcTls)
    auth: Auth = Field(default_factory=Auth)


class ServerTls(Section):
    cert_file: Text = ""
    """Server certificate (PEM); with key_file, the listener speaks HTTPS."""
    key_file: Text = ""
    """Server private key (PEM)."""


class HttpCors(Section):
    allowed_origins: Scalars = Field(default_factory=list)
    """Origins browser senders may post from, e.g. https://*.example.com; empty: no CORS headers."""
    allowed_headers: Scalars = Field(default_factory=list)
    """Request headers allowed beyond Content-Type, Content-Encoding, Accept, X-Requested-With."""
    max_age: Whole = 0
    """Seconds a preflight answer is cached (0: 600)."""


class Http(Section):
    endpoint: Text = "localhost:4318"
    """host:port of the OTLP/HTTP receiver; it runs when receivers.otlp.protocols.http is in the file."""
    traces_url_path: Text = "/v1/traces"
    """The path spans are POSTed to."""
    max_request_body_size: Whole = 4 << 20
    """Bytes; larger bodies get 413 (checked while reading and after decompression)."""
    max_concurrent_requests: Whole = 16
    """Requests in flight; beyond: 429 + Retry-After."""
    read_timeout: Duration = 30.0
    """A body slower than this gets 408 (slow senders cannot hold every slot)."""
    tls: ServerTls = Field(default_factory=ServerTls)
    cors: HttpCors = Field(default_factory=HttpCors)
    auth: Auth = Field(default_factory=Auth)


class Protocols(Section):
    grpc: Grpc = Field(default_factory=Grpc)
    http: Http = Field(default_factory=Http)


class Otlp(Section):
    protocols: Protocols = Field(default_factory=Protocols)


class Receivers(Section):
    otlp: Otlp = Field(default_factory=Otlp)


# -- processors --------------------------------------------------------------------------------
class Batch(Section):
    timeout: Duration = 1.0
    """A WAL segment is sealed and stored at least this often..."""
    send_batch_size: Whole = 50_000
    """...or once it holds this many spans (the embedded engine may cut segments smaller to fit its memory)."""
    send_batch_max_size: Whole = 0
    """Not supported (a request is never split across segments): must stay 0; lower send_batch_size instead."""


class MemoryLimiter(Section):
    check_interval: Duration = 0.1
    """How often the process's RSS is sampled (requests in flight are counted in between)."""
    limit_mib: Whole = 1024
    """Process memory (RSS) ceiling: requests that would pass it get UNAVAILABLE + RetryInfo; the embedded
    engine's bounds are derived from it."""


class Processors(Section):
    batch: Batch = Field(default_factory=Batch)
    memory_limiter: MemoryLimiter = Field(default_factory=MemoryLimiter)


# -- exporters ---------------------------------------------------------------------------------
class Wal(Section):
    max_size_mib: Whole = 2048
    """Unstored spans kept on disk while storage is down; beyond: UNAVAILABLE."""
    segment_max_mib: Whole = 32
    """A segment is sealed at this size."""
    fsync: Flag = True
    """Acknowledged means on disk (fdatasync before the answer)."""
    retain_done_mib: Whole = 64
    """Stored segments kept to recognise client retries after a restart."""


class Limits(Section):
    max_attributes: Whole = 128
    """Attributes kept per span; more are dropped and counted on the row."""
    max_attribute_length: Whole = 65536
    """Characters kept per attribute value."""
    max_events: Whole = 128
    """Events kept per span."""
    max_links: Whole = 128
    """Links kept per span."""


class Pricing(Section):
    overrides_file: Text = ""
    """JSON or TOML price overrides (docs/pricing.md)."""
    provided_cost_wins: Flag = True
    """A cost the instrumentation sent is kept over the computed one."""


class Content(Section):
    drop_attributes: Scalars = Field(default_factory=list)
    """Attribute key patterns (RE2) removed before storage, e.g. '^gen_ai\\.(input|output)\\.messages$'."""
    redact_attributes: Scalars = Field(default_factory=list)
    """Attribute key patterns whose values are stored as [REDACTED]."""


class Retention(Section):
    spans: Duration = 0.0
    """Raw spans and the trace-id lookup, whole days (0: use ttl)."""
    content: Duration = 0.0
    """Captured prompts, outputs and tool arguments, cut from older spans daily (0: as long as spans)."""
    rollups: Duration = 0.0
    """spanledger_usage_hourly and spanledger_cost_daily; must outlive spans (0: forever)."""


class Retry(Section):
    initial_interval: Duration = 0.2
    """First wait after a failure; doubles each time, with full jitter."""
    max_interval: Duration = 30.0
    """Longest wait between attempts (attempts never stop)."""


class StoreQueue(Section):
    num_consumers: Whole = 2
    """Segment writers storing in parallel."""


class Engine(Section):
    max_server_memory_mib: Whole = 0
    """A hard limit on everything the embedded engine does; 0: none, the budget is derived from limit_mib."""
    max_query_memory_mib: Whole = 0
    """One read query (0: 1/4 of the engine's budget); a query past it is refused, ingest goes on."""
    max_merge_memory_mib: Whole = 0
    """No new background merge above it (0: 1/4 of the engine's budget)."""
    cache_mib: Whole = 64
    """Mark, primary-index and index-mark caches, each (chDB's own default: 5 GiB each)."""


class ClickHouse(Section):
    endpoint: Text = ""
    """http(s)://host:8123 of a ClickHouse server; empty: the embedded engine (chDB) under data_dir."""
    username: Text = ""
    """Server user (or in the endpoint URL); default: 'default'."""
    password: Text = ""
    """Server password (or in the endpoint URL)."""
    database: Text = "spanledger"
    """Database of every spanledger table."""
    traces_table_name: Text = "otel_traces"
    """The spans table."""
    ttl: Duration = 0.0
    """Spans older than this are dropped, whole days (e.g. 720h); 0: kept forever."""
    create_schema: Flag = True
    """Create and migrate the tables at start."""
    cluster_name: Text = ""
    """Set to use ReplicatedMergeTree + Distributed tables ON CLUSTER."""
    timeout: Duration = 30.0
    """Server mode: connect and send/receive timeout of each call to the server, in whole seconds (rounded up;
    0: clickhouse-connect's own, 10s connect and 300s send/receive).  Unused by the embedded engine."""
    data_dir: Text = ".spanledger"
    """The WAL, forwarding cursors and the embedded engine's files."""
    wal: Wal = Field(default_factory=Wal)
    limits: Limits = Field(default_factory=Limits)
    pricing: Pricing = Field(default_factory=Pricing)
    content: Content = Field(default_factory=Content)
    retention: Retention = Field(default_factory=Retention)
    retry_on_failure: Retry = Field(default_factory=Retry)
    sending_queue: StoreQueue = Field(default_factory=StoreQueue)
    engine: Engine = Field(default_factory=Engine)


class ClientTls(Section):
    insecure: Flag = False
    """Plain text (no TLS); also implied by an http:// endpoint."""
    ca_file: Text = ""
    """CA to verify the destination with (default: the system's)."""
    cert_file: Text = ""
    """Client certificate (mutual TLS)."""
    key_file: Text = ""
    """Client private key."""
    insecure_skip_verify: Flag = False
    """TLS without verifying the destination's certificate."""


class ForwardRetry(Section):
    initial_interval: Duration = 1.0
    """First wait after a failed send; doubles each time, with full jitter."""
    max_interval: Duration = 30.0
    """Longest wait between attempts (attempts never stop; see sending_queue)."""


class ForwardQueue(Section):
    queue_size: Whole = 100
    """WAL segments kept for this destination while it is behind; older ones are dropped (counted)."""


class OtlpExporter(Section):
    """exporters.otlp/NAME: forward every accepted span over OTLP/gRPC."""

    endpoint: Text = ""
    """host:port of the destination; TLS unless tls.insecure (or an http:// scheme)."""
    headers: Mapping = Field(default_factory=dict)
    """Sent with every request, e.g. {authorization: "Bearer ${env:TOKEN}"}."""
    compression: Text = "gzip"
    """gzip or none."""
    timeout: Duration = 10.0
    """One send's deadline."""
    tls: ClientTls = Field(default_factory=ClientTls)
    retry_on_failure: ForwardRetry = Field(default_factory=ForwardRetry)
    sending_queue: ForwardQueue = Field(default_factory=ForwardQueue)
    tenants: Scalars = Field(default_factory=list)
    """Forward only these tenants' spans (empty: all)."""


class OtlpHttpExporter(OtlpExporter):
    """exporters.otlphttp/NAME: forward every accepted span over OTLP/HTTP (protobuf bodies)."""

    endpoint: Text = ""
    """Base URL of the destination; /v1/traces is appended."""
    traces_endpoint: Text = ""
    """The full URL, used as given (instead of endpoint + /v1/traces)."""


class Exporters(Section):
    """``clickhouse`` (the store) and any number of ``otlp/NAME`` and ``otlphttp/NAME`` forwarding exporters."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, OtlpHttpExporter] = Field(init=False)

    clickhouse: ClickHouse = Field(default_factory=ClickHouse)


# Named instances (NAME after the slash), any number of each, resolved only when given.
TEMPLATES: dict[str, type[Section]] = {"otlp": OtlpExporter, "otlphttp": OtlpHttpExporter}


# -- extensions --------------------------------------------------------------------------------
class BearerTokenAuth(Section):
    tokens: Scalars = Field(default_factory=list)
    """Tokens without a tenant (at least 16 characters each)."""
    filename: Text = ""
    """A file of lines 'token [tenant]' ('#' starts a comment)."""
    tenants: Mapping = Field(default_factory=dict)
    """{tenant: token}: a caller with this token sees and writes only this tenant's spans."""


class QueryLimits(Section):
    timeout: Duration = 30.0
    """max_execution_time of every API and report query."""
    max_memory_mib: Whole = 0
    """Per query; 0: half of memory_limiter.limit_mib shared by max_concurrency queries."""
    max_rows_to_read: Whole = 2_000_000_000
    """Rows one query may read."""
    max_result_rows: Whole = 1_000_000
    """Rows one answer may hold (not applied to streamed exports)."""
    max_result_bytes: Whole = 256 << 20
    """Bytes one answer may hold (not applied to streamed exports)."""
    per_tenant_concurrency: Whole = 2
    """Queries one tenant (or the operator) runs at once; beyond: HTTP 429."""
    max_concurrency: Whole = 4
    """Queries running at once in all."""


class ApiCors(Section):
    allowed_origins: Scalars = Field(default_factory=list)
    """Origins a browser console may call the API from; empty: no CORS."""


class IngestKeyLimits(Section):
    requests_per_minute: Whole = 600
    """Per ingest key."""
    max_items: Whole = 100
    """Activities in one request."""
    max_body_kib: Whole = 64
    """Body size of one request."""


class Feed(Section):
    max_subscribers: Whole = 1000
    """Live-feed subscribers at once."""
    max_subscribers_per_token: Whole = 100
    """Subscribers one token may hold."""
    subscriber_buffer: Whole = 10_000
    """Events queued for one subscriber; beyond it the subscriber is dropped."""
    replay_buffer: Whole = 100_000
    """Events kept for reconnects with Last-Event-ID."""
    replay_linger: Duration = 300.0
    """A filter keeps being followed this long after its last subscriber left."""
    totals_interval: Duration = 5.0
    """How often each subscriber gets its running totals event."""
    send_timeout: Duration = 10.0
    """A subscriber that takes longer to accept one write is dropped."""


class SpanledgerApi(Section):
    endpoint: Text = "localhost:4319"
    """host:port of the HTTP API (docs/api.md)."""
    time_zone: Text = "UTC"
    """IANA zone of the deployment: report buckets and budget windows."""
    tls: ServerTls = Field(default_factory=ServerTls)
    query_limits: QueryLimits = Field(default_factory=QueryLimits)
    allow_insecure_remote: Flag = False
    """A non-loopback listener without bearer tokens refuses to start unless true."""
    max_request_body_mib: Whole = 4
    """Counted while reading (chunked too), after gzip decompression."""
    header_timeout: Duration = 10.0
    """A request head not complete by then closes the connection."""
    body_timeout: Duration = 30.0
    """The whole body must arrive within this."""
    keep_alive_timeout: Duration = 5.0
    """An idle connection is closed after this."""
    cors: ApiCors = Field(default_factory=ApiCors)
    ingest_keys: Mapping = Field(default_factory=dict)
    """Browser trackers (sendBeacon): {site-key: tenant}, product events only."""
    ingest_key_limits: IngestKeyLimits = Field(default_factory=IngestKeyLimits)
    feed: Feed = Field(default_factory=Feed)


class Webhook(Section):
    url: Text = ""
    """POSTed for every threshold crossing, HMAC-SHA256 signed; empty: no webhook."""
    secret: Text = ""
    """The signing key (at least 16 characters), required with a url."""
    timeout: Duration = 5.0
    """One delivery attempt's deadline."""
    max_attempts: Whole = 8
    """Attempts per alert, with exponential backoff and full jitter between them."""
    initial_backoff: Duration = 0.5
    """Wait after the first failed attempt."""
    max_backoff: Duration = 60.0
    """Longest wait between attempts."""


class SpanledgerBudgets(Section):
    evaluation_interval: Duration = 5.0
    """How often spend is compared with every budget."""
    webhook: Webhook = Field(default_factory=Webhook)
    budgets: Records = Field(default_factory=list)
    """{name, scope, limit_usd, window, thresholds} each (docs/budgets.md)."""


class HealthCheck(Section):
    endpoint: Text = "localhost:13133"
    """host:port answering GET with 200 while the collector is up and its store reachable, 503 otherwise;
    runs when service.extensions lists health_check (as in the Collector).  It says only up or down."""
    path: Text = "/"
    """The path it answers on."""


class Extensions(Section):
    bearertokenauth: BearerTokenAuth = Field(default_factory=BearerTokenAuth)
    spanledger_api: SpanledgerApi = Field(default_factory=SpanledgerApi)
    spanledger_budgets: SpanledgerBudgets = Field(default_factory=SpanledgerBudgets)
    health_check: HealthCheck = Field(default_factory=HealthCheck)


# -- service -----------------------------------------------------------------------------------
class Traces(Section):
    receivers: Names = Field(default_factory=lambda: ["otlp"])
    """Only otlp."""
    processors: Names = Field(default_factory=lambda: ["memory_limiter", "batch"])
    """Both always run (admission control, then WAL segments): list memory_limiter and batch."""
    exporters: Names = Field(default_factory=lambda: ["clickhouse"])
    """clickhouse (always), plus any otlp/NAME and otlphttp/NAME to forward to."""


class Pipelines(Section):
    traces: Traces = Field(default_factory=Traces)


class Logs(Section):
    level: Text = "info"
    """debug, info, warn or error."""


class Telemetry(Section):
    logs: Logs = Field(default_factory=Logs)


class Service(Section):
    extensions: Names = Field(default_factory=list)
    """Extensions to run; health_check runs only when listed (the others run whenever configured)."""
    pipelines: Pipelines = Field(default_factory=Pipelines)
    telemetry: Telemetry = Field(default_factory=Telemetry)


class Configuration(Section):
    """A whole otel-config.yaml."""

    receivers: Receivers = Field(default_factory=Receivers)
    processors: Processors = Field(default_factory=Processors)
    exporters: Exporters = Field(default_factory=Exporters)
    extensions: Extensions = Field(default_factory=Extensions)
    service: Service = Field(default_factory=Service)
