"""Escalation policies tell the truth: off-boarded users are skipped, stale inputs stay stale."""

import time
from collections.abc import Callable
from typing import Any

import redis

from tests.security.lookup_upstreams import (
    POLICIES,
    SCHEDULES,
    Upstreams,
    ask,
    start_fixture,  # noqa: F401  (the `start` fixture)
    upstreams_fixture,  # noqa: F401  (the `upstreams` fixture)
)
from tests.support.server_thread import ServerThread
from tests.support.wait import wait_until


def policy_lookup(body: dict[str, Any]) -> dict[str, Any]:
    """The provenance entry of the escalation policy in a response."""
    entry: dict[str, Any]
    (entry,) = [
        lookup
        for lookup in body["extensions"]["provenance"]
        if "escalation_policy_users" in lookup["key"]
    ]
    return entry


def test_rules_targeting_an_off_boarded_user_skip_that_user(
    start: Callable[..., ServerThread], upstreams: Upstreams
) -> None:
    state = upstreams.pagerduty.state
    state.add_user("U9", "leaver@example.com")
    state.remove_user("U9")
    state.policies["PEGONE"] = [(30, [("user", "U9"), ("user", "U2")])]
    state.policies["PEFALL"] = [(30, [("user", "U9")]), (30, [("schedule", "PS00002")])]
    body = ask(start(), POLICIES, ids=["PEGONE", "PEFALL"])
    assert "errors" not in body, body["errors"]
    assert body["data"]["pagerduty_escalation_policies_v1"] == [
        {"id": "PEGONE", "users": [{"username": "bob"}]},
        {"id": "PEFALL", "users": [{"username": "bob"}]},
    ]
    assert upstreams.pagerduty.total_calls("GET /users/U9") == 1


def test_a_policy_built_from_stale_schedules_is_reported_stale_and_not_cached(
    start: Callable[..., ServerThread], upstreams: Upstreams, redis_url: str
) -> None:
    server = start(pagerduty_ttl={"schedule_users": 1})
    assert ask(server, SCHEDULES, ids=["PS00001"])["data"]["pagerduty_schedules_v1"][0]
    fetched = time.monotonic()  # the copy was fetched before this point, so it is at least this old
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
    ask(server, SCHEDULES, ids=["PS00001"])
    fetched = time.monotonic()  # the copy was fetched before this point, so it is at least this old
    wait_until(lambda: time.monotonic() > fetched + 1.0, 5, "the schedule copy to age")
    lookup = policy_lookup(ask(server, POLICIES, ids=["PE00001"]))
    assert lookup["outcome"] == "miss"
    assert lookup["age_seconds"] >= 1.0, lookup
