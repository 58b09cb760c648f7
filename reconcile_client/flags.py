"""The feature-flag gate: a toggle named after the integration decides whether it runs."""

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import httpx

from reconcile_client.config import ClientConfig, Endpoint
from reconcile_client.errors import AuthRefused, GatewayQueryError, ServiceUnreachable

logger = logging.getLogger(__name__)

APP_NAME = "qontract-reconcile-api"


class FlagProvider(Protocol):
    """Answers whether a toggle is on; None when it does not know the toggle."""

    async def is_enabled(self, name: str) -> bool | None:
        """The toggle's state, or None when this provider has no such toggle."""


class StaticFlagProvider:
    """Toggles from the config file's `flags:` table or QONTRACT_RECONCILE_API_FLAGS (JSON)."""

    def __init__(self, flags: Mapping[str, bool]) -> None:
        self._flags = dict(flags)

    async def is_enabled(self, name: str) -> bool | None:
        """The configured state, or None when the toggle is not listed."""
        return self._flags.get(name)


def _strategy_is_on(strategy: Mapping[str, Any]) -> bool:
    if strategy.get("constraints"):
        return False
    name = strategy.get("name")
    if name == "default":
        return True
    if name == "flexibleRollout":
        return str((strategy.get("parameters") or {}).get("rollout")) == "100"
    return False


def toggle_is_on(feature: Mapping[str, Any]) -> bool:
    """Unleash semantics without a context: enabled, and no strategies or one that always holds."""
    if not feature.get("enabled"):
        return False
    strategies: Sequence[Mapping[str, Any]] = feature.get("strategies") or []
    return not strategies or any(_strategy_is_on(strategy) for strategy in strategies)


class UnleashFlagProvider:
    """Reads toggles from Unleash's client API (`GET <url>/client/features`) with httpx."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint

    async def is_enabled(self, name: str) -> bool | None:
        """The toggle's state in Unleash, or None when Unleash has no toggle of that name."""
        features = await self._features(name)
        for feature in features:
            if feature.get("name") == name:
                state = toggle_is_on(feature)
                if feature.get("enabled") and not state:
                    logger.info("toggle %s: no strategy applies without a context", name)
                return state
        return None

    async def _features(self, name: str) -> list[Mapping[str, Any]]:
        url = f"{self._endpoint.url.rstrip('/')}/client/features"
        headers = {"UNLEASH-APPNAME": APP_NAME}
        token = self._endpoint.bearer_token()
        if token:
            headers["Authorization"] = token
        try:
            async with httpx.AsyncClient(timeout=self._endpoint.timeout) as client:
                response = await client.get(url, headers=headers, params={"namePrefix": name})
        except httpx.TransportError as error:
            reason = "connection refused" if "refused" in str(error).lower() else repr(error)
            raise ServiceUnreachable("Unleash", self._endpoint.url, reason) from None
        if response.status_code in (401, 403):
            raise AuthRefused("Unleash", f"HTTP {response.status_code}", "token refused")
        if response.status_code != 200:
            raise ServiceUnreachable("Unleash", self._endpoint.url, f"HTTP {response.status_code}")
        try:
            features = response.json()["features"]
        except (ValueError, KeyError, TypeError):
            raise GatewayQueryError("Unleash", "BAD_RESPONSE", "no features list", []) from None
        return [feature for feature in features if isinstance(feature, Mapping)]


def flag_providers(config: ClientConfig) -> list[FlagProvider]:
    """Static flags first (a local override), then Unleash when configured."""
    providers: list[FlagProvider] = []
    if config.flags:
        providers.append(StaticFlagProvider(config.flags))
    if config.unleash is not None:
        providers.append(UnleashFlagProvider(config.unleash))
    return providers


async def integration_enabled(name: str, providers: Sequence[FlagProvider]) -> bool:
    """The first provider that knows toggle `name` decides; with none, the integration runs."""
    for provider in providers:
        state = await provider.is_enabled(name)
        if state is not None:
            return state
    return True
