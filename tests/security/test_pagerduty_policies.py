"""Escalation policies tell the truth: off-boarded users are skipped, stale inputs stay stale."""

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from tests.security.lookup_upstreams import (
    SECRET,
    Upstreams,
    ask,
    running_upstreams,
    secured_gateway,
)
from tests.support.server_thread import ServerThread
from tests.support.wait import wait_until

SCHEDULES = """query S($ids: [String!]!) {
  pagerduty_schedules_v1(instance: "app-sre", ids: $ids) { id users { username } }
}"""
POLICIES = """query P($ids: [String!]!) {
  pagerduty_escalation_policies_v1(instance: "app-sre", ids: $ids) { id users { username } }
}"""


@pytest.fixture
def upstreams() -> Iterator[Upstreams]:
    with running_upstreams() as running:
        yield running


@pytest.fixture
def start(
    gateway_factory: Callable[..., ServerThread],
    upstreams: Upstreams,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., ServerThread]:
    def factory(**ttl: float) -> ServerThread:
        settings = upstreams.settings(monkeypatch)
        settings["pagerduty"][0]["ttl"] = ttl
        return gateway_factory(auth={"secret": SECRET}, upstreams=settings)

    return factory


def policy_lookup(body: dict[str, Any]) -> dict[str, Any]:
    """The provenance entry of the escalation policy in a response."""
    entry: dict[str, Any]
    (entry,) = [
        lookup
        for lookup in body["extensions"]["provenance"]
        if "escalation_policy_users" in lookup["key"]
    ]
    return entry


def test_a_rule_targeting_an_off_boarded_user_skips_that_user(
    gateway_factory: Callable[..., ServerThread],
    upstreams: Upstreams,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = upstreams.pagerduty.state
    state.add_user("U9", "leaver@example.com")
    state.remove_user("U9")
    state.policies["PEGONE"] = [(30, [("user", "U9"), ("user", "U2")])]
    server = secured_gateway(gateway_factory, upstreams, monkeypatch)
    body = ask(server, POLICIES, ids=["PEGONE"])
    assert "errors" not in body, body["errors"]
    assert body["data"]["pagerduty_escalation_policies_v1"] == [
        {"id": "PEGONE", "users": [{"username": "bob"}]}
    ]
    assert upstreams.pagerduty.total_calls("GET /users/U9") == 1


def test_a_rule_of_only_off_boarded_users_falls_through_to_the_next_rule(
    gateway_factory: Callable[..., ServerThread],
    upstreams: Upstreams,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = upstreams.pagerduty.state
    state.add_user("U9", "leaver@example.com")
    state.remove_user("U9")
    state.policies["PEFALL"] = [(30, [("user", "U9")]), (30, [("schedule", "PS00002")])]
    server = secured_gateway(gateway_factory, upstreams, monkeypatch)
    body = ask(server, POLICIES, ids=["PEFALL"])
    assert body["data"]["pagerduty_escalation_policies_v1"][0]["users"] == [{"username": "bob"}]


def test_a_policy_built_from_stale_schedules_is_reported_stale_and_not_cached(
    start: Callable[..., ServerThread], upstreams: Upstreams, redis_url: str
) -> None:
    server = start(schedule_users=1)
    fetched = time.monotonic()
    assert ask(server, SCHEDULES, ids=["PS00001"])["data"]["pagerduty_schedules_v1"][0]
    wait_until(lambda: time.monotonic() > fetched + 1.5, 5, "the schedule copy to expire")
    upstreams.pagerduty.fail(500, times=50, path_prefix="/schedules/")

    body = ask(server, POLICIES, ids=["PE00001"])
    assert body["data"]["pagerduty_escalation_policies_v1"] == [
        {"id": "PE00001", "users": [{"username": "alice"}]}
    ]
    lookup = policy_lookup(body)
    assert lookup["outcome"] == "stale", lookup
    assert lookup["age_seconds"] >= 1.5, lookup
    assert not redis.Redis.from_url(redis_url).exists(lookup["key"]), "cached as if fresh"

    upstreams.pagerduty.reset()
    again = ask(server, POLICIES, ids=["PE00001"])
    assert policy_lookup(again)["outcome"] == "miss"
    assert upstreams.pagerduty.total_calls("GET /escalation_policies/PE00001") == 1
    assert upstreams.pagerduty.total_calls("GET /schedules/PS00001/users") == 1


def test_a_fresh_policy_is_as_old_as_its_oldest_schedule(
    start: Callable[..., ServerThread], upstreams: Upstreams
) -> None:
    server = start()
    fetched = time.monotonic()
    ask(server, SCHEDULES, ids=["PS00001"])
    wait_until(lambda: time.monotonic() > fetched + 1.0, 5, "the schedule copy to age")
    lookup = policy_lookup(ask(server, POLICIES, ids=["PE00001"]))
    assert lookup["outcome"] == "miss"
    assert lookup["age_seconds"] >= 1.0, lookup
