"""The feature-toggle gate, read as qontract-reconcile reads it: the official UnleashClient."""

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from requests.exceptions import RequestException
from UnleashClient.cache import BaseCache
from UnleashClient.clients.unleash_client import UnleashClient
from UnleashClient.constants import FEATURES_URL
from UnleashClient.utils import InstanceAllowType

from reconcile_client.config import ClientConfig, Endpoint
from reconcile_client.errors import ConfigError

logger = logging.getLogger(__name__)

APP_NAME = "qontract-reconcile"
CLUSTER_PARAMETER = "cluster_name"


def _cluster_names(parameters: Mapping[str, Any]) -> list[str]:
    """The comma-separated `cluster_name` parameter of a cluster strategy, trimmed."""
    return [name.strip() for name in str(parameters.get(CLUSTER_PARAMETER, "")).split(",")]


class EnableClusterStrategy:
    """Custom strategy `enableCluster`: on only for a context naming a listed cluster."""

    def apply(self, parameters: Mapping[str, Any], context: Mapping[str, Any] | None) -> bool:
        """On when the context's cluster is listed; off without a cluster in the context."""
        if context and CLUSTER_PARAMETER in context:
            return context[CLUSTER_PARAMETER] in _cluster_names(parameters)
        return False


class DisableClusterStrategy:
    """Custom strategy `disableCluster`: off only for a context naming a listed cluster."""

    def apply(self, parameters: Mapping[str, Any], context: Mapping[str, Any] | None) -> bool:
        """Off when the context's cluster is listed; on without a cluster in the context."""
        if context and CLUSTER_PARAMETER in context:
            return context[CLUSTER_PARAMETER] not in _cluster_names(parameters)
        return True


CUSTOM_STRATEGIES = {
    "enableCluster": EnableClusterStrategy,
    "disableCluster": DisableClusterStrategy,
}


class MemoryCache(BaseCache):
    """UnleashClient's cache in memory (its default writes to disk); says whether a fetch worked."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def set(self, key: str, value: Any) -> None:
        """Store one value."""
        self._values[key] = value

    def mset(self, data: dict[str, Any]) -> None:
        """Store several values."""
        self._values.update(data)

    def get(self, key: str, default: Any = None) -> Any:
        """A stored value, or `default`."""
        return self._values.get(key, default)

    def exists(self, key: str) -> bool:
        """Whether `key` is stored."""
        return key in self._values

    def destroy(self) -> None:
        """Forget everything."""
        self._values.clear()

    @property
    def fetched(self) -> bool:
        """Whether Unleash answered a feature list (the client caches only an answer it got)."""
        return bool(self._values.get(FEATURES_URL))


def _read_toggle(endpoint: Endpoint, token: str, name: str, default: bool) -> tuple[bool, bool]:
    """(state, fetched) of toggle `name` from one short-lived UnleashClient; blocks."""
    cache = MemoryCache()
    client = UnleashClient(
        url=endpoint.url,
        app_name=APP_NAME,
        custom_headers={"Authorization": token},
        cache=cache,
        custom_strategies={key: strategy() for key, strategy in CUSTOM_STRATEGIES.items()},
        request_timeout=max(1, round(endpoint.timeout)),
        multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,
    )
    try:
        try:
            client.initialize_client()
        except (RequestException, ValueError) as error:
            raise ConfigError(f"Unleash URL {endpoint.url!r} is not usable: {error}") from None
        state = client.is_enabled(name, fallback_function=lambda _name, _context: default)
        return bool(state), cache.fetched
    finally:
        client.destroy()


def quiet_unleash_logs() -> None:
    """UnleashClient logs fetch failures with tracebacks; the gate says it in one line instead."""
    logging.getLogger("UnleashClient").setLevel(logging.CRITICAL)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


async def feature_toggle_state(name: str, config: ClientConfig, default: bool = True) -> bool:
    """Whether toggle `name` is on, as qontract-reconcile's `get_feature_toggle_state` answers.

    A static flag (config `flags:` or QONTRACT_RECONCILE_API_FLAGS) wins. Otherwise, without an
    Unleash URL and token the toggle is on (whatever `default` says, as in qontract-reconcile);
    with them, UnleashClient decides with the `enableCluster` and `disableCluster` strategies,
    and a toggle Unleash does not have, or an Unleash it cannot read, gives `default`.
    """
    static = config.flags.get(name)
    if static is not None:
        return static
    endpoint = config.unleash
    if endpoint is None:
        return True
    token = endpoint.bearer_token()
    if not token:
        logger.warning("Unleash at %s has no client access token; toggles are on", endpoint.url)
        return True
    quiet_unleash_logs()
    state, fetched = await asyncio.to_thread(_read_toggle, endpoint, token, name, default)
    if not fetched:
        logger.warning(
            "Unleash at %s could not be read; toggle %s is %s by default",
            endpoint.url,
            name,
            "on" if state else "off",
        )
    return state
