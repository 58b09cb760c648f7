"""Lookup inputs are bounded before any work: list lengths, string lengths, paths, fan-out."""

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.security.lookup_upstreams import (
    SCHEDULES,
    Upstreams,
    ask,
    start_fixture,  # noqa: F401  (the `start` fixture)
    upstreams_fixture,  # noqa: F401  (the `upstreams` fixture)
)
from tests.support.server_thread import ServerThread

SCHEDULES_IN = """query S($instance: String!, $ids: [String!]!) {
  pagerduty_schedules_v1(instance: $instance, ids: $ids) { id }
}"""
TWO_LISTS = """query S($a: [String!]!, $b: [String!]!) {
  a: pagerduty_schedules_v1(instance: "app-sre", ids: $a) { id }
  b: pagerduty_escalation_policies_v1(instance: "app-sre", ids: $b) { id }
}"""
OWNERS = """query O($path: String!) {
  vcs_owners_v1(repo_url: "https://github.com/app-sre/repo", path: $path, ref: "master") {
    approvers
  }
}"""
JQL = """query J($jql: String) { jira_issues_v1(instance: "redhat", jql: $jql) { key } }"""
LISTS = {
    "ids": SCHEDULES,
    "handles": """query Q($v: [String!]) {
      slack_usergroups_v1(workspace: "coreos", handles: $v) { handle } }""",
    "org_usernames": """query Q($v: [String!]) {
      slack_users_v1(workspace: "coreos", org_usernames: $v) { id } }""",
    "names": """query Q($v: [String!]) {
      slack_channels_v1(workspace: "coreos", names: $v) { id } }""",
    "keys": """query Q($v: [String!]) { jira_issues_v1(instance: "redhat", keys: $v) { key } }""",
    "repos": """query Q($v: [String!]!) { github_repo_collaborators_v1(repos: $v) { name } }""",
}


def refusal(body: dict[str, Any]) -> str:
    """The one BAD_USER_INPUT error of a refused request, as its message."""
    assert body["data"] is None, body["data"]
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["request_id"]
    message: str = error["message"]
    assert len(message) < 300, message
    return message


def no_upstream_calls(upstreams: Upstreams) -> bool:
    return all(e.total_calls() == 0 for e in upstreams.emulators().values())


def test_a_hundred_thousand_ids_are_refused_at_once_naming_the_limit(
    start: Callable[..., ServerThread], upstreams: Upstreams
) -> None:
    server = start()
    started = time.monotonic()
    body = ask(server, SCHEDULES, ids=[f"P{n:x}" for n in range(100_000)])
    elapsed = time.monotonic() - started
    message = refusal(body)
    assert "limits.max_list_items" in message
    assert "1000" in message
    assert no_upstream_calls(upstreams)
    assert elapsed < 15, elapsed  # it took 48 s before; generous for a loaded 2-core machine


@pytest.mark.parametrize("argument", sorted(LISTS))
def test_every_list_argument_is_bounded(
    start: Callable[..., ServerThread], upstreams: Upstreams, argument: str
) -> None:
    server = start(limits={"max_list_items": 5})
    variables = {"ids": [f"PS{n}" for n in range(6)]} if argument == "ids" else {}
    if argument == "repos":
        variables = {"v": [f"app-sre/r{n}" for n in range(6)]}
    elif argument == "keys":
        variables = {"v": [f"APPSRE-{n}" for n in range(1, 7)]}
    elif argument != "ids":
        variables = {"v": [f"name{n}" for n in range(6)]}
    message = refusal(ask(server, LISTS[argument], **variables))
    assert f"`{argument}`" in message
    assert "limits.max_list_items" in message
    assert no_upstream_calls(upstreams)


def test_items_across_the_whole_request_are_bounded(
    start: Callable[..., ServerThread], upstreams: Upstreams
) -> None:
    server = start(limits={"max_list_items": 10, "max_request_items": 15})
    ids = [f"PS{n}" for n in range(10)]
    body = ask(server, TWO_LISTS, a=ids, b=ids)
    assert body["data"] is None
    assert any("limits.max_request_items" in e["message"] for e in body["errors"]), body
    assert all(e["extensions"]["code"] == "BAD_USER_INPUT" for e in body["errors"])
    assert no_upstream_calls(upstreams)


def test_a_long_id_is_refused_naming_the_string_limit(
    start: Callable[..., ServerThread], upstreams: Upstreams
) -> None:
    message = refusal(ask(start(), SCHEDULES, ids=["P" * 10_000]))
    assert "limits.max_string_length" in message
    assert no_upstream_calls(upstreams)


def test_a_long_jql_is_refused_naming_its_limit(
    start: Callable[..., ServerThread], upstreams: Upstreams
) -> None:
    message = refusal(ask(start(), JQL, jql="project = APPSRE OR " * 5_000))
    assert "limits.max_jql_length" in message
    assert no_upstream_calls(upstreams)


def test_a_64_kb_owners_path_is_refused_before_any_work(
    start: Callable[..., ServerThread], upstreams: Upstreams
) -> None:
    message = refusal(ask(start(), OWNERS, path="/a" * 32_768))
    assert "limits.max_path_length" in message
    assert no_upstream_calls(upstreams)


def test_an_owners_path_with_too_many_segments_is_refused(
    start: Callable[..., ServerThread], upstreams: Upstreams
) -> None:
    message = refusal(ask(start(), OWNERS, path="/a" * 33))
    assert "limits.max_path_segments" in message
    assert no_upstream_calls(upstreams)


@pytest.mark.parametrize("size", [250, 900_000])
def test_an_unknown_name_is_echoed_truncated(start: Callable[..., ServerThread], size: int) -> None:
    server = start(limits={"max_string_length": 1_000_000})
    body = ask(server, SCHEDULES_IN, instance="x" * size, ids=["PS00001"])
    message = refusal(body)
    assert "unknown PagerDuty instance" in message
    assert "…" in message
    assert "app-sre" in message


def test_upstream_fetches_of_one_request_are_bounded(
    start: Callable[..., ServerThread], upstreams: Upstreams
) -> None:
    server = start(limits={"max_concurrent_fetches_per_request": 2})
    upstreams.pagerduty.state.oncall.update({f"PX{n}": ["U1"] for n in range(12)})
    upstreams.pagerduty.slow(0.1, times=12, path_prefix="/schedules/")
    body = ask(server, SCHEDULES, ids=[f"PX{n}" for n in range(12)])
    assert "errors" not in body, body["errors"]
    assert len(body["data"]["pagerduty_schedules_v1"]) == 12
    assert upstreams.pagerduty.total_calls() == 12
    assert 1 <= upstreams.pagerduty.peak_in_flight <= 2


def test_upstream_fetches_of_the_process_are_bounded(
    start: Callable[..., ServerThread], upstreams: Upstreams
) -> None:
    server = start(limits={"max_concurrent_fetches_per_request": 8, "max_concurrent_fetches": 3})
    upstreams.pagerduty.state.oncall.update({f"PY{n}": ["U1"] for n in range(16)})
    upstreams.pagerduty.slow(0.1, times=16, path_prefix="/schedules/")
    bodies: list[dict[str, Any]] = []

    def one(first: int) -> None:
        bodies.append(ask(server, SCHEDULES, ids=[f"PY{n}" for n in range(first, first + 8)]))

    threads = [threading.Thread(target=one, args=(first,)) for first in (0, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(bodies) == 2
    assert all("errors" not in body for body in bodies), bodies
    assert upstreams.pagerduty.total_calls() == 16
    assert 1 <= upstreams.pagerduty.peak_in_flight <= 3


def test_item_errors_are_logged_once_per_request(
    start: Callable[..., ServerThread],
    upstreams: Upstreams,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = start()
    capsys.readouterr()
    body = ask(server, SCHEDULES, ids=[f"bad id {n}" for n in range(300)])
    assert len(body["errors"]) == 300
    assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}
    logs = capsys.readouterr()
    lines = [line for line in (logs.out + logs.err).splitlines() if "error" in line]
    assert len(lines) == 1, lines[:5]
    assert "BAD_USER_INPUT" in lines[0]
    assert "300" in lines[0]
    assert no_upstream_calls(upstreams)
