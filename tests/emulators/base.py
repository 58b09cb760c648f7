"""What every upstream emulator shares: call counters, switchable faults and a rate limit window."""

import asyncio
import json
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass
class Fault:
    """A planned misbehaviour for the next `times` matching calls."""

    status: int = 500
    times: int = 1
    retry_after: float | None = None
    delay: float = 0.0
    path_prefix: str = ""
    body: dict[str, object] | None = None


class UpstreamEmulator:
    """A Starlette app for an upstream API that counts every call and can be told to misbehave."""

    def __init__(self, routes: list[BaseRoute]) -> None:
        self.calls: Counter[str] = Counter()
        self.raw_paths: Counter[str] = Counter()
        self.rate_limited_calls = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._limit: tuple[int, float] | None = None
        self._window: list[float] = []
        self.app: ASGIApp = self._wrap(Starlette(routes=routes))

    def fail(
        self,
        status: int = 500,
        times: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        path_prefix: str = "",
        body: dict[str, object] | None = None,
    ) -> None:
        """Answer the next `times` calls under `path_prefix` with `status` (after `delay` s)."""
        with self._lock:
            self._faults.append(Fault(status, times, retry_after, delay, path_prefix, body))

    def slow(self, seconds: float, times: int = 1, path_prefix: str = "") -> None:
        """Delay the next `times` calls by `seconds` and then answer normally."""
        self.fail(status=0, times=times, delay=seconds, path_prefix=path_prefix)

    def enforce_rate_limit(self, requests: int, window_seconds: float) -> None:
        """Answer 429 with Retry-After to calls beyond `requests` per sliding window."""
        with self._lock:
            self._limit = (requests, window_seconds)
            self._window.clear()

    def total_calls(self, prefix: str = "") -> int:
        """Calls received (429s included) whose 'METHOD path' starts with `prefix`."""
        with self._lock:
            return sum(n for key, n in self.calls.items() if key.startswith(prefix))

    def reset(self) -> None:
        """Forget counters, faults and the rate limit."""
        with self._lock:
            self.calls.clear()
            self.raw_paths.clear()
            self.peak_in_flight = 0
            self._faults.clear()
            self._limit = None
            self._window.clear()
            self.rate_limited_calls = 0

    def _next_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.path_prefix):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _over_limit(self) -> float | None:
        """Seconds until a slot frees when the call is over the limit, else None (and count it)."""
        with self._lock:
            if self._limit is None:
                return None
            requests, window = self._limit
            now = time.monotonic()
            self._window = [t for t in self._window if now - t < window]
            if len(self._window) >= requests:
                self.rate_limited_calls += 1
                return window - (now - self._window[0])
            self._window.append(now)
            return None

    def _wrap(self, inner: ASGIApp) -> ASGIApp:
        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await inner(scope, receive, send)
                return
            path = scope["path"]
            with self._lock:
                self.calls[f"{scope['method']} {path}"] += 1
                self.raw_paths[scope["raw_path"].decode("ascii", "replace")] += 1
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                await self._serve(inner, scope, receive, send)
            finally:
                with self._lock:
                    self.in_flight -= 1

        return app

    async def _serve(self, inner: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """One HTTP call: the rate limit window, then a planned fault, then the real route."""
        path = scope["path"]
        wait = self._over_limit()
        if wait is not None:
            retry_after = str(max(1, math.ceil(wait)))
            response: Response = JSONResponse(
                {"ok": False, "error": "ratelimited"},
                status_code=429,
                headers={"Retry-After": retry_after},
            )
            await response(scope, receive, send)
            return
        fault = self._next_fault(path)
        if fault is not None:
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(math.ceil(fault.retry_after))
                response = Response(
                    json.dumps(fault.body or {"error": f"emulated {fault.status}"}),
                    status_code=fault.status,
                    headers=headers,
                    media_type="application/json",
                )
                await response(scope, receive, send)
                return
        await inner(scope, receive, send)


async def json_body(request: Request) -> dict[str, object]:
    """The request body as a JSON object, or form fields when the client posted a form.

    Forms are parsed here rather than by Starlette, which needs python-multipart for them.
    """
    if request.headers.get("content-type", "").startswith("application/json"):
        data = await request.json()
        return data if isinstance(data, dict) else {}
    return dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
