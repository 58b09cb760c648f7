"""LDAP client: one STARTTLS bind per batch in a bounded thread pool, retries, the breaker."""

import asyncio
import contextlib
import math
import ssl
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from urllib.parse import urlsplit

from ldap3 import NONE, SIMPLE, SYNC, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPCertificateError,
    LDAPCommunicationError,
    LDAPException,
    LDAPResponseTimeoutError,
    LDAPSessionTerminatedByServerError,
    LDAPSocketOpenError,
    LDAPStartTLSError,
)
from ldap3.core.results import RESULT_CODES
from ldap3.utils.conv import escape_filter_chars

from gateway.breaker import BreakerState, CircuitBreaker
from gateway.credentials import CredentialHeaders
from gateway.errors import GatewayError, Timeout, UpstreamError, UpstreamUnavailable
from gateway.upstream import Retryable, UpstreamMetrics, UpstreamPolicy, retrying
from resolvers.ldap.settings import LdapAccountSettings

LDAP = "ldap"
SEARCH = "users.search"
PERSON_FILTER = "(objectclass=person)"
PASSWORD = "password"


def bind_password(value: str) -> dict[str, str]:
    """The `CredentialHeaders` builder of an account's `bind_password`: the value, by name."""
    return {PASSWORD: value}


# Result codes another attempt may fix: busy, unavailable, unwillingToPerform (FreeIPA's answer
# while it cannot reach its backend), timeLimitExceeded.
TRANSIENT_RESULTS = frozenset({3, 51, 52, 53})


def users_filter(usernames: Sequence[str]) -> str:
    """`(&(objectclass=person)(|(uid=…)…))`, every name escaped (RFC 4515)."""
    names = "".join(f"(uid={escape_filter_chars(name)})" for name in usernames)
    return f"(&{PERSON_FILTER}(|{names}))"


class _Refused(Exception):
    """The server answered an operation with a result code that is not success."""

    def __init__(self, operation: str, code: int, description: str) -> None:
        super().__init__(f"{operation}: {description}")
        self.operation = operation
        self.code = code
        self.description = description


class LdapApi:
    """Searches one LDAP server as its service account: no caching, every policy applied.

    Each batch is one connection in a thread of a pool of `max_connections`: STARTTLS (the
    certificate verified against `ca_file` and the host name), a simple bind, one search per
    `names_per_search` names, unbind. Socket errors, timeouts and busy/unavailable answers are
    retried with jittered backoff and count for the account's breaker; a refused bind or a
    missing base DN is an UPSTREAM_ERROR at once. `password` (built with `bind_password` from
    the account's credential) is asked before each batch, so a Vault-held one may rotate; it
    never appears in a message.
    """

    def __init__(
        self, account: LdapAccountSettings, metrics: UpstreamMetrics, password: CredentialHeaders
    ) -> None:
        self.account = account
        self.policy = UpstreamPolicy(
            connect_timeout=account.connect_timeout,
            read_timeout=account.timeout,
            max_connections=account.max_connections,
            max_attempts=account.max_attempts,
        )
        self._metrics = metrics
        self._label = f"{LDAP} account {account.name!r}"
        self._password = password
        gauge = metrics.breaker_state.labels(LDAP, account.name)
        gauge.set(BreakerState.CLOSED)
        self.breaker = CircuitBreaker(
            self._label, self.policy.failure_threshold, self.policy.cool_down, on_change=gauge.set
        )
        self._threads = ThreadPoolExecutor(
            max_workers=account.max_connections, thread_name_prefix=f"ldap-{account.name}"
        )
        self._address = urlsplit(account.url)

    async def existing(self, usernames: Sequence[str]) -> set[str]:
        """Which of `usernames` are persons under `cn=users,cn=accounts,<base_dn>` (lower case).

        Raises a GatewayError for the whole batch: UPSTREAM_UNAVAILABLE or TIMEOUT when the
        server cannot be reached in time, UPSTREAM_ERROR when it refuses the bind or the search.
        """
        if not usernames:
            return set()
        password = (await self._password.current())[PASSWORD]
        until = time.monotonic() + self.policy.max_total_seconds
        try:
            return await retrying(self.policy, until)(
                self._attempt, list(usernames), password, until
            )
        except Retryable as failed:
            raise failed.error from None

    async def aclose(self) -> None:
        """Stop the thread pool (a batch still on the wire ends by its own timeouts)."""
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _attempt(self, usernames: list[str], password: str, until: float) -> set[str]:
        self.breaker.before_call()
        healthy: bool | None = None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(max(0.0, until - time.monotonic())):
                found = await loop.run_in_executor(
                    self._threads, partial(self._batch, usernames, password)
                )
            healthy = True
            return found
        except TimeoutError:
            healthy = False
            raise Retryable(Timeout(f"{self._label}: the search timed out")) from None
        except LDAPResponseTimeoutError:
            healthy = False
            raise Retryable(Timeout(f"{self._label}: the server did not answer in time")) from None
        except (LDAPStartTLSError, LDAPCertificateError, ssl.SSLCertVerificationError):
            healthy = True
            raise UpstreamError(
                f"{self._label}: STARTTLS failed (the server certificate is not trusted, "
                "does not name the host, or the server does not offer TLS)"
            ) from None
        except (
            LDAPSocketOpenError,
            LDAPSessionTerminatedByServerError,
            LDAPCommunicationError,
        ) as exc:
            healthy = False
            raise Retryable(
                UpstreamUnavailable(
                    f"{self._label}: could not reach the server ({type(exc).__name__})"
                )
            ) from None
        except _Refused as refused:
            healthy = refused.code not in TRANSIENT_RESULTS
            error = self._refusal(refused)
            if healthy:
                raise error from None
            raise Retryable(error) from None
        except LDAPException as exc:
            healthy = False
            raise UpstreamError(f"{self._label}: LDAP failure ({type(exc).__name__})") from None
        finally:
            self.breaker.record(healthy)

    def _refusal(self, refused: _Refused) -> GatewayError:
        what = f"{self._label}: {refused.operation} refused ({refused.description})"
        if refused.code in TRANSIENT_RESULTS:
            return UpstreamUnavailable(what)
        if refused.code == 49:
            return UpstreamError(
                f"{self._label}: the bind as {self.account.bind_dn!r} was refused "
                "(invalidCredentials: wrong DN or password)"
            )
        if refused.code == 32:
            return UpstreamError(f"{self._label}: {self.account.users_dn!r} does not exist")
        return UpstreamError(what)

    def _batch(self, usernames: list[str], password: str) -> set[str]:
        """In a pool thread: STARTTLS, bind, one search per chunk of names, unbind."""
        server = Server(
            self._address.hostname or "",
            port=self._address.port or 389,
            get_info=NONE,
            connect_timeout=self.account.connect_timeout,
            tls=Tls(
                validate=ssl.CERT_REQUIRED,
                version=ssl.PROTOCOL_TLS_CLIENT,
                ca_certs_file=str(self.account.ca_file) if self.account.ca_file else None,
            ),
        )
        connection = Connection(
            server,
            user=self.account.bind_dn,
            password=password,
            authentication=SIMPLE,
            client_strategy=SYNC,
            receive_timeout=math.ceil(self.account.timeout),  # ldap3 packs it as an integer
            raise_exceptions=False,
            read_only=True,
        )
        operation, started = "connect", time.monotonic()
        try:
            connection.open()
            if not connection.start_tls():
                raise LDAPStartTLSError("STARTTLS refused")
            operation, started = "bind", time.monotonic()
            bound = connection.bind()
            self._observe(operation, _result_status(connection.result), started)
            if not bound:
                raise self._refused(operation, connection.result)
            found: set[str] = set()
            step = self.account.names_per_search
            for start in range(0, len(usernames), step):
                operation, started = SEARCH, time.monotonic()
                ok = connection.search(
                    self.account.users_dn,
                    users_filter(usernames[start : start + step]),
                    attributes=["uid"],
                )
                self._observe(operation, _result_status(connection.result), started)
                if not ok and connection.result.get("result") != 0:
                    raise self._refused("search", connection.result)
                for entry in connection.response or []:
                    if entry.get("type") == "searchResEntry":
                        found.update(str(uid).lower() for uid in entry["attributes"].get("uid", []))
            return found
        except LDAPException as exc:
            self._observe(operation, _status(exc), started)
            raise
        finally:
            with contextlib.suppress(LDAPException):  # a broken socket must not hide the cause
                connection.unbind()

    @staticmethod
    def _refused(operation: str, result: dict[str, object]) -> _Refused:
        code = result.get("result")
        code = code if isinstance(code, int) else -1
        return _Refused(operation, code, RESULT_CODES.get(code, "unknown result"))

    def _observe(self, operation: str, status: str, started: float) -> None:
        self._metrics.requests.labels(LDAP, self.account.name, operation, status).inc()
        self._metrics.latency.labels(LDAP, self.account.name, operation).observe(
            time.monotonic() - started
        )


def _result_status(result: dict[str, object]) -> str:
    """A bounded metric status for an answer: its result code's name (`success`...)."""
    code = result.get("result")
    return RESULT_CODES.get(code, "other") if isinstance(code, int) else "other"


def _status(exc: LDAPException) -> str:
    """A bounded metric status for a client-side failure."""
    if isinstance(exc, LDAPResponseTimeoutError):
        return "timeout"
    if isinstance(exc, LDAPStartTLSError | LDAPCertificateError | ssl.SSLCertVerificationError):
        return "tls_error"
    return "error"
