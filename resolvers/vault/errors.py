"""Every error out of the Vault system names it: `extensions.upstream: "vault"`."""

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx

from gateway.errors import GatewayError, Timeout, UpstreamError, UpstreamUnavailable

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


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The JSON object Vault answered, or UPSTREAM_ERROR naming Vault for anything else."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise UpstreamError("Vault answered a body that is not a JSON object", upstream=UPSTREAM)
    return body


def json_data(response: httpx.Response) -> dict[str, Any]:
    """The `data` object of Vault's answer, or UPSTREAM_ERROR naming Vault when it has none."""
    data = json_object(response).get("data")
    if not isinstance(data, dict):
        raise UpstreamError("Vault answered without a `data` object", upstream=UPSTREAM)
    return data
