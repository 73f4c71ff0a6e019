"""Every attribute name spanledger writes or reads, in one place.

The OpenTelemetry GenAI conventions are still "development" upstream and have
already renamed keys once (``gen_ai.system`` -> ``gen_ai.provider.name``,
``gen_ai.usage.prompt_tokens`` -> ``gen_ai.usage.input_tokens``).  Keeping the
names here means a rename touches one file, and the collector's normalizer can
accept the old spellings on the way in (``ACCEPTED_SPELLINGS``, at the end).

Where no convention exists, spanledger uses its own documented namespace,
``spanledger.*`` (see docs/attributes.md).
"""

from __future__ import annotations

from typing import Final

# --- OpenTelemetry GenAI semantic conventions -------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
ERROR_TYPE: Final = "error.type"
CODE_FUNCTION_NAME: Final = "code.function.name"
CODE_NAMESPACE: Final = "code.namespace"
# HTTP server conventions (middleware)
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_ROUTE: Final = "http.route"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
URL_PATH: Final = "url.path"
URL_SCHEME: Final = "url.scheme"
USER_AGENT_ORIGINAL: Final = "user_agent.original"

# gen_ai.operation.name values
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_CREATE_AGENT: Final = "create_agent"

# --- Deprecated / foreign spellings the collector accepts --------------------
GEN_AI_SYSTEM_DEPRECATED: Final = "gen_ai.system"
GEN_AI_USAGE_PROMPT_TOKENS_DEPRECATED: Final = "gen_ai.usage.prompt_tokens"
GEN_AI_USAGE_COMPLETION_TOKENS_DEPRECATED: Final = "gen_ai.usage.completion_tokens"
# OpenInference (Arize)
OI_SPAN_KIND: Final = "openinference.span.kind"
OI_MODEL_NAME: Final = "llm.model_name"
OI_PROVIDER: Final = "llm.provider"
OI_SYSTEM: Final = "llm.system"
OI_TOKEN_PROMPT: Final = "llm.token_count.prompt"
OI_TOKEN_COMPLETION: Final = "llm.token_count.completion"
OI_TOKEN_CACHE_READ: Final = "llm.token_count.prompt_details.cache_read"
OI_TOKEN_CACHE_WRITE: Final = "llm.token_count.prompt_details.cache_write"
OI_TOKEN_REASONING: Final = "llm.token_count.completion_details.reasoning"
OI_TOOL_NAME: Final = "tool.name"
OI_SESSION_ID: Final = "session.id"
OI_USER_ID: Final = "user.id"
# OpenLLMetry / Traceloop
TL_SPAN_KIND: Final = "traceloop.span.kind"
TL_ENTITY_NAME: Final = "traceloop.entity.name"
TL_USAGE_PROMPT: Final = "llm.usage.prompt_tokens"
TL_USAGE_COMPLETION: Final = "llm.usage.completion_tokens"
TL_USAGE_CACHE_READ: Final = "gen_ai.usage.cache_read_input_tokens"
TL_USAGE_CACHE_CREATION: Final = "gen_ai.usage.cache_creation_input_tokens"
TL_USAGE_REASONING: Final = "llm.usage.reasoning_tokens"

# --- spanledger's own namespace ----------------------------------------------
# What kind of activity a span records; one of ActivityKind in activities.
ACTIVITY_TYPE: Final = "spanledger.activity.type"
ACTIVITY_DESCRIPTION: Final = "spanledger.activity.description"
SEVERITY: Final = "spanledger.severity"  # info | success | warning | error | critical
STATUS: Final = "spanledger.status"  # started | in_progress | completed | paused | failed | conflict
AGENT_TYPE: Final = "spanledger.agent.type"
TASK_ID: Final = "spanledger.task.id"
PROGRESS_PERCENT: Final = "spanledger.progress.percent"
CONFLICT_REASON: Final = "spanledger.conflict.reason"
AGENT_EVENT: Final = "spanledger.agent.event"  # agent_started | agent_progress | ... (see activities.agents.AgentEvent)
AGENT_TURN: Final = "spanledger.agent.turn"  # 1-based index of the turn within a run, when given

# Identities inherited by every span under a scope (see context.associate()).
USER_ID: Final = "spanledger.user.id"
SESSION_ID: Final = "spanledger.session.id"
PROJECT_ID: Final = "spanledger.project.id"
TICKET_ID: Final = "spanledger.ticket.id"
REQUEST_ID: Final = "spanledger.request.id"
ENVIRONMENT: Final = "spanledger.environment"
TENANT_ID: Final = "spanledger.tenant.id"  # set by the collector from the auth token, never trusted from spans

# Tickets
TICKET_OPERATION: Final = "spanledger.ticket.operation"  # create | update | assign | close | delete
TICKET_CHANGED_FIELDS: Final = "spanledger.ticket.changed_fields"
TICKET_ASSIGNEE: Final = "spanledger.ticket.assignee"
TICKET_CHANGES: Final = "spanledger.ticket.changes"  # JSON of the new values; content, so opt-in

# Project actions
PROJECT_ACTION_TYPE: Final = "spanledger.project.action"
PROJECT_ACTION_DETAILS: Final = "spanledger.project.action_details"

# Conversations
CONVERSATION_SEQUENCE: Final = "spanledger.conversation.sequence"
CONVERSATION_ACTIVITY: Final = "spanledger.conversation.activity"
MCP_SERVER: Final = "spanledger.mcp.server"
CONVERSATION_MESSAGE: Final = "spanledger.conversation.message"  # content, so opt-in
CONVERSATION_TOKENS: Final = "spanledger.conversation.tokens"  # informational; never summed as usage

# Product analytics events
EVENT_TYPE: Final = "spanledger.event.type"
EVENT_CATEGORY: Final = "spanledger.event.category"
EVENT_METADATA_PREFIX: Final = "spanledger.event.metadata"  # + ".<key>" per metadata entry
EVENT_ACTION: Final = "spanledger.event.action"
ENTITY_TYPE: Final = "spanledger.entity.type"
ENTITY_ID: Final = "spanledger.entity.id"
DEVICE_TYPE: Final = "spanledger.device.type"
DURATION_MS: Final = "spanledger.duration_ms"

# Tokens and cost.  Costs travel as decimal *strings* so they stay exact.
TOKENS_SOURCE: Final = "spanledger.tokens.source"  # provider | tiktoken | estimate
TOKENS_ENCODING: Final = "spanledger.tokens.encoding"  # tiktoken encoding used when source=tiktoken
LLM_TIME_TO_FIRST_CHUNK_MS: Final = "spanledger.llm.time_to_first_chunk_ms"  # streaming calls
COST_INPUT_USD: Final = "spanledger.cost.input_usd"
COST_OUTPUT_USD: Final = "spanledger.cost.output_usd"
COST_TOTAL_USD: Final = "spanledger.cost.total_usd"
COST_SOURCE: Final = "spanledger.cost.source"  # provided | computed | unknown_model | none
COST_PRICING_MODEL: Final = "spanledger.cost.pricing_model"  # the price entry that matched
# The same total as a number (USD), under the name Langfuse reads and OpenLIT writes, for backends that
# do not read ours.  A double, so not exact: spanledger.cost.total_usd stays the source of truth.
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"

COST_SOURCE_PROVIDED: Final = "provided"
COST_SOURCE_COMPUTED: Final = "computed"
COST_SOURCE_UNKNOWN_MODEL: Final = "unknown_model"
COST_SOURCE_NONE: Final = "none"  # no usage to price (e.g. the call failed before any response)

TOKENS_SOURCE_PROVIDER: Final = "provider"
TOKENS_SOURCE_TIKTOKEN: Final = "tiktoken"
TOKENS_SOURCE_ESTIMATE: Final = "estimate"

# Set by the collector when it had to shorten what a span carried.
TRUNCATED_ATTRIBUTES: Final = "spanledger.truncated.attributes"

# --- What the collector reads, spelling by spelling ---------------------------
# For each promoted column of the spans table: the attribute keys the ingest
# pipeline (schema/900_ingest_pipeline.sql) reads, first present wins.  The
# collector's validation checks the numeric ones; a test sends each spelling
# through the real pipeline and checks the column and the precedence, so the
# SQL cannot drift from this table unnoticed.
ACCEPTED_SPELLINGS: Final[dict[str, tuple[str, ...]]] = {
    "InputTokens": (GEN_AI_USAGE_INPUT_TOKENS, GEN_AI_USAGE_PROMPT_TOKENS_DEPRECATED, OI_TOKEN_PROMPT, TL_USAGE_PROMPT),
    "OutputTokens": (GEN_AI_USAGE_OUTPUT_TOKENS, GEN_AI_USAGE_COMPLETION_TOKENS_DEPRECATED, OI_TOKEN_COMPLETION,
                     TL_USAGE_COMPLETION),
    "CacheReadTokens": (GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, TL_USAGE_CACHE_READ, OI_TOKEN_CACHE_READ),
    "CacheWriteTokens": (GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, TL_USAGE_CACHE_CREATION, OI_TOKEN_CACHE_WRITE),
    "ReasoningTokens": (GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, OI_TOKEN_REASONING, TL_USAGE_REASONING),
    "Model": (GEN_AI_RESPONSE_MODEL, GEN_AI_REQUEST_MODEL, OI_MODEL_NAME, "llm.response.model", "llm.request.model"),
    "Provider": (GEN_AI_PROVIDER_NAME, GEN_AI_SYSTEM_DEPRECATED, OI_PROVIDER, OI_SYSTEM),
    "TotalCost": (COST_TOTAL_USD, "llm.cost.total", "gen_ai.usage.cost", "operation.cost"),
    "InputCost": (COST_INPUT_USD, "llm.cost.prompt"),
    "OutputCost": (COST_OUTPUT_USD, "llm.cost.completion"),
    "AgentName": (GEN_AI_AGENT_NAME, "agent.name"),
    "ToolName": (GEN_AI_TOOL_NAME, OI_TOOL_NAME),
    "UserId": (USER_ID, OI_USER_ID, "enduser.id"),
    "SessionId": (SESSION_ID, OI_SESSION_ID),
    "ConversationId": (GEN_AI_CONVERSATION_ID, OI_SESSION_ID),
    "ProjectId": (PROJECT_ID,),
    "TicketId": (TICKET_ID,),
    "Environment": (ENVIRONMENT,),  # then the resource's deployment.environment(.name)
}
"""Column -> attribute keys the collector reads for it, in precedence order."""

TOKEN_COUNT_KEYS: Final = frozenset(k for col in ("InputTokens", "OutputTokens", "CacheReadTokens", "CacheWriteTokens",
                                                  "ReasoningTokens") for k in ACCEPTED_SPELLINGS[col])
"""Every spelling of a token count: whole numbers >= 0 within the store's range."""

COST_KEYS: Final = frozenset(k for col in ("TotalCost", "InputCost", "OutputCost") for k in ACCEPTED_SPELLINGS[col])
"""Every spelling of a cost in USD: exact decimals >= 0 within the store's range."""
