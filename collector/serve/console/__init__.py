"""The web console and the browser activity tracker: static assets served by the collector.

``router`` is importable from the package (``ROUTER_MODULES = [..., "console"]``) and from
``console.console``."""

from .console import router

__all__ = ["router"]
