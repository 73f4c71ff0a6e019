"""Token usage, in one convention, whatever the provider reported.

spanledger's convention (the OpenTelemetry GenAI one):

* ``input_tokens`` INCLUDES cache-read and cache-creation tokens;
* ``output_tokens`` INCLUDES reasoning tokens;
* cache and reasoning tokens are *also* reported on their own, as subsets, so
  they are priced at their own rate and never counted twice.

Providers disagree on this (Anthropic reports ``input_tokens`` without cache
tokens; Google reports ``candidates_token_count`` without thinking tokens), so
the ``from_*`` constructors below translate each provider's response usage.
They accept the SDK objects or plain dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _field(obj: Any, *names: str) -> int:
    """First present, int-like field among ``names`` on an object or mapping (else 0)."""
    for name in names:
        if obj is None:
            return 0
        value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
        if value is not None:
            try:
                return max(int(value), 0)
            except (TypeError, ValueError):
                return 0
    return 0


def _child(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens of one LLM call (see the module docstring for the convention)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        if not isinstance(other, TokenUsage):
            return NotImplemented
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_creation_tokens + other.cache_creation_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
        )

    @classmethod
    def from_openai(cls, usage: Any) -> TokenUsage:
        """OpenAI Chat Completions (``prompt_tokens``...) or Responses API (``input_tokens``...).

        OpenAI already follows the convention: prompt tokens include cached ones,
        completion tokens include reasoning ones.
        """
        prompt = _child(usage, "prompt_tokens_details") or _child(usage, "input_tokens_details")
        completion = _child(usage, "completion_tokens_details") or _child(usage, "output_tokens_details")
        return cls(
            input_tokens=_field(usage, "prompt_tokens", "input_tokens"),
            output_tokens=_field(usage, "completion_tokens", "output_tokens"),
            cache_read_tokens=_field(prompt, "cached_tokens"),
            reasoning_tokens=_field(completion, "reasoning_tokens"),
        )

    @classmethod
    def from_anthropic(cls, usage: Any) -> TokenUsage:
        """Anthropic Messages API: its ``input_tokens`` EXCLUDE cache tokens, so we add them."""
        cache_read = _field(usage, "cache_read_input_tokens")
        cache_creation = _field(usage, "cache_creation_input_tokens")
        return cls(
            input_tokens=_field(usage, "input_tokens") + cache_read + cache_creation,
            output_tokens=_field(usage, "output_tokens"),
            cache_read_tokens=cache_read,
            cache_creation_tokens=cache_creation,
        )

    @classmethod
    def from_google(cls, usage_metadata: Any) -> TokenUsage:
        """Gemini ``usage_metadata``: thinking tokens are NOT in ``candidates_token_count``, so we add them."""
        thoughts = _field(usage_metadata, "thoughts_token_count", "thoughtsTokenCount")
        return cls(
            input_tokens=_field(usage_metadata, "prompt_token_count", "promptTokenCount"),
            output_tokens=_field(usage_metadata, "candidates_token_count", "candidatesTokenCount") + thoughts,
            cache_read_tokens=_field(usage_metadata, "cached_content_token_count", "cachedContentTokenCount"),
            reasoning_tokens=thoughts,
        )

    @classmethod
    def from_response(cls, usage: Any, provider: str | None = None) -> TokenUsage:
        """Any provider's usage object or dict, recognised by its fields (``provider`` breaks ties)."""
        if isinstance(usage, TokenUsage):
            return usage

        def has(name: str) -> bool:
            return _child(usage, name) is not None

        if has("prompt_token_count") or has("promptTokenCount") or has("candidates_token_count"):
            return cls.from_google(usage)
        if has("cache_read_input_tokens") or has("cache_creation_input_tokens"):
            return cls.from_anthropic(usage)
        if (provider or "").lower() in ("anthropic", "aws.bedrock") and not has("input_tokens_details"):
            return cls.from_anthropic(usage)
        return cls.from_openai(usage)
