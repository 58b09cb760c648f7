"""Upstream HTTP policy: pooled client per account, a rate token per attempt, retries, breaker."""

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
from opentelemetry.trace import Span, SpanKind, get_current_span
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from gateway import tracing
from gateway.breaker import BreakerState, CircuitBreaker
from gateway.errors import (
    BadUserInput,
    GatewayError,
    Timeout,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamUnavailable,
)
from gateway.ratelimit import Bucket, RateLimiter

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Params = Mapping[str, str | list[str]]
RateLimitSignal = Callable[[httpx.Response], float | None]
"""Seconds an upstream response asks every caller to wait, or None when it asks nothing."""


OutageSignal = Callable[[httpx.Response], str | None]
"""Why a successful HTTP answer is really a transient upstream failure, or None when it is not."""


HeaderSource = Callable[[], Awaitable[Mapping[str, str]]]
"""The auth headers of an account whose credential can change (one read from Vault)."""


_TEMPLATE = re.compile(r"^(/([A-Za-z0-9_~-][A-Za-z0-9._~-]*|\{\}))*/?$")


class UpstreamPath:
    """A request path: a literal template whose `{}` slots take values percent-encoded one by one.

    The only kind of path `UpstreamClient.request` accepts, so no system can paste a caller's
    string into a URL: each value becomes exactly one segment (`/`, `?`, `#`, `%` and control
    characters encoded), a value in a tuple becomes several (a file path), and `.`, `..` or
    empty segments are refused. The template itself may hold only plain segments and slots.
    """

    __slots__ = ("text",)

    def __init__(self, template: str, *values: str | tuple[str, ...]) -> None:
        if not _TEMPLATE.match(template) or template.count("{}") != len(values):
            raise ValueError(f"not an upstream path template: {template[:80]!r}")
        encoded = [
            "/".join(_segment(part) for part in value)
            if isinstance(value, tuple)
            else _segment(value)
            for value in values
        ]
        self.text = template.format(*encoded)

    @classmethod
    def link(cls, url: str, base_url: str) -> "UpstreamPath":
        """A URL the upstream gave (a next page), refused unless it stays under `base_url`."""
        base = base_url.rstrip("/") + "/"
        if not url.startswith(base):
            raise UpstreamError("the upstream pointed outside its configured API URL")
        path = cls("")
        path.text = url
        return path

    def __repr__(self) -> str:
        return f"UpstreamPath({self.text!r})"


def _segment(value: str) -> str:
    if value in ("", ".", ".."):
        raise BadUserInput(f"{value!r} cannot be a segment of an upstream path")
    return quote(value, safe="")


_REQUEST_SLOTS: ContextVar[asyncio.Semaphore | None] = ContextVar(
    "upstream_request_slots", default=None
)


class FetchSlots:
    """Bounds upstream HTTP requests in flight: per process, and per GraphQL request.

    A request's bound travels in a context variable (`enter_request`), so every task the request
    starts (DataLoader batches, single-flight fetches) counts against it; work outside a request
    (tasks, workers) is bounded by the process limit only.
    """

    def __init__(self, per_process: int, per_request: int) -> None:
        self._process = asyncio.Semaphore(per_process)
        self.per_request = per_request

    def request_bound(self) -> asyncio.Semaphore:
        """A fresh bound for one request, to pass to `enter_request` in each of its tasks."""
        return asyncio.Semaphore(self.per_request)

    @staticmethod
    def enter_request(bound: asyncio.Semaphore) -> None:
        """Count upstream requests made from here on (in this context) against `bound`."""
        _REQUEST_SLOTS.set(bound)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """A slot of the current request (if any), then one of the process."""
        bound = _REQUEST_SLOTS.get()
        async with contextlib.AsyncExitStack() as stack:
            if bound is not None:
                await stack.enter_async_context(bound)
            await stack.enter_async_context(self._process)
            yield


def no_outage(response: httpx.Response) -> None:
    """The plain HTTP reading: a 2xx/3xx answer is a success."""
    return


def http_429(response: httpx.Response) -> float | None:
    """The plain HTTP signal: a 429 asks for its `Retry-After` (default 1 s)."""
    return retry_after(response) if response.status_code == 429 else None


@dataclass(frozen=True)
class UpstreamAccount:
    """One upstream account: its name (never a secret), base URL, rate bucket and auth headers.

    Credentials go in `headers` only, never in URLs, so no error message or log can show them.
    `rate_limit_signal` reads how long a response asks to wait (default: a 429's Retry-After);
    systems that signal rate limits otherwise (GitHub's 403 secondary limit) pass their own.
    `outage_signal` finds transient failures inside successful answers (Slack's HTTP 200 with
    `ok: false, error: internal_error`), so they are retried and count for the breaker.
    `credential_headers`, when set, gives auth headers that may change (a secret read from
    Vault); it is awaited once per logical request, before any attempt. `verify` False skips
    TLS certificate checks (a cluster's `insecure_skip_tls_verify`), never the default.
    """

    system: str
    name: str
    base_url: str
    bucket: Bucket
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    rate_limit_signal: RateLimitSignal = http_429
    outage_signal: OutageSignal = no_outage
    credential_headers: HeaderSource | None = field(default=None, repr=False)
    verify: bool = True


@dataclass(frozen=True)
class UpstreamPolicy:
    """Timeouts, pool size, retry bounds and breaker settings for one upstream account."""

    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_connections: int = 20
    max_attempts: int = 4
    max_total_seconds: float = 30.0
    backoff_initial: float = 0.2
    backoff_max: float = 5.0
    failure_threshold: int = 5
    cool_down: float = 30.0


class UpstreamMetrics:
    """Upstream requests, latency and breaker state, in one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "qontract_gateway_upstream_requests_total",
            "Upstream HTTP attempts by status (HTTP code, timeout, error)",
            ["system", "account", "operation", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "qontract_gateway_upstream_request_duration_seconds",
            "Upstream HTTP attempt latency",
            ["system", "account", "operation"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            "qontract_gateway_upstream_breaker_state",
            "Circuit breaker state (0 closed, 1 half-open, 2 open)",
            ["system", "account"],
            registry=registry,
        )


@dataclass(frozen=True)
class _Body:
    """What one request sends besides its method and path."""

    params: "Params | None"
    json: Any
    data: Mapping[str, str] | None
    answers: frozenset[int] = frozenset()
    headers: Mapping[str, str] | None = field(default=None, repr=False)


class Retryable(Exception):
    """An attempt failed in a way another attempt may fix; `error` is what the caller sees."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


def retrying(policy: UpstreamPolicy, until: float, retry: bool = True) -> AsyncRetrying:
    """The retry loop of one logical call: `Retryable` failures are tried again with jittered
    backoff, at most `policy.max_attempts` times (once without `retry`), none after `until`
    (a `time.monotonic()` instant)."""
    return AsyncRetrying(
        stop=stop_after_attempt(policy.max_attempts if retry else 1)
        | stop_before_delay(max(0.0, until - time.monotonic())),
        wait=wait_exponential_jitter(
            multiplier=policy.backoff_initial, max=policy.backoff_max, jitter=policy.backoff_initial
        ),
        retry=retry_if_exception_type(Retryable),
        reraise=True,
    )


class UpstreamClient:
    """HTTP access to one upstream account with every gateway policy applied to each attempt."""

    def __init__(
        self,
        account: UpstreamAccount,
        limiter: RateLimiter,
        metrics: UpstreamMetrics,
        policy: UpstreamPolicy | None = None,
        slots: FetchSlots | None = None,
    ) -> None:
        self.account = account
        self.policy = policy or UpstreamPolicy()
        self._slots = slots or FetchSlots(self.policy.max_connections, self.policy.max_connections)
        self._limiter = limiter
        self._metrics = metrics
        self._label = f"{account.system} account {account.name!r}"
        gauge = metrics.breaker_state.labels(account.system, account.name)
        gauge.set(BreakerState.CLOSED)
        self.breaker = CircuitBreaker(
            self._label,
            self.policy.failure_threshold,
            self.policy.cool_down,
            on_change=gauge.set,
        )
        self._client = httpx.AsyncClient(
            base_url=account.base_url,
            headers=dict(account.headers),
            verify=account.verify,
            timeout=httpx.Timeout(self.policy.read_timeout, connect=self.policy.connect_timeout),
            limits=httpx.Limits(
                max_connections=self.policy.max_connections,
                max_keepalive_connections=self.policy.max_connections,
            ),
        )

    async def request(
        self,
        operation: str,
        method: str,
        path: UpstreamPath,
        *,
        params: Params | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        deadline: float | None = None,
        bucket: Bucket | None = None,
        answers: frozenset[int] = frozenset(),
        credentials: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one logical request and return its 2xx/3xx response, or raise a `GatewayError`.

        `operation` names the call in metrics (`schedules.get`). GET/HEAD/OPTIONS, or calls marked
        `idempotent`, are retried on connect errors, timeouts, 5xx and rate-limit answers (which
        also pause the shared bucket for every caller) with jittered backoff;
        `deadline` (a `time.monotonic()` instant) bounds the whole, waits for tokens included.
        `data` is sent as a form body. `bucket` replaces the account's bucket for upstreams whose
        limits are per method (Slack); a 429 then pauses only that bucket. Each attempt holds a
        fetch slot (`FetchSlots`) while it is on the wire. 4xx statuses in `answers` are returned
        as answers rather than raised (qontract-server's 400, 404 and 413). `credentials`
        replaces the account's `credential_headers` for this call (Vault's login and renewal).
        """
        if not isinstance(path, UpstreamPath):
            raise TypeError("upstream requests take an UpstreamPath, never a plain string")
        method = method.upper()
        retry = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        until = time.monotonic() + self.policy.max_total_seconds
        if deadline is not None:
            until = min(until, deadline)
        if credentials is None and self.account.credential_headers is not None:
            credentials = await self.account.credential_headers()
        attempts = retrying(self.policy, until, retry)
        with tracing.span(
            f"{self.account.system} {operation}",
            {
                "qontract.system": self.account.system,
                "qontract.account": self.account.name,
                "qontract.upstream.operation": operation,
                "http.request.method": method,
            },
            kind=SpanKind.CLIENT,
        ) as span:
            try:
                response: httpx.Response = await attempts(
                    self._attempt,
                    operation,
                    method,
                    path,
                    _Body(params, json, data, answers, credentials),
                    until,
                    bucket or self.account.bucket,
                )
            except Retryable as failed:
                _traced_end(span, attempts, failed.error)
                raise failed.error from None
            except GatewayError as error:
                _traced_end(span, attempts, error)
                raise
            _traced_end(span, attempts, response)
            return response

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def _attempt(
        self,
        operation: str,
        method: str,
        path: UpstreamPath,
        body: "_Body",
        deadline: float,
        bucket: Bucket,
    ) -> httpx.Response:
        self.breaker.before_call()
        healthy: bool | None = None
        try:
            waited = await self._limiter.acquire(bucket, deadline)
            if tracing.enabled():
                get_current_span().add_event("rate_limit.acquired", {"waited_seconds": waited})
            started = time.monotonic()
            try:
                async with asyncio.timeout(max(0.0, deadline - started)), self._slots.hold():
                    response = await self._client.request(
                        method,
                        path.text,
                        params=body.params,
                        json=body.json,
                        data=body.data,
                        headers=body.headers,
                    )
            except (httpx.TimeoutException, TimeoutError):
                healthy = False
                self._observe(operation, "timeout", started)
                raise Retryable(Timeout(f"{self._label}: {operation} timed out")) from None
            except httpx.TransportError as exc:
                healthy = False
                self._observe(operation, "error", started)
                raise Retryable(
                    UpstreamUnavailable(
                        f"{self._label}: {operation} could not reach the upstream "
                        f"({type(exc).__name__})"
                    )
                ) from None
            status = response.status_code
            self._observe(operation, str(status), started)
            pause = self.account.rate_limit_signal(response)
            if pause is not None:
                await self._limiter.pause(bucket, pause)
            if pause is not None and status >= 400:
                raise Retryable(
                    UpstreamRateLimited(
                        f"{self._label}: {operation} rate limited by the upstream",
                        retry_after=pause,
                    )
                )
            healthy = status < 500
            if status >= 500:
                raise Retryable(
                    UpstreamUnavailable(
                        f"{self._label}: {operation} answered HTTP {status}", status=status
                    )
                )
            if status >= 400 and status not in body.answers:
                raise UpstreamError(
                    f"{self._label}: {operation} answered HTTP {status}", status=status
                )
            outage = self.account.outage_signal(response)
            if outage is not None:
                healthy = False
                raise Retryable(
                    UpstreamUnavailable(
                        f"{self._label}: {operation} failed: {outage}", error=outage
                    )
                )
            return response
        finally:
            self.breaker.record(healthy)

    def _observe(self, operation: str, status: str, started: float) -> None:
        system, name = self.account.system, self.account.name
        self._metrics.requests.labels(system, name, operation, status).inc()
        self._metrics.latency.labels(system, name, operation).observe(time.monotonic() - started)


def _traced_end(
    span: Span | None, attempts: AsyncRetrying, end: httpx.Response | GatewayError
) -> None:
    """Note on the upstream span the final status and how many attempts were retries."""
    if span is None:
        return
    span.set_attribute(
        "qontract.upstream.retries", attempts.statistics.get("attempt_number", 1) - 1
    )
    if isinstance(end, httpx.Response):
        span.set_attribute("http.response.status_code", end.status_code)
        return
    status = end.extensions.get("status")
    if isinstance(status, int):
        span.set_attribute("http.response.status_code", status)
    tracing.failed(span, end.code.value)


def retry_after(response: httpx.Response, default: float = 1.0) -> float:
    """Seconds from a Retry-After header (delta seconds or HTTP date), else `default`."""
    value = response.headers.get("retry-after")
    if value is None:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default
