"""`github_owners_reconcile_v1` end to end: GraphQL over HTTP, the task engine, the GitHub
emulator and Redis (events, leases, cache)."""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from gateway.auth import mint_token
from gateway.events.redis_streams import decode_entry
from gateway.redis_keys import stream_keys
from tests.emulators.github import GitHubEmulator
from tests.support.gateway import graphql
from tests.support.server_thread import ServerThread
from tests.test_github import SECONDARY_LIMIT

SECRET = "github-owners-test-secret-0123456789abcdef"
TOKEN = "ghp-owners-token-value-789"
ORGS = ("app-sre", "openshift")
SUBMIT = """mutation Submit($input: GitHubOwnersReconcileInput_v1!) {
  github_owners_reconcile_v1(input: $input) { id status dry_run kind }
}"""
READ = """query Read($id: String!) {
  reconcile_task_v1(id: $id, wait_seconds: 30) {
    id status error
    typed_result {
      __typename status errors
      ... on GitHubOwnersReconcileResult_v1 {
        applied_count
        actions { __typename org login }
      }
    }
  }
}"""
PUTS = "PUT /orgs/"


@pytest.fixture
def github() -> Iterator[tuple[GitHubEmulator, ServerThread]]:
    """app-sre: owners alice (admin) and carol (invited as admin), members bob and dave,
    erin invited as a plain member; 150 more admins so owners span two pages; frank is a
    GitHub account outside every org. openshift: owner alice only."""
    emulator = GitHubEmulator()
    state = emulator.state
    state.token = TOKEN
    state.add_member("app-sre", "alice", 1, "admin")
    state.add_member("app-sre", "bob", 2)
    state.add_member("app-sre", "Dave", 4)
    for index in range(150):
        state.add_member("app-sre", f"admin{index:03d}", 100 + index, "admin")
    state.invite("app-sre", "carol", 3, "admin")
    state.invite("app-sre", "erin", 5, "direct_member")
    state.add_user("frank", 6)
    state.add_member("openshift", "alice", 1, "admin")
    with ServerThread(emulator.app) as server:
        yield emulator, server


@pytest.fixture
def gateway(
    gateway_factory: Callable[..., ServerThread],
    github: tuple[GitHubEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> ServerThread:
    """A gateway with auth and the GitHub accounts app-sre and openshift (one emulator)."""
    return gateway_with(gateway_factory, github, monkeypatch)


def gateway_with(
    gateway_factory: Callable[..., ServerThread],
    github: tuple[GitHubEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
    **settings: Any,
) -> ServerThread:
    """A gateway with both orgs and `settings`."""
    monkeypatch.setenv("QGW_TEST_GH_TOKEN", TOKEN)
    accounts = [
        {"name": org, "api_url": github[1].url, "token": {"env": "QGW_TEST_GH_TOKEN"}}
        for org in ORGS
    ]
    return gateway_factory(auth={"secret": SECRET}, upstreams={"github": accounts}, **settings)


def call(gateway: ServerThread, query: str, scopes: list[str], **variables: Any) -> Any:
    token = mint_token(SECRET, "github-owners-api", scopes, expires_days=1)
    return graphql(gateway, query, token, **variables)


def submit(gateway: ServerThread, dry_run: bool, *organizations: dict[str, Any]) -> Any:
    """Submit a run (real runs with the apply scope) and return the whole answer."""
    scopes = ["reconcile:dry-run"] if dry_run else ["reconcile:apply"]
    variables = {"input": {"dry_run": dry_run, "organizations": list(organizations)}}
    return call(gateway, SUBMIT, scopes, **variables)


def finished(gateway: ServerThread, task_id: str) -> dict[str, Any]:
    """The task once ended (the gateway waits up to 30 s for it)."""
    task: dict[str, Any] = call(gateway, READ, ["reconcile:dry-run"], id=task_id)["data"][
        "reconcile_task_v1"
    ]
    assert task["status"] in ("success", "failed"), task
    return task


def run(gateway: ServerThread, dry_run: bool, *organizations: dict[str, Any]) -> dict[str, Any]:
    """Submit, wait, and return the typed result."""
    answer = submit(gateway, dry_run, *organizations)
    assert "errors" not in answer, answer
    task = answer["data"]["github_owners_reconcile_v1"]
    assert task["status"] in ("pending", "running")
    assert task["kind"] == "github-owners.reconcile"
    result: dict[str, Any] = finished(gateway, task["id"])["typed_result"]
    return result


def org(name: str, *owners: str) -> dict[str, Any]:
    return {"org": name, "owners": list(owners)}


def added(result: dict[str, Any]) -> set[tuple[str, str]]:
    assert all(a["__typename"] == "GitHubOwnerAdd_v1" for a in result["actions"])
    return {(a["org"], a["login"]) for a in result["actions"]}


def events(redis_url: str, namespace: str) -> list[tuple[str, dict[str, Any]]]:
    """Every event the gateway published, as (type, payload), oldest first."""
    with redis.Redis.from_url(redis_url) as client:
        entries: Any = client.xrange(stream_keys(namespace).stream)
    return [(e.event_type, e.payload) for e in (decode_entry(fields) for _, fields in entries)]


def test_dry_run_lists_the_owners_to_add_and_writes_nothing(
    gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    result = run(gateway, True, org("app-sre", "alice", "bob", "frank"), org("openshift", "bob"))
    assert result["__typename"] == "GitHubOwnersReconcileResult_v1"
    assert result["status"] == "success"
    assert added(result) == {("app-sre", "bob"), ("app-sre", "frank"), ("openshift", "bob")}
    assert result["applied_count"] == 0
    assert emulator.total_calls(PUTS) == 0
    assert emulator.total_calls("GET /users/") == 3, "only the logins to add are looked up"
    assert emulator.total_calls("GET /orgs/app-sre/members") == 2, "admins span two pages"
    again = run(gateway, True, org("app-sre", "alice", "bob", "frank"), org("openshift", "bob"))
    assert added(again) == added(result)
    assert emulator.total_calls() == 3 + 2 + 1 + 1 + 1, "the second run is served from the cache"


def test_real_run_applies_each_once_and_a_second_run_finds_nothing(
    gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    desired = (org("app-sre", "alice", "bob", "frank"), org("openshift", "bob"))
    result = run(gateway, False, *desired)
    assert result["status"] == "success", result["errors"]
    assert result["applied_count"] == 3
    assert emulator.state.member_roles["app-sre"]["bob"] == "admin", "a member becomes admin"
    invited = {i["login"]: i["role"] for i in emulator.state.invitations["app-sre"]}
    assert invited["frank"] == "admin", "GitHub invites a login that is no member"
    assert "bob" in emulator.state.owners("openshift")
    assert emulator.total_calls(PUTS) == 3

    again = run(gateway, True, *desired)
    assert again["actions"] == [], "the owners cache was refreshed after the writes"
    repeated = run(gateway, False, *desired)
    assert repeated["applied_count"] == 0
    assert emulator.total_calls(PUTS) == 3


def test_an_unknown_login_is_a_per_action_error_and_the_rest_applies(
    gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    dry = run(gateway, True, org("app-sre", "ghost-user", "bob"))
    assert dry["status"] == "failed", "a dry run (a merge request check) catches it too"
    assert dry["errors"] == ["app-sre/ghost-user: add_owner refused: GitHub has no such login"]
    assert added(dry) == {("app-sre", "bob")}
    result = run(gateway, False, org("app-sre", "ghost-user", "bob"))
    assert result["status"] == "failed"
    assert result["errors"] == ["app-sre/ghost-user: add_owner refused: GitHub has no such login"]
    assert result["applied_count"] == 1
    assert emulator.total_calls("PUT /orgs/app-sre/memberships/ghost-user") == 0
    assert emulator.state.member_roles["app-sre"]["bob"] == "admin"


def test_a_malformed_login_is_refused_at_submission(
    gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    answer = submit(gateway, True, org("app-sre", "alice", "../orgs/x"))
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "the owners of 'app-sre'" in error["message"]
    assert "is not a GitHub login" in error["message"]
    assert github[0].total_calls() == 0


def test_an_unknown_or_repeated_org_is_refused_naming_the_configured_ones(
    gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    (unknown,) = submit(gateway, True, org("nope", "alice"))["errors"]
    assert unknown["extensions"]["code"] == "BAD_USER_INPUT"
    assert unknown["message"] == "unknown GitHub org 'nope'; configured: app-sre, openshift"
    (twice,) = submit(gateway, True, org("app-sre"), org("app-sre", "bob"))["errors"]
    assert twice["extensions"]["code"] == "BAD_USER_INPUT"
    assert "'app-sre' is listed more than once" in twice["message"]
    assert github[0].total_calls() == 0


def test_a_pending_admin_invitation_counts_as_owner_and_a_member_invitation_does_not(
    gateway: ServerThread,
) -> None:
    result = run(gateway, True, org("app-sre", "carol", "erin"))
    assert added(result) == {("app-sre", "erin")}


def test_logins_are_compared_and_deduplicated_case_insensitively(gateway: ServerThread) -> None:
    result = run(gateway, True, org("app-sre", "ALICE", "Admin007", "dave", "DAVE", "Carol"))
    assert added(result) == {("app-sre", "dave")}, "one action, in the first spelling"


def test_owners_left_out_of_the_request_are_never_removed(
    gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    before = emulator.state.owners("app-sre")
    result = run(gateway, False, org("app-sre"), org("openshift", "bob"))
    assert result["status"] == "success"
    assert emulator.state.owners("app-sre") == before
    assert emulator.state.owners("openshift") == {"alice", "bob"}
    assert {key.split(" ")[0] for key in emulator.calls} == {"GET", "PUT"}
    assert emulator.total_calls("PUT") == 1


def test_two_real_runs_on_one_org_never_apply_at_once(
    gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    emulator.slow(2.0, times=1, path_prefix="/orgs/app-sre/members")
    first = submit(gateway, False, org("app-sre", "bob"))["data"]["github_owners_reconcile_v1"]
    same = submit(gateway, False, org("app-sre", "bob"))["data"]["github_owners_reconcile_v1"]
    assert same["id"] == first["id"], "the running task is returned, not a second run"
    overlapping = submit(gateway, False, org("openshift", "bob"), org("app-sre", "frank"))
    (conflict,) = overlapping["errors"]
    assert conflict["extensions"]["code"] == "CONFLICT"
    assert conflict["extensions"]["task_id"] == first["id"]
    assert "github-owners:app-sre" in conflict["message"]
    dry = submit(gateway, True, org("app-sre", "bob"))["data"]["github_owners_reconcile_v1"]
    assert dry["id"] != first["id"], "dry runs take no lease"
    assert finished(gateway, first["id"])["typed_result"]["applied_count"] == 1
    assert emulator.total_calls(PUTS) == 1
    later = submit(gateway, False, org("openshift", "bob"), org("app-sre", "frank"))
    assert finished(gateway, later["data"]["github_owners_reconcile_v1"]["id"])["status"] == (
        "success"
    )


def test_a_real_run_publishes_one_event_per_action_and_error_with_its_request_id(
    gateway: ServerThread, redis_url: str, namespace: str
) -> None:
    token = mint_token(SECRET, "github-owners-api", ["reconcile:apply"], expires_days=1)
    variables = {"input": {"dry_run": False, "organizations": [org("app-sre", "frank", "ghost")]}}
    response = httpx.post(
        f"{gateway.url}/graphql",
        json={"query": SUBMIT, "variables": variables},
        headers={"authorization": f"Bearer {token}", "x-request-id": "req-owners-42"},
        timeout=30,
    )
    task_id = response.json()["data"]["github_owners_reconcile_v1"]["id"]
    task = finished(gateway, task_id)
    assert task["typed_result"]["status"] == "failed", "the unknown login"
    origin = {"task_id": task_id, "request_id": "req-owners-42"}
    assert events(redis_url, namespace) == [
        (
            "github-owners.error",
            {
                "org": "app-sre",
                "login": "ghost",
                "error": "app-sre/ghost: add_owner refused: GitHub has no such login",
                **origin,
            },
        ),
        (
            "github-owners.add_owner",
            {"org": "app-sre", "login": "frank", "kind": "add_owner", "state": "pending", **origin},
        ),
    ]


def test_a_dry_run_publishes_no_event(
    gateway: ServerThread, redis_url: str, namespace: str
) -> None:
    run(gateway, True, org("app-sre", "frank", "ghost"))
    assert events(redis_url, namespace) == []


def test_a_secondary_rate_limit_on_the_write_is_waited_out_and_applied_once(
    gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    emulator.fail(
        403, times=1, retry_after=1, body=SECONDARY_LIMIT, path_prefix="/orgs/app-sre/memberships"
    )
    result = run(gateway, False, org("app-sre", "bob"))
    assert result["status"] == "success", result["errors"]
    assert emulator.total_calls("PUT /orgs/app-sre/memberships/bob") == 2
    assert emulator.state.member_roles["app-sre"]["bob"] == "admin"


def test_reading_the_owners_failing_is_an_org_error_and_other_orgs_proceed(
    gateway: ServerThread, github: tuple[GitHubEmulator, ServerThread]
) -> None:
    emulator, _ = github
    emulator.fail(404, times=10, path_prefix="/orgs/openshift/invitations")
    result = run(gateway, False, org("openshift", "bob"), org("app-sre", "bob"))
    assert result["status"] == "failed"
    assert len(result["errors"]) == 1
    assert result["errors"][0].startswith("openshift: reading the current owners failed: ")
    assert added(result) == {("app-sre", "bob")}
    assert result["applied_count"] == 1


def test_the_dry_run_scope_cannot_submit_a_real_run(gateway: ServerThread) -> None:
    variables = {"input": {"dry_run": False, "organizations": [org("app-sre", "bob")]}}
    answer = call(gateway, SUBMIT, ["reconcile:dry-run"], **variables)
    assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "reconcile:apply" in answer["errors"][0]["message"]


def test_dry_run_is_the_default(gateway: ServerThread) -> None:
    document = """mutation { github_owners_reconcile_v1(
      input: {organizations: [{org: "app-sre", owners: ["bob"]}]}) { dry_run } }"""
    answer = call(gateway, document, ["reconcile:dry-run"])
    assert answer["data"]["github_owners_reconcile_v1"]["dry_run"] is True


def test_lists_beyond_the_limits_are_bad_user_input_naming_the_limit(
    gateway_factory: Callable[..., ServerThread],
    github: tuple[GitHubEmulator, ServerThread],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = {"max_list_items": 3, "max_request_items": 4}
    gateway = gateway_with(gateway_factory, github, monkeypatch, limits=limits)
    (long,) = submit(gateway, True, org("app-sre", "a", "b", "c", "d"))["errors"]
    assert long["extensions"]["code"] == "BAD_USER_INPUT"
    assert "the owners of 'app-sre' holds 4 items; the limit is 3" in long["message"]
    (wide,) = submit(gateway, True, org("app-sre", "a", "b", "c"), org("openshift", "a", "b"))[
        "errors"
    ]
    assert "limits.max_request_items" in wide["message"]
    assert github[0].total_calls() == 0
