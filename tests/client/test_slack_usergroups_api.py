"""slack-usergroups-api: desired state from qontract-server, all lookups in one gateway request."""

import re

import httpx
import pytest

from reconcile_client.config import ClientConfig
from reconcile_client.errors import ConfigError
from reconcile_client.integrations.slack_usergroups_api import (
    SlackUsergroupsIntegration,
    SlackUsergroupsIntegrationParams,
)
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.qontract_server import QontractServerEmulator
from tests.support.server_thread import ServerThread


def integration(
    gateway: ServerThread, qontract_server: ServerThread, **params: str
) -> SlackUsergroupsIntegration:
    config = ClientConfig(
        gateway={"url": f"{gateway.url}/graphql"},
        qontract_server={"url": f"{qontract_server.url}/graphql"},
    )
    return SlackUsergroupsIntegration(SlackUsergroupsIntegrationParams(**params), config)


def graphql_posts(gateway: ServerThread) -> float:
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    pattern = (
        r"qontract_gateway_http_requests_total"
        r'\{(?=[^}]*route="/graphql")(?=[^}]*method="POST")[^}]*\} (\S+)'
    )
    return sum(float(value) for value in re.findall(pattern, metrics))


async def test_usergroup_users_are_role_active_slot_on_call_users_mapped_by_pagerduty_name(
    pd_gateway: ServerThread, qontract_server: tuple[QontractServerEmulator, ServerThread]
) -> None:
    client = integration(pd_gateway, qontract_server[1])
    try:
        workspaces = await client.desired_state()
    finally:
        await client.aclose()
    assert [w.name for w in workspaces] == ["coreos"]
    coreos = workspaces[0]
    assert coreos.managed_usergroups == ["oncall", "rotation", "skipped"]
    groups = {g.handle: g.config for g in coreos.usergroups}
    assert set(groups) == {"oncall", "rotation"}, "skipped and other workspaces' groups left out"
    assert groups["oncall"].users == ["alice", "dave", "robert"]
    assert groups["oncall"].channels == ["#alerts", "sre"]
    assert groups["oncall"].description == "oncall team"
    assert groups["rotation"].users == ["erin"], "only the slot that is active now"


async def test_all_pagerduty_lookups_of_a_run_are_one_gateway_request(
    pd_gateway: ServerThread,
    qontract_server: tuple[QontractServerEmulator, ServerThread],
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
) -> None:
    before = graphql_posts(pd_gateway)
    client = integration(pd_gateway, qontract_server[1])
    try:
        await client.desired_state()
    finally:
        await client.aclose()
    assert graphql_posts(pd_gateway) - before == 1
    emulator = qontract_server[0]
    assert emulator.requests == {"/sha256": 1, f"/graphqlsha/{emulator.sha}": 2}, (
        "the sha once, then the integration's schemas and the desired state, both pinned"
    )
    assert pagerduty[0].total_calls("GET /schedules/") == 2
    assert pagerduty[0].total_calls("GET /escalation_policies/EP1") == 1


async def test_narrowing_to_one_usergroup_looks_up_only_its_targets(
    pd_gateway: ServerThread,
    qontract_server: tuple[QontractServerEmulator, ServerThread],
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
) -> None:
    client = integration(pd_gateway, qontract_server[1], usergroup_name="rotation")
    try:
        workspaces = await client.desired_state()
    finally:
        await client.aclose()
    assert [g.handle for g in workspaces[0].usergroups] == ["rotation"]
    assert pagerduty[0].total_calls() == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"workspace_name": "nope"}, "workspace 'nope' has no usergroups in app-interface"),
        ({"workspace_name": "nope"}, "(known: coreos, elsewhere)"),
        ({"usergroup_name": "nope"}, "usergroup 'nope' is not a usergroup in app-interface"),
        ({"usergroup_name": "nope"}, "(known: ignored, oncall, rotation)"),
    ],
)
async def test_unknown_workspace_or_usergroup_is_a_config_error_naming_the_known_ones(
    pd_gateway: ServerThread,
    qontract_server: tuple[QontractServerEmulator, ServerThread],
    params: dict[str, str],
    message: str,
) -> None:
    client = integration(pd_gateway, qontract_server[1], **params)
    try:
        with pytest.raises(ConfigError, match=re.escape(message)):
            await client.desired_state()
    finally:
        await client.aclose()
