"""The Slack usergroups reconcile service against stateful Slack emulators, real HTTP and Redis."""

import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gateway.errors import BadUserInput
from gateway.events import EventMetrics, EventPublisher, create_event_publisher
from gateway.events.redis_streams import decode_entry
from gateway.redis import create_redis
from gateway.redis_keys import stream_keys
from gateway.registry import Sources
from gateway.runtime import Runtime
from resolvers.slack.reconcile import SlackUsergroupsReconcile, reconcile
from resolvers.slack.reconcile_models import ReconcileRequest, ReconcileResult
from resolvers.systems import SYSTEMS
from tests.emulators.slack import SlackEmulator, SlackState
from tests.support.gateway import gateway_settings
from tests.support.ports import free_port
from tests.support.server_thread import ServerThread

TOKEN = "xoxb-reconcile-token-321"
GENEROUS: dict[str, float] = {"requests": 6000, "per_seconds": 60, "burst": 100}
TIGHT: dict[str, float] = {"requests": 10, "per_seconds": 1, "burst": 1}
WRITES = (
    "POST /api/usergroups.create",
    "POST /api/usergroups.update",
    "POST /api/usergroups.enable",
)
MANAGED = ["sre-team", "old-team", "new-team", "quiet-team"]


def coreos_state(state: SlackState) -> None:
    """Users (one deleted, one with a Grid id), two channels, managed and unmanaged groups."""
    state.token = TOKEN
    state.add_user("U1", "alice", "alice@example.com")
    state.add_user("U2", "bob", "bob@example.com")
    state.add_user("U3", "gone", "gone@example.com", deleted=True)
    state.add_user("U4", "carol", "carol@example.com", enterprise_id="W4")
    state.add_channel("C1", "sre")
    state.add_channel("C2", "team-x")
    state.add_usergroup("sre-team", users=["U1", "U2", "U3"], channels=["C1"], description="SRE")
    state.add_usergroup("old-team", users=["U2"], description="Old", disabled=True)
    state.add_usergroup("quiet-team", users=["U2"], description="Quiet", disabled=True)
    state.add_usergroup("not-ours", users=["U1"], description="Theirs")


def other_state(state: SlackState) -> None:
    """A second workspace with the same handles but its own users and channels."""
    state.token = TOKEN
    state.add_user("U9", "alice", "alice@example.com")
    state.add_user("U8", "zoe", "zoe@example.com")
    state.add_channel("C9", "sre")
    state.add_usergroup("sre-team", users=["U8"], channels=["C9"], description="Other SRE")


@dataclass
class Gateway:
    """What a test drives: the real sources from settings, the event publisher, the emulators."""

    runtime: Runtime
    sources: Sources
    publisher: EventPublisher
    namespace: str
    coreos: SlackEmulator
    other: SlackEmulator

    async def run(self, dry_run: bool, *workspaces: dict[str, Any]) -> ReconcileResult:
        """Run the service once with `workspaces`."""
        request = ReconcileRequest.model_validate({"dry_run": dry_run, "workspaces": workspaces})
        return await reconcile(request, self.sources, self.publisher)

    async def events(self) -> list[tuple[str, dict[str, Any]]]:
        """Every published event as (type, payload), oldest first."""
        entries: Any = await self.runtime.redis.xrange(stream_keys(self.namespace).stream)
        return [(e.event_type, e.payload) for e in (decode_entry(f) for _, f in entries)]


@pytest.fixture
def emulators() -> Iterator[tuple[ServerThread, ServerThread, SlackEmulator, SlackEmulator]]:
    coreos, other = SlackEmulator(), SlackEmulator()
    coreos_state(coreos.state)
    other_state(other.state)
    with ServerThread(coreos.app) as coreos_server, ServerThread(other.app) as other_server:
        yield coreos_server, other_server, coreos, other


@pytest.fixture
def rate_limit() -> dict[str, float]:
    """Each Slack method's limit per workspace (a test parametrizes it to tighten it)."""
    return GENEROUS


@pytest.fixture
async def gateway(
    emulators: tuple[ServerThread, ServerThread, SlackEmulator, SlackEmulator],
    redis_url: str,
    namespace: str,
    rate_limit: dict[str, float],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("QGW_TEST_SLACK_TOKEN", TOKEN)
    coreos_server, other_server, coreos, other = emulators
    workspaces = [
        {
            "name": name,
            "api_url": f"{server.url}/api",
            "token": {"env": "QGW_TEST_SLACK_TOKEN"},
            "rate_limit": rate_limit,
        }
        for name, server in (("coreos", coreos_server), ("other", other_server))
    ]
    runtime = Runtime.create(
        gateway_settings(redis_url, namespace, upstreams={"slack": workspaces})
    )
    sources = Sources.create(runtime, SYSTEMS)
    publisher = create_event_publisher(
        "redis",
        metrics=EventMetrics(CollectorRegistry()),
        redis_client=runtime.redis,
        namespace=namespace,
    )
    yield Gateway(runtime, sources, publisher, namespace, coreos, other)
    await sources.aclose()
    await runtime.aclose()


def usergroup(
    handle: str,
    users: list[str],
    description: str = "",
    channels: list[str] | None = None,
    **notifications: str,
) -> dict[str, Any]:
    """One desired usergroup as the request carries it."""
    config: dict[str, Any] = {"description": description, "users": users}
    config["channels"] = channels or []
    if notifications:
        config["notifications"] = notifications
    return {"handle": handle, "config": config}


def workspace(
    *usergroups: dict[str, Any], name: str = "coreos", managed: list[str] | None = None
) -> dict[str, Any]:
    """One workspace of the request; every test handle but `not-ours` is managed by default."""
    return {
        "name": name,
        "managed_usergroups": MANAGED if managed is None else managed,
        "usergroups": list(usergroups),
    }


def writes(emulator: SlackEmulator) -> int:
    """Write calls the emulator received (members, metadata, creation, enabling)."""
    members = emulator.total_calls("POST /api/usergroups.users.update")
    return members + sum(emulator.total_calls(path) for path in WRITES)


SRE_DESIRED = usergroup(
    "sre-team",
    ["alice", "carol", "ghost", "gone"],
    "SRE on call",
    ["#sre", "team-x", "#nowhere"],
)


async def test_dry_run_drops_unknown_users_and_channels_and_writes_nothing(
    gateway: Gateway,
) -> None:
    result = await gateway.run(True, workspace(SRE_DESIRED))

    assert result.model_dump(mode="json") == {
        "status": "success",
        "applied_count": 0,
        "errors": [],
        "actions": [
            {
                "kind": "update_users",
                "workspace": "coreos",
                "usergroup": "sre-team",
                "users": ["alice", "carol"],
                "users_to_add": ["carol"],
                "users_to_remove": ["bob"],
                "enable": False,
            },
            {
                "kind": "update_metadata",
                "workspace": "coreos",
                "usergroup": "sre-team",
                "description": "SRE on call",
                "channels": ["sre", "team-x"],
                "enable": False,
            },
        ],
    }
    assert writes(gateway.coreos) == 0
    assert await gateway.events() == []


async def test_apply_then_dry_run_again_finds_nothing_to_do_without_refetching(
    gateway: Gateway,
) -> None:
    applied = await gateway.run(False, workspace(SRE_DESIRED))
    again = await gateway.run(True, workspace(SRE_DESIRED))

    assert (applied.status, applied.applied_count, applied.errors) == ("success", 2, [])
    group = gateway.coreos.state.usergroup("sre-team")
    assert (group["users"], group["description"], group["prefs"]["channels"]) == (
        ["U1", "U4"],
        "SRE on call",
        ["C1", "C2"],
    )
    assert (again.status, again.actions, again.errors) == ("success", [], [])
    assert gateway.coreos.total_calls("POST /api/usergroups.list") == 1, "cache was updated"


async def test_created_usergroup_gets_members_description_and_channels_in_the_same_run(
    gateway: Gateway,
) -> None:
    desired = workspace(usergroup("new-team", ["carol", "alice", "ghost"], "New", ["#team-x"]))
    result = await gateway.run(False, desired)
    again = await gateway.run(True, desired)

    assert [action.kind for action in result.actions] == ["create"]
    assert (result.status, result.applied_count) == ("success", 1)
    group = gateway.coreos.state.usergroup("new-team")
    assert (group["users"], group["description"], group["prefs"]["channels"]) == (
        ["U1", "U4"],
        "New",
        ["C2"],
    )
    assert group["date_delete"] == 0
    assert again.actions == []


async def test_unmanaged_handle_is_refused_and_the_rest_proceeds(gateway: Gateway) -> None:
    theirs = usergroup("not-ours", ["bob"], "Mine now")
    result = await gateway.run(False, workspace(theirs, SRE_DESIRED))

    assert result.status == "failed"
    assert result.errors == ["coreos/not-ours: refused: the handle is not in managed_usergroups"]
    assert result.applied_count == 2
    assert gateway.coreos.state.usergroup("not-ours")["users"] == ["U1"]
    assert gateway.coreos.state.usergroup("sre-team")["users"] == ["U1", "U4"]


async def test_disabled_group_that_must_change_is_re_enabled_and_one_that_need_not_stays_off(
    gateway: Gateway,
) -> None:
    desired = workspace(
        usergroup("old-team", ["bob"], "Old, revived"),
        usergroup("quiet-team", ["bob"], "Quiet"),
    )
    result = await gateway.run(False, desired)
    again = await gateway.run(True, desired)

    assert [(a.kind, a.usergroup, getattr(a, "enable", None)) for a in result.actions] == [
        ("update_metadata", "old-team", True)
    ]
    assert gateway.coreos.state.usergroup("old-team")["date_delete"] == 0
    assert gateway.coreos.state.usergroup("old-team")["description"] == "Old, revived"
    assert gateway.coreos.state.usergroup("quiet-team")["date_delete"] != 0
    assert gateway.coreos.total_calls("POST /api/usergroups.enable") == 1
    assert again.actions == []


async def test_usergroups_left_out_of_the_request_are_never_touched(gateway: Gateway) -> None:
    await gateway.run(False, workspace(SRE_DESIRED))

    assert gateway.coreos.state.usergroup("old-team")["users"] == ["U2"]
    assert gateway.coreos.state.usergroup("old-team")["date_delete"] != 0
    assert sorted(g["handle"] for g in gateway.coreos.state.usergroups.values()) == [
        "not-ours",
        "old-team",
        "quiet-team",
        "sre-team",
    ]


async def test_empty_desired_member_list_keeps_the_members_and_reports_why(
    gateway: Gateway,
) -> None:
    result = await gateway.run(False, workspace(usergroup("sre-team", ["ghost"], "Nobody left")))

    assert result.status == "failed"
    assert result.errors == [
        "coreos/sre-team: cannot remove all 2 members: Slack refuses an empty member list "
        "and no desired user is an active Slack user; members kept"
    ]
    assert [action.kind for action in result.actions] == ["update_metadata"]
    group = gateway.coreos.state.usergroup("sre-team")
    assert (group["users"], group["description"]) == (["U1", "U2", "U3"], "Nobody left")
    assert gateway.coreos.total_calls("POST /api/usergroups.users.update") == 0


async def test_two_workspaces_are_each_applied_with_their_own_client_only(
    gateway: Gateway,
) -> None:
    desired_other = usergroup("sre-team", ["alice", "zoe"], "Other SRE", ["sre"])
    result = await gateway.run(
        False,
        workspace(usergroup("sre-team", ["alice"], "SRE", ["sre"])),
        workspace(desired_other, name="other"),
    )

    assert result.status == "success"
    assert [(a.workspace, a.kind) for a in result.actions] == [
        ("coreos", "update_users"),
        ("other", "update_users"),
    ]
    assert gateway.coreos.state.usergroup("sre-team")["users"] == ["U1"]
    assert gateway.other.state.usergroup("sre-team")["users"] == ["U9", "U8"]
    assert writes(gateway.coreos) == 1
    assert writes(gateway.other) == 1


async def test_invalid_users_refreshes_the_stale_users_cache_and_retries_once(
    gateway: Gateway,
) -> None:
    desired = workspace(usergroup("sre-team", ["alice", "carol"], "SRE", ["sre"]))
    await gateway.run(True, desired)
    gateway.coreos.state.users["U4"]["deleted"] = True

    result = await gateway.run(False, desired)

    assert (result.status, result.applied_count) == ("success", 1)
    assert gateway.coreos.state.usergroup("sre-team")["users"] == ["U1"]
    assert gateway.coreos.total_calls("POST /api/usergroups.users.update") == 2
    assert gateway.coreos.total_calls("POST /api/users.list") == 2
    assert (await gateway.run(True, desired)).actions == []


async def test_invalid_users_twice_is_one_error_after_one_retry(gateway: Gateway) -> None:
    invalid = {"ok": False, "error": "invalid_users"}
    gateway.coreos.fail(200, times=2, path_prefix="/api/usergroups.users.update", body=invalid)

    result = await gateway.run(False, workspace(usergroup("sre-team", ["alice"], "SRE", ["sre"])))

    assert result.status == "failed"
    assert result.errors == [
        "coreos/sre-team: update_users failed: Slack workspace 'coreos': "
        "usergroups.users.update failed: invalid_users"
    ]
    assert gateway.coreos.total_calls("POST /api/usergroups.users.update") == 2
    assert gateway.coreos.total_calls("POST /api/users.list") == 2


async def test_a_failing_action_is_collected_while_the_others_apply(gateway: Gateway) -> None:
    refused = {"ok": False, "error": "permission_denied"}
    gateway.coreos.fail(200, times=1, path_prefix="/api/usergroups.update", body=refused)
    desired = workspace(
        usergroup("sre-team", ["alice", "bob"], "Changed", ["sre"]),
        usergroup("old-team", ["bob"], "Revived"),
        usergroup("new-team", ["alice"], "New"),
    )

    result = await gateway.run(False, desired)
    again = await gateway.run(True, desired)

    assert result.status == "failed"
    assert result.errors == [
        "coreos/sre-team: update_metadata failed: Slack workspace 'coreos': "
        "usergroups.update failed: permission_denied"
    ]
    assert (len(result.actions), result.applied_count) == (3, 2)
    assert gateway.coreos.state.usergroup("sre-team")["description"] == "SRE"
    assert gateway.coreos.state.usergroup("old-team")["description"] == "Revived"
    assert gateway.coreos.state.usergroup("new-team")["users"] == ["U1"]
    assert [(a.kind, a.usergroup) for a in again.actions] == [("update_metadata", "sre-team")]


async def test_applied_actions_errors_and_notifications_are_published(gateway: Gateway) -> None:
    notify = {"add_user": "Welcome to SRE", "remove_user": "Bye from SRE"}
    desired = workspace(
        usergroup("not-ours", ["bob"]),
        usergroup("sre-team", ["alice", "carol"], "SRE", ["sre"], **notify),
        usergroup("new-team", ["bob"], "New", add_user="Welcome to new"),
    )

    await gateway.run(False, desired)
    events = await gateway.events()

    assert [event_type for event_type, _ in events] == [
        "slack-usergroups.error",
        "slack-usergroups.update_users",
        "slack-usergroups.notify_add_user",
        "slack-usergroups.notify_remove_user",
        "slack-usergroups.create",
        "slack-usergroups.notify_add_user",
    ]
    assert events[0][1] == {
        "workspace": "coreos",
        "usergroup": "not-ours",
        "error": "coreos/not-ours: refused: the handle is not in managed_usergroups",
    }
    assert events[1][1]["users_to_add"] == ["carol"]
    assert events[2][1] == {
        "workspace": "coreos",
        "usergroup": "sre-team",
        "users": ["carol"],
        "user_ids": ["U4"],
        "message": "Welcome to SRE",
    }
    assert (events[3][1]["users"], events[3][1]["message"]) == (["bob"], "Bye from SRE")
    assert (events[4][1]["usergroup"], events[4][1]["users"]) == ("new-team", ["bob"])
    assert events[5][1]["user_ids"] == ["U2"]


async def test_a_dead_event_backend_never_fails_the_run(gateway: Gateway) -> None:
    dead = create_redis(f"redis://127.0.0.1:{free_port()}/0", connect_timeout=0.5)
    publisher = create_event_publisher(
        "redis", metrics=EventMetrics(CollectorRegistry()), redis_client=dead, namespace="dead"
    )
    request = ReconcileRequest.model_validate(
        {"dry_run": False, "workspaces": [workspace(SRE_DESIRED)]}
    )
    try:
        result = await reconcile(request, gateway.sources, publisher)
    finally:
        await dead.aclose()

    assert (result.status, result.applied_count) == ("success", 2)
    assert gateway.coreos.state.usergroup("sre-team")["users"] == ["U1", "U4"]


async def test_task_payload_defaults_to_a_dry_run_and_answers_json(gateway: Gateway) -> None:
    task = SlackUsergroupsReconcile(gateway.sources, gateway.publisher)

    result = await task({"workspaces": [workspace(SRE_DESIRED)]})

    assert json.loads(json.dumps(result))["status"] == "success"
    assert len(result["actions"]) == 2
    assert writes(gateway.coreos) == 0


async def test_unknown_workspace_or_malformed_payload_is_bad_user_input(gateway: Gateway) -> None:
    task = SlackUsergroupsReconcile(gateway.sources, gateway.publisher)

    with pytest.raises(BadUserInput, match="unknown Slack workspace 'nope'"):
        await task({"workspaces": [workspace(name="nope")]})
    with pytest.raises(BadUserInput, match="invalid reconcile request"):
        await task({"workspaces": [{"name": "coreos", "usergroups": [{"handle": "x"}]}]})
    assert gateway.coreos.total_calls() == 0


def test_dry_runs_need_the_dry_run_scope_and_real_runs_the_apply_scope() -> None:
    assert ReconcileRequest().required_scope == "reconcile:dry-run"
    assert ReconcileRequest(dry_run=False).required_scope == "reconcile:apply"


async def test_a_created_group_whose_members_fail_reports_that_it_was_created(
    gateway: Gateway,
) -> None:
    refused = {"ok": False, "error": "permission_denied"}
    gateway.coreos.fail(200, path_prefix="/api/usergroups.users.update", body=refused)
    desired = workspace(usergroup("new-team", ["alice"], "New"))

    result = await gateway.run(False, desired)
    again = await gateway.run(True, desired)

    assert result.errors == [
        "coreos/new-team: create failed: created, but setting its members failed: "
        "Slack workspace 'coreos': usergroups.users.update failed: permission_denied"
    ]
    assert [(a.kind, a.usergroup) for a in again.actions] == [("update_users", "new-team")]


@pytest.mark.parametrize("rate_limit", [TIGHT])
async def test_real_runs_draw_on_the_shared_slack_rate_buckets(gateway: Gateway) -> None:
    handles = [f"team-{n}" for n in range(6)]
    for handle in handles:
        gateway.coreos.state.add_usergroup(handle, users=["U2"])
    desired = workspace(*(usergroup(h, ["alice"]) for h in handles), managed=handles)

    start = time.monotonic()
    result = await gateway.run(False, desired)
    elapsed = time.monotonic() - start

    assert (result.status, result.applied_count) == ("success", 6)
    assert elapsed >= 0.45, "six usergroups.users.update calls at 10/s with a burst of 1"
