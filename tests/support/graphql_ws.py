"""A plain graphql-transport-ws client: several operations on one socket, messages by id."""

import asyncio
import contextlib
import itertools
import json
import socket
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

SUBPROTOCOL = "graphql-transport-ws"


class GraphQLWebSocket:
    """One connection; `subscribe` starts an operation, `message(id)` awaits its next message."""

    def __init__(self, socket_: ClientConnection) -> None:
        self._socket = socket_
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self.close_code: int | None = None
        self.closed = asyncio.Event()

    @classmethod
    async def open(
        cls,
        http_url: str,
        token: str | None = None,
        *,
        receive_buffer: int | None = None,
        read: bool = True,
    ) -> "GraphQLWebSocket":
        """Connect and initialise; `read=False` leaves frames unread (a stalled listener)."""
        url = http_url.replace("http://", "ws://", 1) + "/graphql"
        host, port = http_url.removeprefix("http://").split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        connection = await connect(
            url,
            sock=sock,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            max_queue=1,
            max_size=None,
            proxy=None,
            compression=None,
        )
        client = cls(connection)
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await asyncio.wait_for(connection.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        if read:
            client.start_reading()
        return client

    def start_reading(self) -> None:
        """Read and sort incoming messages (again after a stall)."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        """Start an operation; its id."""
        operation_id = str(next(self._ids))
        self._queues[operation_id] = asyncio.Queue()
        await self._socket.send(
            json.dumps(
                {
                    "id": operation_id,
                    "type": "subscribe",
                    "payload": {"query": query, "variables": variables or {}},
                }
            )
        )
        return operation_id

    async def message(self, operation_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next message of an operation (`next`, `error` or `complete`), within `timeout`."""
        queue = self._queues[operation_id]
        getting = asyncio.ensure_future(queue.get())
        closing = asyncio.ensure_future(self.closed.wait())
        done, _ = await asyncio.wait(
            {getting, closing}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        closing.cancel()
        if getting in done:
            return getting.result()
        getting.cancel()
        if self.closed.is_set() and queue.empty():
            return {"type": "closed", "code": self.close_code}
        if self.closed.is_set():
            return queue.get_nowait()
        raise AssertionError(f"no message for operation {operation_id} within {timeout}s")

    async def events(
        self,
        operation_id: str,
        count: int,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """The next `count` events of a subscription; fails on anything else or the deadline."""
        deadline = time.monotonic() + timeout
        received: list[dict[str, Any]] = []
        while len(received) < count:
            message = await self.message(operation_id, max(deadline - time.monotonic(), 0.01))
            assert message["type"] == "next", message
            assert not message["payload"].get("errors"), message
            received.append(next(iter(message["payload"]["data"].values())))
        return received

    async def complete(self, operation_id: str) -> None:
        """Stop an operation."""
        await self._socket.send(json.dumps({"id": operation_id, "type": "complete"}))

    async def close(self) -> None:
        """Close the socket."""
        with contextlib.suppress(ConnectionClosed):
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self) -> None:
        try:
            async for raw in self._socket:
                message = json.loads(raw)
                if message["type"] == "ping":
                    await self._socket.send(json.dumps({"type": "pong"}))
                elif "id" in message and message["id"] in self._queues:
                    self._queues[message["id"]].put_nowait(message)
        except ConnectionClosed:
            pass
        self.close_code = self._socket.close_code
        self.closed.set()
