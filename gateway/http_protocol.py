"""uvicorn's httptools protocol with a deadline for request headers and a bound on their size.

uvicorn has neither: its keep-alive timer is reset by every byte, so a client sending its headers
one byte at a time (or nothing at all) holds a connection for ever, and httptools accepts
headers of any size. The request body is bounded in time and size by `gateway.middleware`.
"""

import asyncio
import functools
import json
import uuid
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.errors import ErrorCode
from gateway.graphql_errors import http_error
from gateway.settings import HttpSettings


class _HeadersTooLarge(Exception):
    """Raised in a parser callback to stop parsing an oversize header block."""


class BoundedHttpProtocol(HttpToolsProtocol):
    """Closes a connection whose request headers take over `header_timeout` seconds (408) or
    whose body the app answered unread, and refuses a header block over `max_header_bytes`
    (431)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float,
        max_header_bytes: int,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """The first request's headers are due `header_timeout` after the connection opens."""
        super().connection_made(transport)
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline with the connection."""
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Count header bytes as they arrive, so an endless header block is cut early."""
        if self._header_deadline is not None:
            self._header_bytes += len(data)
        super().data_received(data)
        reading_headers = self._header_deadline is not None
        if reading_headers and self._header_bytes > self.max_header_bytes:
            self._refuse(431, f"request headers exceed {self.max_header_bytes} bytes")

    def on_message_begin(self) -> None:
        """A keep-alive connection's next request starts its own header deadline."""
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        """Stop the clock; refuse a header block that arrived whole but too large."""
        self._disarm_header_deadline()
        self._header_bytes = 0
        size = len(self.url) + sum(len(name) + len(value) for name, value in self.headers)
        if size > self.max_header_bytes:
            self._refused = True
            raise _HeadersTooLarge
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """Close rather than keep reading a body the app answered without reading to the end."""
        if self.cycle is not None and self.cycle.more_body:
            self.transport.close()
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parse error, unless this protocol refused the request itself."""
        if self._refused:
            self._refuse(431, f"request headers exceed {self.max_header_bytes} bytes")
            return
        super().send_400_response(msg)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        self._refuse(408, f"request headers not received within {self.header_timeout:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` with the JSON error shape and close the connection."""
        self._refused = True
        self._disarm_header_deadline()
        if self.transport.is_closing():
            return
        request_id = uuid.uuid4().hex
        body = json.dumps(http_error(message, request_id, ErrorCode.BAD_USER_INPUT)).encode()
        head = (
            b"content-type: application/json\r\n"
            b"content-length: %d\r\nx-request-id: %s\r\nconnection: close\r\n\r\n"
            % (len(body), request_id.encode())
        )
        self.transport.write(STATUS_LINE[status] + head + body)
        self.transport.close()


def bounded_http_protocol(settings: HttpSettings) -> "functools.partial[BoundedHttpProtocol]":
    """The protocol factory for uvicorn's `http` option (picklable for worker processes)."""
    return functools.partial(
        BoundedHttpProtocol,
        header_timeout=settings.header_timeout,
        max_header_bytes=settings.max_header_bytes,
    )
