"""The state every helper reads: which tracer, content policy and price book.

Before ``configure()`` the tracer is the OTel API's proxy tracer: helpers then
produce non-recording spans (and skip all their work) unless the application
installed its own global TracerProvider, in which case spans go there.  This is
what makes helpers safe to call from library code.

The fields are replaced as a whole by ``configure()``/``shutdown()`` and by the
test fixture; readers take one attribute per call, so no lock is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry import trace

from spanledger.privacy import ContentPolicy

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from spanledger.pricing import PriceBook

TRACER_NAME = "spanledger"


VERSION = "0.1.0"
"""The instrumentation scope version of our spans: pyproject's ``version``, written here because
asking ``importlib.metadata`` at import costs ~13 ms (a test keeps the two equal)."""


def _content_from_env() -> ContentPolicy:
    from spanledger._config import CAPTURE_CONTENT, MAX_CONTENT_LENGTH

    return ContentPolicy(capture=CAPTURE_CONTENT.resolve(None), max_length=MAX_CONTENT_LENGTH.resolve(None))


@dataclass
class Runtime:
    tracer: trace.Tracer
    content: ContentPolicy
    provider: TracerProvider | None = None  # ours, when configure() or the fixture installed one
    _price_book: PriceBook | None = field(default=None, repr=False)

    @property
    def price_book(self) -> PriceBook:
        if self._price_book is None:
            from spanledger.pricing import default_price_book

            self._price_book = default_price_book()
        return self._price_book

    @price_book.setter
    def price_book(self, book: PriceBook | None) -> None:
        self._price_book = book


def api_tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME, VERSION)


RUNTIME = Runtime(tracer=api_tracer(), content=_content_from_env())
