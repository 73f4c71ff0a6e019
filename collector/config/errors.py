"""The one error a wrong configuration raises."""

from __future__ import annotations


class ConfigError(ValueError):
    """The configuration is wrong; the message names the key and says what is expected."""
