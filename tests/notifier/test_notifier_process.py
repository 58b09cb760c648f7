"""The notifier as operators run it: a real reconcile run reaches Slack once, through a SIGKILL."""

import re
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from gateway.auth import mint_token
from gateway.events import Event
from gateway.events.redis_streams import encode_entry
from gateway.redis_keys import NotifierKeys, stream_keys
from tests.emulators.slack import SlackEmulator
from tests.support.gateway import graphql
from tests.support.serve_process import CHECKOUT, clean_env, running
from tests.support.server_thread import ServerThread
from tests.support.slack_workspace import TOKEN_VARIABLE, coreos_slack
from tests.support.wait import wait_until
from tests.test_slack_reconcile import MANAGED, TOKEN

SECRET = "notifier-test-secret-0123456789abcdef"
CHANGES_CHANNEL = "C9"
SUBMIT = """mutation Submit($input: SlackUsergroupsReconcileInput_v1!) {
  slack_usergroups_reconcile_v1(input: $input) { id }
}"""
READ = """query Read($id: String!) {
  reconcile_task_v1(id: $id, wait_seconds: 30) {
    status typed_result { ... on SlackUsergroupsReconcileResult_v1 { applied_count } }
  }
}"""
DESIRED = {
    "name": "coreos",
    "managed_usergroups": MANAGED,
    "usergroups": [
        {
            "handle": "sre-team",
            "config": {
                "description": "SRE",
                "users": ["alice", "carol"],
                "channels": ["sre"],
                "notifications": {"add_user": "welcome to sre", "remove_user": "bye from sre"},
            },
        },
        {
            "handle": "new-team",
            "config": {
                "description": "New",
                "users": ["bob"],
                "channels": ["team-x"],
                "notifications": {"add_user": "welcome to new-team"},
            },
        },
    ],
}
EXPECTED_LINES = [
    "usergroup @sre-team: added carol, removed bob",
    "created usergroup @new-team with users bob and channels team-x",
]


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[SlackEmulator, dict[str, Any]]]:
    with coreos_slack(monkeypatch) as (emulator, workspace):
        emulator.state.add_channel(CHANGES_CHANNEL, "qontract-changes", member=False)
        yield emulator, workspace


@pytest.fixture
def workspace(slack: tuple[SlackEmulator, dict[str, Any]]) -> dict[str, Any]:
    return slack[1]


@pytest.fixture
def gateway(
    gateway_factory: Callable[..., ServerThread], workspace: dict[str, Any]
) -> ServerThread:
    return gateway_factory(auth={"secret": SECRET}, upstreams={"slack": [workspace]})


@pytest.fixture
def config(tmp_path: Path, redis_url: str, namespace: str, workspace: dict[str, Any]) -> Path:
    path = tmp_path / "notifier.yaml"
    settings = {
        "redis": {"url": redis_url, "namespace": namespace},
        "events": {"block_ms": 200},
        "upstreams": {"slack": [workspace]},
        "notifier": {
            "channels": {"coreos": "qontract-changes"},
            "consumer": "notifier-e2e",
            "start_from": "oldest",
            "retry_after": 1.0,
            "batch_size": 2,
        },
    }
    path.write_text(yaml.safe_dump(settings))
    return path


@contextmanager
def notifier(config: Path, *arguments: str) -> Iterator[tuple["subprocess.Popen[str]", str]]:
    """`qontract-gateway notifier` as a ready subprocess; its output shown if the test fails."""
    command = ("notifier", "--config", str(config), *arguments)
    with running(*command, env={TOKEN_VARIABLE: TOKEN}) as (process, url):
        try:
            yield process, url
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            if process.stdout and not process.stdout.closed:
                print(process.stdout.read())  # shown by pytest when the test fails


def reconcile(gateway: ServerThread, dry_run: bool) -> None:
    token = mint_token(SECRET, "notifier-test", ["reconcile:apply"], expires_days=1)
    submitted = graphql(gateway, SUBMIT, token, input={"dry_run": dry_run, "workspaces": [DESIRED]})
    task_id = submitted["data"]["slack_usergroups_reconcile_v1"]["id"]
    read = graphql(gateway, READ, token, id=task_id)["data"]["reconcile_task_v1"]
    assert read["status"] == "success", read


def settled(redis_url: str, namespace: str, group: str) -> bool:
    """True when `group` has read the whole stream and acknowledged every delivery."""
    client = redis.Redis.from_url(redis_url)
    try:
        groups = client.xinfo_groups(stream_keys(namespace).stream)
    finally:
        client.close()
    found = [g for g in groups if g["name"].decode() == group]
    return bool(found) and found[0]["pending"] == 0 and found[0]["lag"] == 0


def stream_length(redis_url: str, namespace: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.xlen(stream_keys(namespace).stream))
    finally:
        client.close()


def claimed_markers(redis_url: str, namespace: str) -> int:
    """How many messages are claimed (`sending`) and not marked sent."""
    client = redis.Redis.from_url(redis_url)
    try:
        pattern = NotifierKeys(namespace).sent("digest").replace("{digest}", "*")
        markers = client.scan_iter(match=pattern, count=1000)
        return sum(1 for marker in markers if client.get(marker) == b"sending")
    finally:
        client.close()


def counter(metrics: str, name: str) -> float:
    """The sum of every series of counter `name` in a Prometheus text exposition."""
    pattern = re.compile(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", re.M)
    return sum(float(value) for value in pattern.findall(metrics))


def lines_in(emulator: SlackEmulator, channel: str) -> list[str]:
    """The lines posted to `channel` (the lines read in one batch share a message)."""
    return [line for text in emulator.state.messages_in(channel) for line in text.splitlines()]


def all_posted(emulator: SlackEmulator) -> bool:
    state = emulator.state
    return (
        len(lines_in(emulator, CHANGES_CHANNEL)) >= len(EXPECTED_LINES)
        and len(state.direct_messages_to("U2")) >= 2
        and len(state.direct_messages_to("U4")) >= 1
    )


def test_a_real_run_reaches_slack_exactly_once_through_a_sigkill_mid_stream(
    gateway: ServerThread,
    slack: tuple[SlackEmulator, dict[str, Any]],
    config: Path,
    redis_url: str,
    namespace: str,
) -> None:
    emulator, _ = slack
    reconcile(gateway, dry_run=True)
    assert stream_length(redis_url, namespace) == 0, "a dry run published events"
    reconcile(gateway, dry_run=False)
    assert stream_length(redis_url, namespace) == 5
    emulator.state.post_answer_delay = 0.3
    with notifier(config) as (process, _):
        wait_until(
            lambda: len(emulator.state.messages) >= 2 and emulator.in_flight > 0,
            30,
            "a second message posted, its answer still on the way",
        )
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not all_posted(emulator), "the kill came too late to test anything"
    left_claimed = claimed_markers(redis_url, namespace)
    assert left_claimed >= 1, "no message was claimed at the kill"
    emulator.state.post_answer_delay = 0.0
    with notifier(config) as (_, url):
        wait_until(lambda: all_posted(emulator), 30, "every message")
        wait_until(lambda: settled(redis_url, namespace, "notifier"), 30, "every ack")
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
    state = emulator.state
    assert sorted(lines_in(emulator, CHANGES_CHANNEL)) == sorted(EXPECTED_LINES)
    assert state.direct_messages_to("U4") == ["welcome to sre"]
    assert sorted(state.direct_messages_to("U2")) == ["bye from sre", "welcome to new-team"]
    assert sum(len(m["text"].splitlines()) for m in state.messages) == 5
    assert emulator.total_calls("POST /api/conversations.join") == 1
    # in flight, or answered but not yet marked sent, at the kill: counted, never posted again
    assert counter(metrics, "qontract_gateway_notifier_unconfirmed_total") == left_claimed
    assert counter(metrics, "qontract_gateway_notifier_received_total") >= 3
    assert TOKEN not in metrics


def test_a_dry_run_notifier_logs_what_it_would_post_and_posts_nothing(
    gateway: ServerThread,
    slack: tuple[SlackEmulator, dict[str, Any]],
    config: Path,
    redis_url: str,
    namespace: str,
) -> None:
    emulator, _ = slack
    reconcile(gateway, dry_run=False)
    with notifier(config, "--dry-run") as (process, _):
        wait_until(lambda: settled(redis_url, namespace, "notifier-dry-run"), 30, "every ack")
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert emulator.state.messages == []
    assert emulator.total_calls("POST /api/chat.postMessage") == 0
    assert output.count("dry run: would post") == 5
    assert "usergroup @sre-team: added carol, removed bob" in output
    assert TOKEN not in output


def test_a_channel_for_a_workspace_that_is_not_configured_is_refused_at_start(
    tmp_path: Path, redis_url: str
) -> None:
    config = tmp_path / "notifier.yaml"
    config.write_text(
        yaml.safe_dump({"redis": {"url": redis_url}, "notifier": {"channels": {"nope": "x"}}})
    )
    # a subprocess: the command configures logging for its whole process
    result = subprocess.run(
        ["qontract-gateway", "notifier", "--config", str(config)],
        env={**clean_env(), "PYTHONPATH": str(CHECKOUT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "not configured: ['nope']" in result.stderr


def test_a_new_group_starts_at_new_events_so_a_first_deploy_replays_nothing(
    gateway: ServerThread,
    slack: tuple[SlackEmulator, dict[str, Any]],
    config: Path,
    redis_url: str,
    namespace: str,
) -> None:
    emulator, _ = slack
    reconcile(gateway, dry_run=False)
    settings = yaml.safe_load(config.read_text())
    settings["notifier"]["start_from"] = "new"
    config.write_text(yaml.safe_dump(settings))
    with notifier(config):
        wait_until(lambda: settled(redis_url, namespace, "notifier"), 30, "the group at the end")
        client = redis.Redis.from_url(redis_url)
        try:
            later = Event(
                event_type="slack-usergroups.error",
                source="test",
                payload={"workspace": "coreos", "usergroup": "", "error": "later"},
            )
            client.xadd(stream_keys(namespace).stream, encode_entry(later))  # type: ignore[arg-type]
        finally:
            client.close()
        wait_until(lambda: bool(emulator.state.messages), 30, "the new event's line")
    assert [m["text"] for m in emulator.state.messages] == [":warning: workspace: later"]
