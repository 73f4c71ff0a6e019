"""What content (prompts, outputs, tool arguments/results) may leave the process.

Content is off by default: prompts carry personal data and secrets.  Turn it on
with ``configure(capture_content=True)`` or the standard
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.  When on, each
value is first passed through your ``redact`` function (on the full text, so a
secret cannot straddle the cut) and then truncated to ``max_length``
characters, with :data:`TRUNCATION_MARKER` appended.  If ``redact`` raises, the
value is replaced by :data:`REDACTION_FAILED` rather than sent unredacted.

Token counting does not depend on this policy: it reads the text in-process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from spanledger._safe import as_text, invalid_input

TRUNCATION_MARKER: Final = "...[truncated]"
REDACTION_FAILED: Final = "[redaction failed]"

Redactor = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class ContentPolicy:
    """Whether content is recorded, how long it may be and how it is redacted."""

    capture: bool = False
    max_length: int = 4096
    redact: Redactor | None = None

    def text(self, value: Any) -> str | None:
        """The recordable form of ``value``, or None when content is not captured."""
        if not self.capture or value is None:
            return None
        text = as_text(value)
        if text is None:
            return None
        if self.redact is not None:
            try:
                text = self.redact(text)
            except Exception:  # noqa: BLE001 - never leak what could not be redacted
                invalid_input("redact", "the redact function raised; content replaced by %r", REDACTION_FAILED)
                return REDACTION_FAILED
            if not isinstance(text, str):
                text = as_text(text) or ""
        if len(text) > self.max_length:
            return text[: self.max_length] + TRUNCATION_MARKER
        return text


OFF = ContentPolicy()
