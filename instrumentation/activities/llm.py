"""LLM calls: an invocation object told the usage after the call (or counting it).

    with spanledger.llm_call("gpt-4o", provider="openai", prompt=messages) as call:
        response = client.chat.completions.create(...)
        call.set_response(model=response.model, output=response.choices[0].message.content)
        call.set_usage(response.usage)          # any provider's usage object, or TokenUsage

At the end the span gets the ``gen_ai.usage.*`` attributes and the cost:

* usage: reported by the provider wins; otherwise counted from the prompt and
  output text (``spanledger.tokens.source`` says which);
* cost: a cost you pass to :meth:`LLMCall.set_cost` is kept (``provided``);
  otherwise it is computed from the price book (``computed``); a model nobody
  prices gets no cost and ``unknown_model`` — never a silent $0.

All final attributes are set in one call, and cost work is skipped when the
span is not recording, to keep the hot path cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from opentelemetry.trace import Span, SpanKind

from spanledger import _clock
from spanledger import semconv as sc
from spanledger._jsonish import to_json
from spanledger._runtime import RUNTIME
from spanledger._safe import as_count, as_text, internal_error, invalid_input, never_fail, safe_str
from spanledger.activities._base import Activity, Attributes, merge_attributes, put
from spanledger.pricing import cost_from_rates, decimal_text
from spanledger.privacy import ContentPolicy
from spanledger.tokens import count_tokens, encoding_for_model
from spanledger.usage import TokenUsage


def _usd(value: Any, what: str) -> tuple[str, Decimal] | None:
    """A provided USD amount as (exact decimal text, Decimal); a plain decimal string is kept as given."""
    if value is None:
        return None
    try:
        if isinstance(value, str):
            number = Decimal(value)
        else:
            number = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else str(value))
    except (InvalidOperation, ValueError, TypeError):
        invalid_input("cost", "ignored a non-numeric %s %r", what, value)
        return None
    if not number.is_finite() or number < 0:
        invalid_input("cost", "ignored an invalid %s %r", what, value)
        return None
    if isinstance(value, str) and "e" not in value and "E" not in value:
        return value.strip(), number
    return decimal_text(number), number


def _parts(content: Any, policy: ContentPolicy) -> list[dict[str, Any]]:
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and "text" in part:
                parts.append({"type": "text", "content": policy.text(part["text"])})
            elif isinstance(part, Mapping):
                parts.append({"type": str(part.get("type", "unknown"))})
            else:
                parts.append({"type": "text", "content": policy.text(part)})
        return parts
    return [{"type": "text", "content": policy.text(content)}]


def input_messages_json(prompt: Any, policy: ContentPolicy) -> str:
    """``gen_ai.input.messages``: each text part redacted and truncated on its own, so the JSON stays valid."""
    if isinstance(prompt, list) and all(isinstance(message, Mapping) for message in prompt):
        messages = [
            {"role": str(message.get("role", "user")), "parts": _parts(message.get("content"), policy)}
            for message in prompt
        ]
    else:
        messages = [{"role": "user", "parts": _parts(prompt, policy)}]
    return to_json(messages)


def output_messages_json(output: str, finish_reason: str | None, policy: ContentPolicy) -> str:
    message: dict[str, Any] = {"role": "assistant", "parts": _parts(output, policy)}
    if finish_reason:
        message["finish_reason"] = finish_reason
    return to_json([message])


class LLMCall(Activity):
    """One model call; see the module docstring.  Use as ``with`` or start()/stop()/fail()."""

    __slots__ = (
        "model", "provider", "_prompt", "_output", "_usage", "_cost_attrs", "_final", "_finish_reasons", "usage", "cost",
    )  # fmt: skip

    def __init__(self, name: str, attributes: Attributes, model: str | None, provider: str | None, prompt: Any) -> None:
        super().__init__(name, attributes, kind=SpanKind.CLIENT)
        self.model = model
        self.provider = provider
        self._prompt = prompt
        self._output: list[str] | None = None
        self._usage: TokenUsage | None = None
        self._cost_attrs: Attributes | None = None
        self._final: Attributes = {}
        self._finish_reasons: list[str] | None = None
        self.usage: TokenUsage | None = None  # final usage, after stop()
        self.cost: Decimal | None = None  # final total cost in USD, after stop()

    # -- told during / after the call ---------------------------------------
    def set_usage(
        self,
        usage: Any = None,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read_tokens: int | None = None,
        cache_creation_tokens: int | None = None,
        reasoning_tokens: int | None = None,
    ) -> None:
        """Usage reported by the provider: a TokenUsage, a provider usage object/dict, or the fields.

        Fields follow spanledger's convention: input includes cache tokens,
        output includes reasoning tokens (``TokenUsage.from_*`` translate).
        """
        try:
            base = TokenUsage.from_response(usage, self.provider) if usage is not None else TokenUsage()
            self._usage = TokenUsage(
                as_count(input_tokens, "input_tokens") if input_tokens is not None else as_count(base.input_tokens, "usage"),
                as_count(output_tokens, "output_tokens") if output_tokens is not None else as_count(base.output_tokens, "usage"),
                as_count(cache_read_tokens, "cache_read_tokens") if cache_read_tokens is not None else base.cache_read_tokens,
                as_count(cache_creation_tokens, "cache_creation_tokens")
                if cache_creation_tokens is not None
                else base.cache_creation_tokens,
                as_count(reasoning_tokens, "reasoning_tokens") if reasoning_tokens is not None else base.reasoning_tokens,
            )
        except Exception:  # noqa: BLE001
            internal_error("LLMCall.set_usage")

    def set_cost(self, total_usd: Any, *, input_usd: Any = None, output_usd: Any = None) -> None:
        """A cost the provider (or your gateway) reported; kept as is and marked ``provided``."""
        try:
            total = _usd(total_usd, "total_usd")
            if total is None:
                return
            attributes: Attributes = {sc.COST_TOTAL_USD: total[0], sc.GEN_AI_USAGE_COST: float(total[1]),
                                      sc.COST_SOURCE: sc.COST_SOURCE_PROVIDED}
            if input_usd is not None and (amount := _usd(input_usd, "input_usd")) is not None:
                attributes[sc.COST_INPUT_USD] = amount[0]
            if output_usd is not None and (amount := _usd(output_usd, "output_usd")) is not None:
                attributes[sc.COST_OUTPUT_USD] = amount[0]
            self._cost_attrs = attributes
            self.cost = total[1]
        except Exception:  # noqa: BLE001
            internal_error("LLMCall.set_cost")

    @never_fail()
    def set_response(
        self,
        *,
        model: str | None = None,
        response_id: str | None = None,
        finish_reasons: Sequence[str] | str | None = None,
        output: Any = None,
    ) -> None:
        """What the API answered: the exact model version, response id, finish reasons, output text."""
        final = self._final
        if model:
            final[sc.GEN_AI_RESPONSE_MODEL] = str(model)
        put(final, sc.GEN_AI_RESPONSE_ID, response_id)
        if finish_reasons is not None:
            reasons = [finish_reasons] if isinstance(finish_reasons, str) else [str(r) for r in finish_reasons]
            self._finish_reasons = reasons
            final[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
        if output is not None:
            self.set_output(output)

    @never_fail()
    def set_output(self, output: Any) -> None:
        """The complete output text (replaces chunks appended so far)."""
        self._output = [output if isinstance(output, str) else (as_text(output) or "")]

    @never_fail()
    def append_output(self, chunk: Any) -> None:
        """A streamed chunk; the first one records the time to first chunk."""
        if self._output is None:
            self._output = []
            span = self.span
            start = getattr(span, "start_time", None)
            if start:
                self._final[sc.LLM_TIME_TO_FIRST_CHUNK_MS] = (_clock.time_ns() - start) / 1e6
        if chunk is not None:
            self._output.append(chunk if isinstance(chunk, str) else (as_text(chunk) or ""))

    # -- at the end -----------------------------------------------------------
    def _finish(self, span: Span, error: BaseException | None) -> None:
        attributes = self._final
        usage = self._usage
        model = attributes.get(sc.GEN_AI_RESPONSE_MODEL) or self.model
        output = "".join(self._output) if self._output is not None else None
        if usage is not None:
            attributes[sc.TOKENS_SOURCE] = sc.TOKENS_SOURCE_PROVIDER
        elif error is None and (self._prompt is not None or output is not None):
            n_in, in_source = count_tokens(self._prompt, model)  # type: ignore[arg-type]
            n_out, out_source = count_tokens(output, model)  # type: ignore[arg-type]
            usage = TokenUsage(n_in, n_out)
            if in_source == "estimate" or out_source == "estimate":
                attributes[sc.TOKENS_SOURCE] = sc.TOKENS_SOURCE_ESTIMATE
            else:
                attributes[sc.TOKENS_SOURCE] = sc.TOKENS_SOURCE_TIKTOKEN
                attributes[sc.TOKENS_ENCODING] = encoding_for_model(model)  # type: ignore[arg-type]
        if usage is not None:
            self.usage = usage
            attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
            attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
            attributes[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
            attributes[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_creation_tokens
            attributes[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
            if usage.cache_read_tokens + usage.cache_creation_tokens > usage.input_tokens:
                invalid_input("usage", "cache tokens exceed input tokens; input_tokens must include cache tokens")
        if self._cost_attrs is not None:
            attributes.update(self._cost_attrs)
        elif usage is None:
            attributes[sc.COST_SOURCE] = sc.COST_SOURCE_NONE
        else:
            rates = RUNTIME.price_book.rates(self.provider, model) if isinstance(model, str) else None
            if rates is None:
                attributes[sc.COST_SOURCE] = sc.COST_SOURCE_UNKNOWN_MODEL
            else:
                cost = cost_from_rates(rates, usage, getattr(span, "start_time", None))  # the price at the call's time
                self.cost = cost.total_usd
                attributes[sc.COST_INPUT_USD] = decimal_text(cost.input_usd)
                attributes[sc.COST_OUTPUT_USD] = decimal_text(cost.output_usd)
                attributes[sc.COST_TOTAL_USD] = decimal_text(cost.total_usd)
                attributes[sc.GEN_AI_USAGE_COST] = float(cost.total_usd)  # for Langfuse / OpenLIT readers
                attributes[sc.COST_SOURCE] = sc.COST_SOURCE_COMPUTED
                attributes[sc.COST_PRICING_MODEL] = rates.pricing_model
        policy = RUNTIME.content
        if policy.capture:
            if self._prompt is not None:
                attributes[sc.GEN_AI_INPUT_MESSAGES] = input_messages_json(self._prompt, policy)
            if output is not None:
                reason = self._finish_reasons[0] if self._finish_reasons else None
                attributes[sc.GEN_AI_OUTPUT_MESSAGES] = output_messages_json(output, reason, policy)
        span.set_attributes(attributes)

    def __enter__(self) -> LLMCall:
        return super().__enter__()  # type: ignore[no-any-return]


@never_fail(fallback=lambda: LLMCall("chat", {}, None, None, None))
def llm_call(
    model: str | None,
    *,
    provider: str | None = None,
    operation: str = sc.OP_CHAT,
    prompt: Any = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> LLMCall:
    """An LLM call span named ``"{operation} {model}"`` (e.g. ``chat gpt-4o``), kind CLIENT.

    ``prompt`` (a string or chat messages) is used to count input tokens when
    the provider reports no usage, and recorded only if content capture is on.
    """
    if model is not None and not isinstance(model, str):
        model = safe_str(model)
    operation = str(operation) if operation else sc.OP_CHAT
    attrs: Attributes = {sc.GEN_AI_OPERATION_NAME: operation, sc.ACTIVITY_TYPE: "llm_call"}
    if provider:
        attrs[sc.GEN_AI_PROVIDER_NAME] = provider
    if model:
        attrs[sc.GEN_AI_REQUEST_MODEL] = model
    if max_tokens is not None:
        put(attrs, sc.GEN_AI_REQUEST_MAX_TOKENS, max_tokens)
    if temperature is not None:
        put(attrs, sc.GEN_AI_REQUEST_TEMPERATURE, temperature)
    if attributes:
        merge_attributes(attrs, attributes)
    return LLMCall(f"{operation} {model}" if model else operation, attrs, model, provider, prompt)
