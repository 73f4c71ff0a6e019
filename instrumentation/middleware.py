"""ASGI and WSGI middleware: one ``api_call`` span (kind SERVER) per HTTP request.

Records ``http.request.method``, ``http.route`` (the route template when the
framework puts it in the ASGI scope — Starlette/FastAPI set ``scope["route"]`` —
or when your ``route_getter`` returns it; else the raw path), ``url.path``,
``http.response.status_code`` and the duration; 5xx responses and exceptions set
status ERROR and ``error.type``.  An incoming ``traceparent`` is continued, and
the ``x-request-id`` header becomes ``spanledger.request.id`` on this span and
every span below it (LLM and tool calls made while serving the request).

    app = SpanledgerASGIMiddleware(app)            # FastAPI: app.add_middleware(SpanledgerASGIMiddleware)
    wsgi_app = SpanledgerWSGIMiddleware(wsgi_app)  # Flask: app.wsgi_app = SpanledgerWSGIMiddleware(app.wsgi_app)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from spanledger import semconv as sc
from spanledger._safe import internal_error
from spanledger.activities._base import Activity, Attributes, put
from spanledger.propagation import extract

__all__ = ["SpanledgerASGIMiddleware", "SpanledgerWSGIMiddleware"]

ASGIApp = Callable[..., Any]
WSGIApp = Callable[..., Iterable[bytes]]


class _HttpActivity(Activity):
    __slots__ = ("method", "path", "route", "status_code")

    def __init__(self, method: str, path: str, attributes: Attributes, context: Any, scope: Mapping[str, Any]) -> None:
        super().__init__(method, attributes, kind=SpanKind.SERVER, context=context, scope=scope or None)
        self.method, self.path = method, path
        self.route: str | None = None
        self.status_code: int | None = None

    def _finish(self, span: Span, error: BaseException | None) -> None:
        if error is not None and self.status_code is None:
            self.status_code = 500
        route = self.route or self.path
        span.update_name(f"{self.method} {route}")
        attributes: Attributes = {sc.HTTP_ROUTE: route}
        put(attributes, sc.HTTP_RESPONSE_STATUS_CODE, self.status_code)
        if self.status_code is not None and self.status_code >= 500:
            span.set_status(Status(StatusCode.ERROR))
            if error is None:
                attributes[sc.ERROR_TYPE] = str(self.status_code)
        span.set_attributes(attributes)


def _request_activity(
    method: str,
    path: str,
    scheme: str | None,
    headers: Mapping[str, str],
    activity_type: str,
    agent_name: str | None,
    request_id_header: str,
) -> _HttpActivity:
    attrs: Attributes = {sc.ACTIVITY_TYPE: activity_type, sc.HTTP_REQUEST_METHOD: method, sc.URL_PATH: path}
    put(attrs, sc.URL_SCHEME, scheme)
    put(attrs, sc.USER_AGENT_ORIGINAL, headers.get("user-agent"))
    put(attrs, sc.GEN_AI_AGENT_NAME, agent_name)
    request_id = headers.get(request_id_header)
    put(attrs, sc.REQUEST_ID, request_id)
    context = extract(headers) if "traceparent" in headers else None
    return _HttpActivity(method, path, attrs, context, {sc.REQUEST_ID: request_id} if request_id else {})


class _MiddlewareOptions:
    """What both middlewares are told: the activity type, the agent, where ids and routes come from."""

    def __init__(
        self,
        app: Any,
        *,
        activity_type: str = "api_call",
        agent_name: str | None = None,
        request_id_header: str = "x-request-id",
        route_getter: Callable[[Mapping[str, Any]], str | None] | None = None,
        excluded_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.activity_type = activity_type
        self.agent_name = agent_name
        self.request_id_header = request_id_header.lower()
        self.route_getter = route_getter
        self.excluded_paths = frozenset(excluded_paths)


class SpanledgerASGIMiddleware(_MiddlewareOptions):
    """Wraps an ASGI app; non-HTTP scopes (lifespan, websocket) pass through untouched."""

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope.get("type") != "http" or scope.get("path") in self.excluded_paths:
            await self.app(scope, receive, send)
            return
        act: _HttpActivity | None = None
        try:
            headers = {
                key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope.get("headers") or ()
            }
            act = _request_activity(
                str(scope.get("method", "GET")), str(scope.get("path", "/")), scope.get("scheme"), headers,
                self.activity_type, self.agent_name, self.request_id_header,
            )  # fmt: skip
        except Exception:  # noqa: BLE001
            internal_error("asgi.start")
        if act is None:
            await self.app(scope, receive, send)
            return

        async def send_with_status(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                try:
                    act.status_code = int(message.get("status", 0))
                except (TypeError, ValueError):
                    pass
            await send(message)

        with act:
            try:
                await self.app(scope, receive, send_with_status)
            finally:
                act.route = self._route(scope)

    def _route(self, scope: Mapping[str, Any]) -> str | None:
        try:
            if self.route_getter is not None:
                return self.route_getter(scope)
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None)
            return str(template) if template else None
        except Exception:  # noqa: BLE001
            internal_error("asgi.route")
            return None


class _ClosingBody:
    """The WSGI response body; the span ends when the server closes it (after the last byte)."""

    def __init__(self, body: Iterable[bytes], act: _HttpActivity) -> None:
        self._body = body
        self._act = act

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except BaseException as exc:
            self._act.fail(exc)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._act.stop()


class SpanledgerWSGIMiddleware(_MiddlewareOptions):
    """Wraps a WSGI app; ``route_getter(environ)`` may return the route template."""

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in self.excluded_paths:
            return self.app(environ, start_response)
        act: _HttpActivity | None = None
        try:
            headers = {
                key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items() if key.startswith("HTTP_")
            }
            path = (environ.get("SCRIPT_NAME") or "") + (environ.get("PATH_INFO") or "/")
            act = _request_activity(
                str(environ.get("REQUEST_METHOD", "GET")), path, environ.get("wsgi.url_scheme"), headers,
                self.activity_type, self.agent_name, self.request_id_header,
            )  # fmt: skip
        except Exception:  # noqa: BLE001
            internal_error("wsgi.start")
        if act is None:
            return self.app(environ, start_response)

        def start_response_with_status(status: str, response_headers: Any, exc_info: Any = None) -> Any:
            try:
                act.status_code = int(str(status).split(" ", 1)[0])
            except ValueError:
                pass
            return start_response(status, response_headers, exc_info)

        token = act.attach()
        try:
            body = self.app(environ, start_response_with_status)
        except BaseException as exc:
            act.detach(token)
            act.route = self._route(environ)
            act.fail(exc)
            raise
        act.detach(token)
        act.route = self._route(environ)
        return _ClosingBody(body, act)

    def _route(self, environ: Mapping[str, Any]) -> str | None:
        if self.route_getter is None:
            return None
        try:
            return self.route_getter(environ)
        except Exception:  # noqa: BLE001
            internal_error("wsgi.route")
            return None
