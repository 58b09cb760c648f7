"""Slack writes the reconcile uses, and how the workspace source follows them (real Redis, HTTP)."""

from collections.abc import AsyncIterator, Iterator

import pytest
from prometheus_client import CollectorRegistry

from gateway.cache import Cache, CacheMetrics
from gateway.errors import UpstreamError
from gateway.ratelimit import Bucket, BucketSpec, RateLimiter, RateLimitMetrics
from gateway.redis import create_redis
from gateway.upstream import UpstreamAccount, UpstreamClient, UpstreamMetrics
from resolvers.slack.api import SlackApi
from resolvers.slack.source import SlackSource
from tests.emulators.slack import SlackEmulator
from tests.support.server_thread import ServerThread

TOKEN = "xoxb-writes-token-789"
GENEROUS = BucketSpec(capacity=100, refill_per_second=100)


@pytest.fixture
def slack_server() -> Iterator[tuple[SlackEmulator, ServerThread]]:
    emulator = SlackEmulator()
    state = emulator.state
    state.token = TOKEN
    state.add_user("U1", "alice", "alice@example.com")
    state.add_user("U2", "bob", "bob@example.com")
    state.add_user("U3", "gone", "gone@example.com", deleted=True)
    state.add_user("U4", "carol", "carol@example.com", enterprise_id="W4")
    state.add_channel("C1", "sre")
    state.add_channel("C2", "team-x")
    state.add_usergroup("sre-team", users=["U1"], channels=["C1"], description="SRE")
    state.add_usergroup("old-team", users=["U2"], disabled=True)
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def slack(slack_server: tuple[SlackEmulator, ServerThread]) -> SlackEmulator:
    return slack_server[0]


@pytest.fixture
async def source(
    slack_server: tuple[SlackEmulator, ServerThread], redis_url: str, namespace: str
) -> AsyncIterator[SlackSource]:
    registry = CollectorRegistry()
    redis = create_redis(redis_url)
    account = UpstreamAccount(
        system="slack",
        name="coreos",
        base_url=f"{slack_server[1].url}/api",
        bucket=Bucket("slack", "coreos", "tier2", GENEROUS),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    limiter = RateLimiter(redis, namespace, RateLimitMetrics(registry))
    client = UpstreamClient(account, limiter, UpstreamMetrics(registry))
    cache = Cache(redis, namespace, CacheMetrics(registry), local_ttl=0.0)
    yield SlackSource("coreos", SlackApi(client, rate_limit=GENEROUS), cache)
    await client.aclose()
    await redis.aclose()


async def test_created_usergroup_has_its_handle_description_and_channels(
    source: SlackSource, slack: SlackEmulator
) -> None:
    created = await source.api.create_usergroup("new-team", "New Team", "fresh", ["C1", "C2"])
    assert (created.handle, created.description, created.prefs.channels) == (
        "new-team",
        "fresh",
        ["C1", "C2"],
    )
    assert slack.state.usergroup("new-team")["id"] == created.id


async def test_empty_member_list_is_refused_as_invalid_users(
    source: SlackSource, slack: SlackEmulator
) -> None:
    group_id = slack.state.usergroup("sre-team")["id"]
    with pytest.raises(UpstreamError) as raised:
        await source.api.update_usergroup_users(group_id, [])
    assert raised.value.extensions["error"] == "invalid_users"
    assert TOKEN not in raised.value.message


async def test_deleted_member_is_refused_and_a_grid_id_is_accepted(
    source: SlackSource, slack: SlackEmulator
) -> None:
    group_id = slack.state.usergroup("sre-team")["id"]
    with pytest.raises(UpstreamError, match="invalid_users"):
        await source.api.update_usergroup_users(group_id, ["U1", "U3"])
    updated = await source.api.update_usergroup_users(group_id, ["U1", "W4"])
    assert updated.users == ["U1", "W4"]


async def test_refresh_users_sees_a_user_the_cached_copy_lacks(
    source: SlackSource, slack: SlackEmulator
) -> None:
    assert "dave" not in (await source.users()).value["members"]
    slack.state.add_user("U5", "dave", "dave@example.com")
    assert "dave" not in (await source.users()).value["members"], "still the cached copy"
    refreshed = await source.refresh_users()
    assert refreshed.value["members"]["dave"]["id"] == "U5"
    assert (await source.users()).value["members"]["dave"]["id"] == "U5"
    assert slack.total_calls("POST /api/users.list") == 2


async def test_put_usergroup_updates_the_cached_list_and_keeps_members_slack_left_out(
    source: SlackSource, slack: SlackEmulator
) -> None:
    await source.usergroups()
    group_id = slack.state.usergroup("sre-team")["id"]
    updated = await source.api.update_usergroup(group_id, description="on call", channels=["C2"])
    assert updated.users is None, "usergroups.update does not answer with members"
    await source.put_usergroup(updated)
    enabled = await source.api.enable_usergroup(slack.state.usergroup("old-team")["id"])
    await source.put_usergroup(enabled)

    groups = (await source.usergroups()).value
    assert groups["sre-team"]["description"] == "on call"
    assert groups["sre-team"]["channels"] == ["C2"]
    assert groups["sre-team"]["users"] == ["U1"]
    assert groups["old-team"]["disabled"] is False
    assert slack.total_calls("POST /api/usergroups.list") == 1


async def test_put_usergroup_without_a_cached_list_leaves_the_next_read_to_slack(
    source: SlackSource, slack: SlackEmulator
) -> None:
    created = await source.api.create_usergroup("new-team", "New Team")
    await source.put_usergroup(created)
    groups = (await source.usergroups()).value
    assert sorted(groups) == ["new-team", "old-team", "sre-team"]
    assert slack.total_calls("POST /api/usergroups.list") == 1


async def test_messages_are_posted_to_channels_and_users(
    source: SlackSource, slack: SlackEmulator
) -> None:
    await source.api.post_message("C1", "hello channel")
    await source.api.post_message("U2", "hello bob")
    with pytest.raises(UpstreamError, match="channel_not_found"):
        await source.api.post_message("C404", "nobody")
    assert [(m["channel"], m["text"]) for m in slack.state.messages] == [
        ("C1", "hello channel"),
        ("U2", "hello bob"),
    ]
