"""slack-usergroups-api: desired state from qontract-server, all lookups in one gateway request."""

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from reconcile_client.config import ClientConfig
from reconcile_client.errors import AuthRefused, ConfigError, GatewayQueryError
from reconcile_client.gql.inputs import DesiredWorkspace, Notifications
from reconcile_client.integrations.slack_usergroups_api import (
    SlackUsergroupsIntegration,
    SlackUsergroupsIntegrationParams,
)
from reconcile_client.integrations.slack_usergroups_state import INTEGRATION
from tests.client.conftest import ONCALL_WELCOME, app_interface_bundle
from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.qontract_server import INTEGRATION_SCHEMAS, QontractServerEmulator, integration
from tests.support.server_thread import ServerThread


def client_for(
    gateway: ServerThread,
    qontract_server: ServerThread,
    server_settings: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
) -> SlackUsergroupsIntegration:
    """The integration against this gateway and qontract-server, with extra settings/params."""
    config = ClientConfig(
        gateway={"url": f"{gateway.url}/graphql"},
        qontract_server={"url": f"{qontract_server.url}/graphql", **(server_settings or {})},
    )
    return SlackUsergroupsIntegration(SlackUsergroupsIntegrationParams(**(params or {})), config)


async def desired_state_of(client: SlackUsergroupsIntegration) -> list[DesiredWorkspace]:
    """The client's desired state; its clients closed afterwards."""
    try:
        return await client.desired_state()
    finally:
        await client.aclose()


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
    client = client_for(pd_gateway, qontract_server[1])
    try:
        workspaces = await client.desired_state()
    finally:
        await client.aclose()
    assert [w.name for w in workspaces] == ["coreos"]
    coreos = workspaces[0]
    assert coreos.managed_usergroups == ["oncall", "prod-cluster", "rotation", "skipped"]
    groups = {g.handle: g.config for g in coreos.usergroups}
    assert list(groups) == ["oncall", "rotation", "prod-cluster"], (
        "skipped and other workspaces' groups left out, cluster usergroups last"
    )
    assert groups["oncall"].users == ["alice", "dave", "robert"]
    assert groups["oncall"].channels == ["#alerts", "sre"]
    assert groups["oncall"].description == "oncall team"
    assert groups["oncall"].notifications == Notifications(add_user=ONCALL_WELCOME)
    assert groups["rotation"].users == ["erin"], "only the slot that is active now"
    assert groups["prod-cluster"].users == ["dave"]
    assert groups["prod-cluster"].channels == ["reconcile"], "the workspace's default channel"


async def test_all_pagerduty_lookups_of_a_run_are_one_gateway_request(
    pd_gateway: ServerThread,
    qontract_server: tuple[QontractServerEmulator, ServerThread],
    pagerduty: tuple[PagerDutyEmulator, ServerThread],
) -> None:
    before = graphql_posts(pd_gateway)
    client = client_for(pd_gateway, qontract_server[1])
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
    client = client_for(pd_gateway, qontract_server[1], params={"usergroup_name": "rotation"})
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
        ({"usergroup_name": "nope"}, "(known: ignored, oncall, prod-cluster, rotation)"),
    ],
)
async def test_unknown_workspace_or_usergroup_is_a_config_error_naming_the_known_ones(
    pd_gateway: ServerThread,
    qontract_server: tuple[QontractServerEmulator, ServerThread],
    params: dict[str, str],
    message: str,
) -> None:
    client = client_for(pd_gateway, qontract_server[1], params=params)
    try:
        with pytest.raises(ConfigError, match=re.escape(message)):
            await client.desired_state()
    finally:
        await client.aclose()


BASIC = "Basic YXBwLWludGVyZmFjZTpzZWNyZXQ="


@pytest.fixture
def guarded_server() -> Iterator[tuple[QontractServerEmulator, ServerThread]]:
    """qontract-server behind a basic-auth proxy: it wants the `Authorization` header BASIC."""
    emulator = QontractServerEmulator(app_interface_bundle(), token=BASIC)
    with ServerThread(emulator.app) as server:
        yield emulator, server


async def test_qontract_server_token_is_sent_verbatim_as_qontract_reconcile_does(
    pd_gateway: ServerThread, guarded_server: tuple[QontractServerEmulator, ServerThread]
) -> None:
    emulator, server = guarded_server
    workspaces = await desired_state_of(client_for(pd_gateway, server, {"token": BASIC}))
    assert [w.name for w in workspaces] == ["coreos"]
    assert emulator.requests == {"/sha256": 1, f"/graphqlsha/{emulator.sha}": 2}


async def test_a_refused_qontract_server_token_is_auth_refused_without_the_token(
    pd_gateway: ServerThread, guarded_server: tuple[QontractServerEmulator, ServerThread]
) -> None:
    client = client_for(pd_gateway, guarded_server[1], {"token": "Basic d3Jvbmc="})
    with pytest.raises(AuthRefused, match="qontract-server refused the token") as refused:
        await desired_state_of(client)
    assert "d3Jvbmc" not in str(refused.value)


async def test_without_pinning_every_query_goes_to_the_latest_bundle(
    pd_gateway: ServerThread, qontract_server: tuple[QontractServerEmulator, ServerThread]
) -> None:
    emulator, server = qontract_server
    await desired_state_of(client_for(pd_gateway, server, {"pin_sha": False}))
    assert emulator.requests == {"/graphql": 2}


async def test_a_bundle_reloaded_after_the_sha_was_read_is_not_mixed_in(
    pd_gateway: ServerThread, qontract_server: tuple[QontractServerEmulator, ServerThread]
) -> None:
    """The sha is read once; a reload before the query makes the pinned query a 404, not news."""
    emulator, server = qontract_server
    emulator.reload_after_sha_read = True
    with pytest.raises(GatewayQueryError, match="qontract-server answered HTTP_404"):
        await desired_state_of(client_for(pd_gateway, server))
    assert emulator.requests["/sha256"] == 1


def bundle_with_integration(schemas: list[str] | None) -> dict[str, Any]:
    """The test bundle with slack-usergroups-api allowed `schemas` (None: not defined)."""
    bundle = app_interface_bundle()
    bundle["integrations_v1"] = [] if schemas is None else [integration(INTEGRATION, schemas)]
    return bundle


@pytest.mark.parametrize(
    ("schemas", "message"),
    [
        (None, "integration 'slack-usergroups-api' is not defined in app-interface"),
        ([], "integration 'slack-usergroups-api' is not defined in app-interface or lists no"),
        (
            [s for s in INTEGRATION_SCHEMAS if s != "/openshift/cluster-1.yml"],
            "reads schemas outside the `schemas` of integration 'slack-usergroups-api' in "
            "app-interface: /openshift/cluster-1.yml",
        ),
    ],
)
async def test_answers_touching_schemas_outside_the_integrations_list_are_refused(
    pd_gateway: ServerThread, schemas: list[str] | None, message: str
) -> None:
    emulator = QontractServerEmulator(bundle_with_integration(schemas))
    with ServerThread(emulator.app) as server:
        with pytest.raises(ConfigError, match=re.escape(message)):
            await desired_state_of(client_for(pd_gateway, server))
        relaxed = client_for(pd_gateway, server, {"validate_schemas": False})
        assert [w.name for w in await desired_state_of(relaxed)] == ["coreos"]
