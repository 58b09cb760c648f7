"""What can go wrong in an integration run, each failure mapped to one exit code."""

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of `qontract-reconcile-api` (documented in the README)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    AUTH_REFUSED = 4


class IntegrationError(Exception):
    """An expected failure: reported as one line, without a traceback."""

    exit_code = ExitCode.FAILED


class ConfigError(IntegrationError):
    """Missing or invalid configuration, or options that name nothing that exists."""

    exit_code = ExitCode.USAGE


class ServiceUnreachable(IntegrationError):
    """A service (gateway, qontract-server, Unleash) refused the connection or timed out."""

    exit_code = ExitCode.UNREACHABLE

    def __init__(self, service: str, url: str, reason: str) -> None:
        super().__init__(f"{service} at {url} is unreachable: {reason}")
        self.service = service
        self.url = url


class GatewayUnreachable(ServiceUnreachable):
    """The gateway (or another GraphQL endpoint this client calls) cannot be reached."""


class AuthRefused(IntegrationError):
    """The endpoint refused the token: UNAUTHENTICATED, FORBIDDEN, HTTP 401 or 403."""

    exit_code = ExitCode.AUTH_REFUSED

    def __init__(self, service: str, code: str, message: str) -> None:
        super().__init__(f"{service} refused the token ({code}): {message}")
        self.code = code


class GatewayQueryError(IntegrationError):
    """A GraphQL error other than an auth refusal, with its `extensions.code` and path."""

    def __init__(self, service: str, code: str, message: str, path: list[str | int]) -> None:
        where = f" at {'.'.join(str(part) for part in path)}" if path else ""
        super().__init__(f"{service} answered {code}{where}: {message}")
        self.code = code
        self.message = message
        self.path = path


class IntegrationFailed(IntegrationError):
    """The integration ran but reports errors (or a task that did not finish in time)."""
