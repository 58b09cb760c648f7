"""Run an ASGI app under real uvicorn on a free loopback port, in a thread with its own loop."""

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from tests.support.ports import free_port
from tests.support.wait import wait_until


class ServerThread:
    """A uvicorn server for `app` on 127.0.0.1, started and stopped around a test; over TLS
    when given `ssl_certfile` and `ssl_keyfile`."""

    def __init__(
        self,
        app: ASGIApp,
        port: int | None = None,
        lifespan: str = "on",
        http: Callable[..., asyncio.Protocol] | str = "auto",
        ws_max_size: int = 16 * 1024 * 1024,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self.app = app
        self.scheme = "https" if ssl_certfile else "http"
        self.port = port or free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            lifespan=lifespan,  # type: ignore[arg-type]
            log_level="warning",
            loop="asyncio",
            ws="websockets-sansio",
            http=http,  # type: ignore[arg-type]
            ws_max_size=ws_max_size,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        """The base URL of this server (https:// when it was given a certificate)."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> "ServerThread":
        """Start serving and wait until the socket accepts requests."""
        self._thread.start()
        wait_until(lambda: self._server.started or not self._thread.is_alive(), 20, "uvicorn start")
        if not self._server.started:
            raise RuntimeError("uvicorn failed to start; see the log above")
        return self

    def stop(self) -> None:
        """Ask uvicorn to shut down and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(timeout=20)

    def kill(self) -> None:
        """Stop at once, as a killed process would: connections reset, answers in flight lost."""
        for connection in list(self._server.server_state.connections):
            transport = getattr(connection, "transport", None)
            loop = getattr(connection, "loop", None)
            if transport is not None and loop is not None:
                loop.call_soon_threadsafe(transport.abort)
        self._server.force_exit = True
        self.stop()

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
