"""slack-usergroups-api end to end: the CLI against qontract-server, the gateway, Slack, Redis."""

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from gateway.events.redis_streams import decode_entry
from gateway.redis_keys import stream_keys
from tests.client.conftest import ONCALL_WELCOME, run_cli
from tests.client.test_cli import COMMAND, env_for
from tests.client.test_slack_usergroups_api import graphql_posts
from tests.emulators.qontract_server import QontractServerEmulator
from tests.emulators.slack import SlackEmulator
from tests.support.server_thread import ServerThread
from tests.test_slack_reconcile import GENEROUS, writes

SLACK_TOKEN = "xoxb-e2e-token-0123"
SLACK_USERS = {"U1": "alice", "U2": "robert", "U3": "dave", "U4": "erin", "U5": "frank"}
EXPECTED_ACTIONS = {
    "[dry-run] update_users coreos/oncall: +dave +robert -frank",
    "[dry-run] update_metadata coreos/oncall: description='oncall team' channels=alerts,sre",
    "[dry-run] create coreos/rotation: +erin description='rotation team' channels=(none)",
    "[dry-run] create coreos/prod-cluster: +dave "
    "description='Users with access to the prod cluster' channels=(none)",
}
TASK = """query Task($id: String!) {
  reconcile_task_v1(id: $id, wait_seconds: 60) {
    status
    typed_result { ... on SlackUsergroupsReconcileResult_v1 { applied_count errors } }
  }
}"""


@pytest.fixture
def slack() -> Iterator[tuple[SlackEmulator, ServerThread]]:
    """Workspace coreos: the bundle's users and channels, `oncall` drifted, no `rotation`."""
    emulator = SlackEmulator()
    state = emulator.state
    state.token = SLACK_TOKEN
    for user_id, name in SLACK_USERS.items():
        state.add_user(user_id, name, f"{name}@example.com")
    state.add_channel("C1", "sre")
    state.add_channel("C2", "alerts")
    state.add_usergroup("oncall", users=["U1", "U5"], channels=["C1"], description="On call")
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def gateway(
    pd_gateway_factory: Callable[..., ServerThread],
    slack: tuple[SlackEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    """A gateway (no auth) with PagerDuty `app-sre` and the Slack workspace `coreos`."""
    monkeypatch.setenv("QGW_TEST_SLACK_TOKEN", SLACK_TOKEN)
    workspace = {
        "name": "coreos",
        "api_url": f"{slack[1].url}/api",
        "token": {"env": "QGW_TEST_SLACK_TOKEN"},
        "rate_limit": GENEROUS,
    }
    return pd_gateway_factory(upstreams={"slack": [workspace]})


@pytest.fixture
def env(
    gateway: ServerThread, qontract_server: tuple[QontractServerEmulator, ServerThread]
) -> dict[str, str]:
    """The CLI's environment: this gateway and the qontract-server emulator."""
    return env_for(f"{gateway.url}/graphql", qontract_server[1])


def dry_run_lines(stdout: str) -> set[str]:
    """The `[dry-run]` action lines of the output."""
    return {line for line in stdout.splitlines() if line.startswith("[dry-run] ")}


def finished_task(gateway: ServerThread, task_id: str) -> dict[str, Any]:
    """The task once the gateway reports it finished (it waits up to 60 s for that)."""
    response = httpx.post(
        f"{gateway.url}/graphql", json={"query": TASK, "variables": {"id": task_id}}, timeout=90
    )
    task: dict[str, Any] = response.json()["data"]["reconcile_task_v1"]
    assert task["status"] in ("success", "failed"), task
    return task


def events(redis_url: str, namespace: str) -> list[tuple[str, dict[str, Any]]]:
    """Every event the gateway published, as (type, payload), oldest first."""
    with redis.Redis.from_url(redis_url) as client:
        entries: Any = client.xrange(stream_keys(namespace).stream)
    return [(e.event_type, e.payload) for e in (decode_entry(fields) for _, fields in entries)]


def members(slack: SlackEmulator, handle: str) -> set[str]:
    """The names of the usergroup's members in the emulated workspace."""
    return {SLACK_USERS[user_id] for user_id in slack.state.usergroup(handle)["users"]}


def test_dry_run_prints_every_action_and_exits_0(
    env: dict[str, str], slack: tuple[SlackEmulator, ServerThread]
) -> None:
    result = run_cli(COMMAND, env=env)
    assert result.returncode == 0, result.stderr
    assert dry_run_lines(result.stdout) == EXPECTED_ACTIONS
    assert re.search(r"^task \S+: success, 4 action\(s\)$", result.stdout, re.MULTILINE)
    assert writes(slack[0]) == 0


def test_dry_run_with_an_error_prints_it_and_exits_1(
    env: dict[str, str], slack: tuple[SlackEmulator, ServerThread]
) -> None:
    """`rotation` exists with frank, and its only desired user, erin, is deleted in Slack."""
    state = slack[0].state
    state.users["U4"]["deleted"] = True
    state.add_usergroup("rotation", users=["U5"], description="rotation team")
    result = run_cli(COMMAND, env=env)
    assert result.returncode == 1
    assert dry_run_lines(result.stdout) == {
        line for line in EXPECTED_ACTIONS if "coreos/rotation" not in line
    }
    assert "error: coreos/rotation: cannot remove all 1 members" in result.stdout
    assert re.search(r"^task \S+: failed, 3 action\(s\)$", result.stdout, re.MULTILINE)
    assert "failed: 1 error(s)" in result.stderr
    assert "Traceback" not in result.stderr


def test_real_run_returns_once_accepted_and_slack_then_matches_and_a_dry_run_finds_nothing(
    env: dict[str, str],
    gateway: ServerThread,
    slack: tuple[SlackEmulator, ServerThread],
    redis_url: str,
    namespace: str,
) -> None:
    emulator, _ = slack
    applied = run_cli("--no-dry-run", COMMAND, env=env)
    assert applied.returncode == 0, applied.stderr
    accepted = re.fullmatch(
        r"reconcile task (\S+) accepted \((pending|running)\)\n", applied.stdout
    )
    assert accepted, applied.stdout
    task = finished_task(gateway, accepted.group(1))
    assert task["typed_result"] == {"applied_count": 4, "errors": []}
    assert members(emulator, "oncall") == {"alice", "dave", "robert"}
    assert emulator.state.usergroup("oncall")["description"] == "oncall team"
    assert set(emulator.state.usergroup("oncall")["prefs"]["channels"]) == {"C1", "C2"}
    assert members(emulator, "rotation") == {"erin"}
    assert members(emulator, "prod-cluster") == {"dave"}
    notices = [p for t, p in events(redis_url, namespace) if t.endswith(".notify_add_user")]
    assert notices == [
        {
            "workspace": "coreos",
            "usergroup": "oncall",
            "users": ["dave", "robert"],
            "user_ids": ["U3", "U2"],
            "message": ONCALL_WELCOME,
            "task_id": accepted.group(1),
            "request_id": notices[0]["request_id"],
        }
    ], "oncall's addUser notification, for the users the run added"
    assert notices[0]["request_id"], "the id of the request that submitted the run"
    again = run_cli(COMMAND, env=env)
    assert again.returncode == 0, again.stderr
    assert dry_run_lines(again.stdout) == set()
    assert re.search(r"^task \S+: success, 0 action\(s\)$", again.stdout, re.MULTILINE)


def test_flag_off_skips_with_exit_0_and_never_calls_the_gateway(
    env: dict[str, str],
    gateway: ServerThread,
    slack: tuple[SlackEmulator, ServerThread],
    qontract_server: tuple[QontractServerEmulator, ServerThread],
) -> None:
    flags = {"QONTRACT_RECONCILE_API_FLAGS": '{"slack-usergroups-api": false}'}
    result = run_cli("--no-dry-run", COMMAND, env={**env, **flags})
    assert result.returncode == 0
    assert "feature toggle slack-usergroups-api is off" in result.stderr
    assert graphql_posts(gateway) == 0
    assert qontract_server[0].calls == 0
    assert slack[0].total_calls() == 0
