"""Pure ASGI middleware: request ids, body size limit, HTTP metrics."""

import asyncio
import json
import os
import re
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import ErrorCode
from gateway.graphql_errors import http_error
from gateway.metrics import GatewayMetrics

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_COMPRESSED = frozenset({b"gzip", b"deflate"})


class RequestIdMiddleware:
    """Takes `X-Request-ID` (or makes one), binds it to logs and echoes it in the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Set `scope["state"]["request_id"]` and the response header."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                if _REQUEST_ID.match(candidate):
                    request_id = candidate
                break
        request_id = request_id or os.urandom(16).hex()  # as uuid4().hex, at a third of the cost
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        # bind and reset: bound_contextvars would copy the whole context twice per request
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)


class BodyLimitMiddleware:
    """Answers 413 to bodies over their limit as sent (before they are read into memory) and 408
    to bodies not received within `read_timeout` seconds.

    A gzip or deflate body may send `max_compressed_bytes`, any other `max_bytes`; the view
    applies `max_bytes` to what a compressed body inflates to.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, max_compressed_bytes: int, read_timeout: float
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_compressed_bytes = max_compressed_bytes
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check Content-Length, then count streamed bytes against the size and the deadline."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        encoding, length = _first_headers(scope["headers"])
        if encoding.strip().lower() in _COMPRESSED:
            max_bytes, setting = self.max_compressed_bytes, "limits.max_compressed_body_bytes"
        else:
            max_bytes, setting = self.max_bytes, "limits.max_body_bytes"
        if length.isdigit() and int(length) > max_bytes:
            await self._refuse(scope, send, 413, _too_large(setting, max_bytes), setting)
            return
        received = 0
        body_complete = waiting = late = False
        task = asyncio.current_task()

        def body_late() -> None:  # one timer per request, not one timeout per receive()
            nonlocal late
            late = True
            if waiting and task is not None:
                task.cancel()

        loop = asyncio.get_running_loop()
        timer = loop.call_at(loop.time() + self.read_timeout, body_late)

        async def bounded_receive() -> Message:
            nonlocal received, body_complete, waiting
            if body_complete:  # later calls wait for the disconnect, which has no deadline
                return await receive()
            if late:
                raise _BodyTooSlow
            waiting = True
            try:
                message = await receive()
            except asyncio.CancelledError:
                if late and task is not None and task.uncancel() == 0:
                    raise _BodyTooSlow from None
                raise
            finally:
                waiting = False
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if body_complete:
                    timer.cancel()
                if received > max_bytes:
                    raise _BodyTooLarge
            return message

        response_started = False

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except _BodyTooLarge:
            if not response_started:
                await self._refuse(scope, send, 413, _too_large(setting, max_bytes), setting)
        except _BodyTooSlow:
            if not response_started:
                message = f"request body not received within {self.read_timeout:g} s"
                await self._refuse(scope, send, 408, message)
        finally:
            timer.cancel()

    async def _refuse(
        self, scope: Scope, send: Send, status: int, message: str, limit: str | None = None
    ) -> None:
        request_id = scope.get("state", {}).get("request_id", "")
        error = http_error(message, request_id, ErrorCode.BAD_USER_INPUT)
        if limit:
            error["errors"][0]["extensions"]["limit"] = limit
        body = json.dumps(error).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),  # the rest of the body may be on its way: do not wait
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _too_large(setting: str, max_bytes: int) -> str:
    return f"request body exceeds {setting} ({max_bytes} bytes)"


def _first_headers(headers: list[tuple[bytes, bytes]]) -> tuple[bytes, bytes]:
    """Content-Encoding and Content-Length (the first of repeated ones, as Starlette reads)."""
    encoding = length = None
    for name, value in headers:
        if name == b"content-encoding" and encoding is None:
            encoding = value
        elif name == b"content-length" and length is None:
            length = value
    return encoding or b"", length or b""


class _BodyTooLarge(Exception):
    """Raised inside receive() to stop reading an oversize body."""


class _BodyTooSlow(Exception):
    """Raised inside receive() when the body is not complete by its deadline."""


class HttpMetricsMiddleware:
    """Counts HTTP requests by route, method and status."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics, routes: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self._counters: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record the status once the response starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in self.routes else "other"
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            key = (route, scope["method"], status)
            counter = self._counters.get(key)
            if counter is None:  # routes, methods (httptools knows ~30) and statuses are bounded
                counter = self.metrics.http_requests.labels(route, scope["method"], str(status))
                self._counters[key] = counter
            counter.inc()


class WebSocketMessageLimitMiddleware:
    """Closes a WebSocket (1009) whose message exceeds `max_bytes`, under any ASGI server."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Measure each received message; past the limit, close and tell the app it is gone."""
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        closed = False

        async def limited_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.receive" and self._too_large(message):
                closed = True
                reason = f"message exceeds {self.max_bytes} bytes"
                await send({"type": "websocket.close", "code": 1009, "reason": reason})
                return {"type": "websocket.disconnect", "code": 1009}
            return message

        async def open_send(message: Message) -> None:
            if not closed:
                await send(message)

        await self.app(scope, limited_receive, open_send)

    def _too_large(self, message: Message) -> bool:
        text = message.get("text")
        if text is not None:
            return len(text) > self.max_bytes or len(text.encode()) > self.max_bytes
        return len(message.get("bytes") or b"") > self.max_bytes
