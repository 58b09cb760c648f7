"""slack-usergroups-api end to end in both modes: the CLI against the qontract-server stand-in, a
federating gateway, and the PagerDuty, GitHub and Slack emulators, all over loopback HTTP."""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.client.conftest import run_cli
from tests.client.test_cli import COMMAND
from tests.emulators.github import GitHubEmulator
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.qontract_bundle import BUNDLE_PATH, load_bundle_dict, with_datafiles
from tests.emulators.qontract_server_standin import QontractServerStandin, RecordedRequest
from tests.emulators.slack import SlackEmulator
from tests.support.server_thread import ServerThread
from tests.support.wait import wait_until
from tests.test_slack_reconcile import GENEROUS, writes

SLACK_TOKEN = "xoxb-federated-e2e-0123"
INTEGRATION_PATH = "/integrations/slack-usergroups-api.yml"
WORKSPACES = ("coreos", "redhat-internal")


def bundle_with_integration() -> dict[str, Any]:
    """The recorded bundle plus `slack-usergroups-api` (with slack-usergroups' schemas)."""
    bundle = load_bundle_dict(BUNDLE_PATH)
    schemas = bundle["data"]["/integrations/slack-usergroups.yml"]["schemas"]
    integration = {
        "$schema": "/app-sre/integration-1.yml",
        "name": "slack-usergroups-api",
        "description": "slack-usergroups through the qontract-gateway",
        "labels": {},
        "schemas": schemas,
    }
    result: dict[str, Any] = with_datafiles(bundle, {INTEGRATION_PATH: integration})
    return result


@pytest.fixture
def app_interface() -> Iterator[QontractServerStandin]:
    """The stand-in serving the recorded bundle with the integration defined."""
    with QontractServerStandin(bundle_with_integration()) as server:
        yield server


@pytest.fixture
def slack() -> Iterator[tuple[SlackEmulator, ServerThread]]:
    """Every app-interface user in Slack; one usergroup, `app-sre-team`, exists and drifted."""
    emulator = SlackEmulator()
    state = emulator.state
    state.token = SLACK_TOKEN
    bundle = load_bundle_dict(BUNDLE_PATH)
    names = sorted(
        datafile["org_username"]
        for datafile in bundle["data"].values()
        if datafile.get("$schema") == "/access/user-1.yml"
    )
    for n, name in enumerate(names):
        state.add_user(f"U{n:04d}", name, f"{name}@example.com")
    state.add_channel("C1", "sd-app-sre")
    state.add_usergroup("app-sre-team", users=["U0000"], channels=["C1"], description="old")
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def gateway(
    app_interface: QontractServerStandin,
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
    github: tuple[GitHubEmulator, ServerThread],
    slack: tuple[SlackEmulator, ServerThread],
    federated_factory: Callable[..., ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    """A gateway federating the stand-in, with PagerDuty, GitHub and both Slack workspaces."""
    monkeypatch.setenv("QGW_TEST_SLACK_TOKEN", SLACK_TOKEN)
    workspaces = [
        {
            "name": name,
            "api_url": f"{slack[1].url}/api",
            "token": {"env": "QGW_TEST_SLACK_TOKEN"},
            "rate_limit": GENEROUS,
        }
        for name in WORKSPACES
    ]
    return federated_factory(
        app_interface.url,
        {"app-sre": pagerduty[1].url},
        {"app-sre": github[1].url},
        upstreams_extra={"slack": workspaces},
    )


def answered(standin: QontractServerStandin) -> list[RecordedRequest]:
    """The GraphQL requests the stand-in received, but the gateway's schema polls."""
    return [r for r in standin.graphql_requests() if b"__schema" not in r.body]


def dry_run_lines(stdout: str) -> list[str]:
    """The `[dry-run]` action lines, sorted."""
    return sorted(line for line in stdout.splitlines() if line.startswith("[dry-run] "))


def test_federated_dry_run_equals_the_two_round_trip_run_in_one_pinned_request(
    gateway: ServerThread,
    app_interface: QontractServerStandin,
    github: tuple[GitHubEmulator, ServerThread],
    slack: tuple[SlackEmulator, ServerThread],
) -> None:
    """Without `qontract_server` configured the client asks the gateway once (desired state,
    integration schemas and live data) on the sha the gateway's /sha256 names."""
    owners = "approvers: [erin-gh]\nreviewers: [Dave-GH]\n"  # reviewers count too
    github[0].state.files[("app-sre/qontract-reconcile", "master")] = {"OWNERS": owners}
    federated = {"QONTRACT_RECONCILE_API_GATEWAY__URL": f"{gateway.url}/graphql"}
    two_trips = {
        **federated,
        "QONTRACT_RECONCILE_API_QONTRACT_SERVER__URL": f"{app_interface.url}/graphql",
    }
    sha = app_interface.latest_sha
    app_interface.reset()
    joined = run_cli(COMMAND, env=federated)
    assert joined.returncode == 0, joined.stderr
    forwarded = answered(app_interface)
    assert [r.path for r in forwarded] == [f"/graphqlsha/{sha}"], "1 qontract-server request"
    assert "SlackUsergroupsJoined" in forwarded[0].json()["query"]
    assert "oncall_users" not in forwarded[0].json()["query"], "live fields stay at the gateway"

    app_interface.reset()
    separate = run_cli(COMMAND, env=two_trips)
    assert separate.returncode == 0, separate.stderr
    assert len(answered(app_interface)) == 2, "integrations, then the desired state"

    actions = dry_run_lines(joined.stdout)
    assert actions == dry_run_lines(separate.stdout)
    assert "[dry-run] update_users coreos/app-sre-team: +bob +carol +dave +erin" in actions
    on_call = "[dry-run] create coreos/app-sre-ic: +alice +bob +carol +frank description="
    assert any(line.startswith(on_call) for line in actions), "PagerDuty and the schedule"
    assert writes(slack[0]) == 0


def test_federated_answer_outside_the_integrations_schemas_is_a_config_error(
    gateway: ServerThread, app_interface: QontractServerStandin
) -> None:
    """The joined answer's `extensions.schemas` is checked against the integration's list."""
    bundle = bundle_with_integration()
    bundle["data"][INTEGRATION_PATH]["schemas"] = ["/access/permission-1.yml"]
    sha = app_interface.load(bundle)
    wait_until(
        lambda: httpx.get(f"{gateway.url}/sha256", timeout=10).text.strip() == sha,
        what="the gateway names the new bundle",
    )
    federated = {"QONTRACT_RECONCILE_API_GATEWAY__URL": f"{gateway.url}/graphql"}
    result = run_cli(COMMAND, env=federated)
    assert result.returncode == 2, result.stderr
    assert "SlackUsergroupsJoined reads schemas outside the `schemas`" in result.stderr
    assert "/access/user-1.yml" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_gateway_without_federation_is_a_config_error_naming_the_setting(
    gateway_factory: Callable[..., ServerThread],
) -> None:
    """No `qontract_server` configured and a gateway that federates none: exit 2, and how."""
    plain = gateway_factory()
    result = run_cli(COMMAND, env={"QONTRACT_RECONCILE_API_GATEWAY__URL": f"{plain.url}/graphql"})
    assert result.returncode == 2, result.stderr
    assert "does not serve app-interface" in result.stderr
    assert "QONTRACT_RECONCILE_API_QONTRACT_SERVER__URL" in result.stderr
    assert "Traceback" not in result.stderr
