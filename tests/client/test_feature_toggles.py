"""Feature toggles decide run or skip exactly as qontract-reconcile decides them.

The rows mirror `reconcile.utils.unleash.client.get_feature_toggle_state` of
app-sre/qontract-reconcile (commit f8dc7d4): the official UnleashClient with the custom strategies
`enableCluster` and `disableCluster`, a fallback of `default` for a toggle the client does not
know (also every toggle when Unleash cannot be read), and "on" when Unleash is not configured.
`reconcile.cli.run_class_integration` calls it with the integration's name and no context.
Unleash is the emulator over HTTP on 127.0.0.1; nothing is mocked.
"""

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from reconcile_client.config import ClientConfig, Endpoint
from reconcile_client.errors import ConfigError
from reconcile_client.flags import (
    DisableClusterStrategy,
    EnableClusterStrategy,
    feature_toggle_state,
)
from tests.emulators.unleash import UnleashEmulator
from tests.support.ports import free_port
from tests.support.server_thread import ServerThread

TOKEN = "unleash-client-token"
NAME = "slack-usergroups-api"


@pytest.fixture(scope="module")
def unleash() -> Iterator[tuple[UnleashEmulator, ServerThread]]:
    emulator = UnleashEmulator(TOKEN)
    with ServerThread(emulator.app) as server:
        yield emulator, server


def strategy(
    name: str, constraints: list[dict[str, Any]] | None = None, **parameters: str
) -> dict[str, Any]:
    """One strategy of a toggle as Unleash's client API lists it."""
    return {"name": name, "parameters": parameters, "constraints": constraints or []}


@dataclass(frozen=True)
class Row:
    """A toggle as Unleash holds it, and whether qontract-reconcile runs the integration."""

    case: str
    enabled: bool
    strategies: list[dict[str, Any]]
    runs: bool


ROWS = [
    # UnleashClient's built-in `default` strategy is on; a disabled toggle is off whatever it has.
    Row("default strategy", True, [strategy("default")], runs=True),
    Row("disabled toggle", False, [strategy("default")], runs=False),
    Row("no strategy at all", True, [], runs=True),
    # DisableClusterStrategy.apply: no `cluster_name` in the context -> True.
    Row("disableCluster, no context", True, [strategy("disableCluster", cluster_name="a,b")], True),
    Row(
        "disableCluster, toggle disabled",
        False,
        [strategy("disableCluster", cluster_name="a")],
        False,
    ),
    # EnableClusterStrategy.apply: no `cluster_name` in the context -> False.
    Row("enableCluster, no context", True, [strategy("enableCluster", cluster_name="a")], False),
    Row(
        "enableCluster or disableCluster",
        True,
        [strategy("enableCluster", cluster_name="a"), strategy("disableCluster", cluster_name="b")],
        runs=True,
    ),
    # A strategy neither built in nor registered is off in UnleashClient (yggdrasil engine).
    Row("strategy nobody implements", True, [strategy("someoneElsesStrategy")], runs=False),
    Row(
        "flexibleRollout 100%",
        True,
        [strategy("flexibleRollout", rollout="100", stickiness="random", groupId=NAME)],
        True,
    ),
    Row(
        "flexibleRollout 0%",
        True,
        [strategy("flexibleRollout", rollout="0", stickiness="random", groupId=NAME)],
        False,
    ),
    # The client puts appName `qontract-reconcile` into every context, as qontract-reconcile does.
    Row(
        "constraint on appName qontract-reconcile",
        True,
        [
            strategy(
                "default",
                [{"contextName": "appName", "operator": "IN", "values": ["qontract-reconcile"]}],
            )
        ],
        runs=True,
    ),
    Row(
        "constraint on another appName",
        True,
        [
            strategy(
                "default", [{"contextName": "appName", "operator": "IN", "values": ["other-app"]}]
            )
        ],
        runs=False,
    ),
]


def unleash_config(url: str, token: str | None = TOKEN) -> ClientConfig:
    return ClientConfig(unleash=Endpoint(url=url, token=token, timeout=5))


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.case)
@pytest.mark.parametrize("default", [True, False], ids=["default=True", "default=False"])
def test_a_toggle_unleash_has_decides_alone(
    unleash: tuple[UnleashEmulator, ServerThread], row: Row, default: bool
) -> None:
    """`get_feature_toggle_state(name)`: a toggle Unleash lists is evaluated; no default."""
    emulator, server = unleash
    emulator.set_feature(NAME, row.enabled, row.strategies)
    config = unleash_config(f"{server.url}/api")
    assert asyncio.run(feature_toggle_state(NAME, config, default=default)) is row.runs


@pytest.mark.parametrize("default", [True, False])
def test_a_toggle_unleash_does_not_have_gives_the_default(
    unleash: tuple[UnleashEmulator, ServerThread], default: bool
) -> None:
    """`get_feature_toggle_state(name, default=...)`: UnleashClient's fallback_function answers."""
    emulator, server = unleash
    emulator.set_feature("slack-usergroups", False, [strategy("default")])
    config = unleash_config(f"{server.url}/api")
    assert asyncio.run(feature_toggle_state("never-defined", config, default=default)) is default


@pytest.mark.parametrize("default", [True, False])
def test_unleash_down_gives_the_default_and_says_so(
    default: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """UnleashClient logs a failed fetch and knows no toggle, so the fallback answers."""
    url = f"http://127.0.0.1:{free_port()}/api"
    assert asyncio.run(feature_toggle_state(NAME, unleash_config(url), default=default)) is default
    expected = f"Unleash at {url} could not be read; toggle {NAME} is {'on' if default else 'off'}"
    assert expected in caplog.text
    assert "Traceback" not in caplog.text


def test_a_refused_token_is_unleash_down(
    unleash: tuple[UnleashEmulator, ServerThread], caplog: pytest.LogCaptureFixture
) -> None:
    """A 401 on the feature list is a failed fetch for UnleashClient: the fallback answers."""
    emulator, server = unleash
    emulator.set_feature(NAME, False, [strategy("default")])
    config = unleash_config(f"{server.url}/api", token="wrong-token")
    assert asyncio.run(feature_toggle_state(NAME, config, default=True)) is True
    assert "could not be read" in caplog.text
    assert "wrong-token" not in caplog.text


def test_an_unusable_unleash_url_is_a_config_error() -> None:
    """qontract-reconcile lets UnleashClient's registration error escape; here it is exit 2."""
    with pytest.raises(ConfigError, match=r"Unleash URL 'ftp://127\.0\.0\.1:1/api' is not usable"):
        asyncio.run(feature_toggle_state(NAME, unleash_config("ftp://127.0.0.1:1/api")))


@pytest.mark.parametrize("token", [None, ""])
def test_unleash_without_a_token_is_not_asked_and_the_toggle_is_on(
    unleash: tuple[UnleashEmulator, ServerThread], token: str | None
) -> None:
    """`get_feature_toggle_state`: without URL and token it returns True, even for default=False."""
    emulator, server = unleash
    emulator.set_feature(NAME, False, [strategy("default")])
    asked = emulator.feature_requests
    config = unleash_config(f"{server.url}/api", token=token)
    assert asyncio.run(feature_toggle_state(NAME, config, default=False)) is True
    assert emulator.feature_requests == asked


def test_without_unleash_every_toggle_is_on() -> None:
    """`get_feature_toggle_state` with UNLEASH_API_URL unset: True whatever `default` is."""
    assert asyncio.run(feature_toggle_state(NAME, ClientConfig(), default=False)) is True


def test_a_static_flag_wins_over_unleash(unleash: tuple[UnleashEmulator, ServerThread]) -> None:
    """The config's `flags:`, a local override qontract-reconcile lacks, is asked first."""
    emulator, server = unleash
    emulator.set_feature(NAME, True, [strategy("default")])
    config = ClientConfig(
        unleash=Endpoint(url=f"{server.url}/api", token=TOKEN), flags={NAME: False}
    )
    assert asyncio.run(feature_toggle_state(NAME, config)) is False


def test_the_client_registers_as_qontract_reconcile_with_both_cluster_strategies(
    unleash: tuple[UnleashEmulator, ServerThread],
) -> None:
    """`_get_unleash_api_client`: app_name `qontract-reconcile`, token as Authorization."""
    emulator, server = unleash
    emulator.set_feature(NAME, True, [strategy("default")])
    before = len(emulator.registrations)
    asyncio.run(feature_toggle_state(NAME, unleash_config(f"{server.url}/api")))
    registration = emulator.registrations[before]
    assert registration["appName"] == "qontract-reconcile"
    assert {"enableCluster", "disableCluster"} <= set(registration["strategies"])


@pytest.mark.parametrize(
    ("cluster", "enable", "disable"),
    [("foo", True, False), ("bar", False, True), (None, False, True)],
)
def test_cluster_strategies_with_a_context(
    cluster: str | None, enable: bool, disable: bool
) -> None:
    """EnableClusterStrategy / DisableClusterStrategy.apply on `cluster_name: "foo, baz"`."""
    parameters = {"cluster_name": "foo, baz"}
    context = {"cluster_name": cluster} if cluster else {}
    assert EnableClusterStrategy().apply(parameters, context) is enable
    assert DisableClusterStrategy().apply(parameters, context) is disable
