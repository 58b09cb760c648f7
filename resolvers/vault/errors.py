"""Every error out of the Vault system names it: `extensions.upstream: "vault"`."""

import contextlib
from collections.abc import Iterator

from gateway.errors import GatewayError, Timeout, UpstreamUnavailable

UPSTREAM = "vault"


@contextlib.contextmanager
def vault_errors() -> Iterator[None]:
    """Mark GatewayErrors raised inside as Vault's; a timeout is an outage (UPSTREAM_UNAVAILABLE).

    The upstream client's messages name the system, account, operation and status only, never
    a path's value, a token or a secret.
    """
    try:
        yield
    except Timeout as error:
        raise UpstreamUnavailable(error.message, upstream=UPSTREAM) from None
    except GatewayError as error:
        error.extensions["upstream"] = UPSTREAM
        raise
