"""Real parts for federation tests: the qontract-server stand-in, PagerDuty, and gateways."""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.emulators.github import GitHubEmulator
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.qontract_bundle import BUNDLE_PATH
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.support.server_thread import ServerThread

PD_TOKEN = "pd-federation-token-123"
GH_TOKEN = "ghp-federation-token-456"
ROOT_OWNERS = "approvers: [alice, carol]\nreviewers: [dave]\n"


@pytest.fixture
def standin() -> Iterator[QontractServerStandin]:
    """The stand-in serving the recorded bundle.json."""
    with QontractServerStandin(BUNDLE_PATH) as server:
        yield server


def pagerduty_state(emulator: PagerDutyEmulator, prefix: str = "") -> None:
    """On-call users for the recorded bundle's schedules and policies (and the scaled ones)."""
    state = emulator.state
    state.token = PD_TOKEN
    for name in ("alice", "bob", "carol", "gen.user5"):
        state.add_user(f"{prefix}U-{name}", f"{name}@example.com")
    state.oncall = {"PSCHED1": [f"{prefix}U-alice", f"{prefix}U-bob"]}
    state.policies = {"PESCAL1": [(0, [("user", f"{prefix}U-carol")])]}
    for i in range(200):
        state.oncall[f"PGS{i:03d}"] = [f"{prefix}U-gen.user5"]
        state.oncall[f"PSS{i:04d}"] = [f"{prefix}U-alice"]
        state.policies[f"PGE{i:03d}"] = [(0, [("user", f"{prefix}U-bob")])]
        state.policies[f"PSE{i:04d}"] = [(0, [("user", f"{prefix}U-carol")])]


@pytest.fixture
def pagerduty() -> Iterator[tuple[PagerDutyEmulator, ServerThread]]:
    """A PagerDuty emulator for instance `app-sre`."""
    emulator = PagerDutyEmulator()
    pagerduty_state(emulator)
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def github() -> Iterator[tuple[GitHubEmulator, ServerThread]]:
    """A GitHub emulator with the OWNERS of app-sre/qontract-reconcile (the bundle's entry)."""
    emulator = GitHubEmulator()
    emulator.state.token = GH_TOKEN
    emulator.state.files[("app-sre/qontract-reconcile", "master")] = {"OWNERS": ROOT_OWNERS}
    for n in (5, 9, 16):
        emulator.state.files[(f"app-sre/gen-repo-{n}", "master")] = {"OWNERS": f"approvers: [g{n}]"}
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def federated_factory(
    gateway_factory: Callable[..., ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., ServerThread]:
    """Gateways federating `standin_url` with PagerDuty accounts `{name: url}`."""
    monkeypatch.setenv("QGW_TEST_PD_TOKEN", PD_TOKEN)
    monkeypatch.setenv("QGW_TEST_GH_TOKEN", GH_TOKEN)

    def factory(
        standin_url: str,
        pagerduty: dict[str, str] | None = None,
        github: dict[str, str] | None = None,
        **overrides: Any,
    ) -> ServerThread:
        qontract_server = {
            "url": standin_url,
            "poll_interval": 0.3,
            "unknown_sha_wait": 0.3,
            **overrides.pop("qontract_server", {}),
        }
        accounts = [
            {"name": name, "api_url": url, "token": {"env": "QGW_TEST_PD_TOKEN"}}
            for name, url in (pagerduty or {}).items()
        ]
        github_accounts = [
            {"name": name, "api_url": url, "token": {"env": "QGW_TEST_GH_TOKEN"}}
            for name, url in (github or {}).items()
        ]
        upstreams = {
            "qontract_server": qontract_server,
            "pagerduty": accounts,
            "github": github_accounts,
            **overrides.pop("upstreams_extra", {}),
        }
        return gateway_factory(upstreams=upstreams, **overrides)

    return factory


Servers = tuple[ServerThread, QontractServerStandin, PagerDutyEmulator, GitHubEmulator]


@pytest.fixture
def joined(
    standin: QontractServerStandin,
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
    github: tuple[GitHubEmulator, ServerThread],
    federated_factory: Callable[..., ServerThread],
) -> Servers:
    """A gateway federating the stand-in, with PagerDuty `app-sre` and GitHub `app-sre`."""
    gateway = federated_factory(
        standin.url, {"app-sre": pagerduty[1].url}, {"app-sre": github[1].url}
    )
    return gateway, standin, pagerduty[0], github[0]


def post(url: str, query: str, path: str = "/graphql", **variables: Any) -> dict[str, Any]:
    """POST a query; the JSON body of a 200 answer."""
    payload: dict[str, Any] = {"query": query}
    if variables:
        payload["variables"] = variables
    response = httpx.post(url + path, json=payload, timeout=60)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
