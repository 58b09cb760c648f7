"""A circuit breaker per upstream account: closed, open after K failures, half-open probe."""

import time
from collections.abc import Callable
from enum import IntEnum

from gateway.errors import UpstreamUnavailable


class BreakerState(IntEnum):
    """Breaker states; the value is what the state gauge shows."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class CircuitBreaker:
    """Fails calls fast while an upstream keeps failing; state lives in this process only.

    Per process is enough: each replica learns within K calls that an upstream is down, and a
    shared breaker would add a Redis round trip to every upstream call.
    """

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        cool_down: float = 30.0,
        on_change: Callable[[BreakerState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.cool_down = cool_down
        self._on_change = on_change
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The current state."""
        return self._state

    def before_call(self) -> None:
        """Let a call through, or raise `UpstreamUnavailable` while open or while a probe runs."""
        if self._state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.cool_down:
                raise UpstreamUnavailable(f"{self.name}: circuit open after repeated failures")
            self._set(BreakerState.HALF_OPEN)
        if self._state is BreakerState.HALF_OPEN:
            if self._probing:
                raise UpstreamUnavailable(f"{self.name}: circuit half-open, probe in flight")
            self._probing = True

    def record_success(self) -> None:
        """The call worked: close the breaker."""
        self._failures = 0
        self._probing = False
        self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        """The call failed: open after `failure_threshold` in a row, or at once when probing."""
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._probing = False
            self._opened_at = self._clock()
            self._set(BreakerState.OPEN)

    def record_neutral(self) -> None:
        """The call says nothing about health (e.g. a 429); a probe slot is freed."""
        self._probing = False

    def record(self, healthy: bool | None) -> None:
        """Record a finished call: a success (True), a failure (False) or neither (None)."""
        if healthy is True:
            self.record_success()
        elif healthy is False:
            self.record_failure()
        else:
            self.record_neutral()

    def _set(self, state: BreakerState) -> None:
        if state is not self._state:
            self._state = state
            if self._on_change is not None:
                self._on_change(state)
