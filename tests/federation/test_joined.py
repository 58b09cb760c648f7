"""Joined queries: app-interface desired state and live data in one request, one bundle sha."""

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.emulators.qontract_bundle import GOLDENS_DIR
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.federation.conftest import Servers, post
from tests.support.server_thread import ServerThread

GOLDEN = json.loads((GOLDENS_DIR / "03-desired-state.json").read_text())
DESIRED = GOLDEN["request"]["json"]["query"]
SHA = GOLDEN["request"]["path"].rsplit("/", 1)[1]
JOINED = DESIRED.replace(
    "escalationPolicyID\n", "escalationPolicyID\n        oncall_users { username email }\n", 1
).replace("ownersFromRepos\n", "ownersFromRepos\n      repo_owners { approvers reviewers }\n", 1)


def without(data: Any, names: set[str]) -> Any:
    """`data` with the keys `names` removed at every level."""
    if isinstance(data, dict):
        return {k: without(v, names) for k, v in data.items() if k not in names}
    if isinstance(data, list):
        return [without(item, names) for item in data]
    return data


def test_joined_query_equals_the_two_round_trip_flow(joined: Servers) -> None:
    """Desired state byte for byte as qontract-server answers it, live values as the gateway's
    own fields answer them for the same keys; one qontract-server request, pinned."""
    gateway, standin, _, _ = joined
    standin.reset()
    body = post(gateway.url, JOINED, path=f"/graphqlsha/{SHA}")
    assert "errors" not in body, body["errors"][:3]
    assert standin.count("/graphqlsha/") == 1
    assert standin.count(f"/graphqlsha/{SHA}") == 1
    assert gateway.app.state.federation.decoded == 0  # type: ignore[attr-defined]  # as text
    assert body["extensions"]["bundle_sha"] == SHA
    assert body["extensions"]["schemas"] == GOLDEN["response"]["body"]["extensions"]["schemas"]
    # first round trip: qontract-server alone
    assert (
        without(body["data"], {"oncall_users", "repo_owners"}) == GOLDEN["response"]["body"]["data"]
    )
    # second round trip: the gateway's own fields for every key the desired state names
    schedules: dict[tuple[str, str], Any] = {}
    owners: dict[str, Any] = {}
    for permission in body["data"]["permissions"]:
        for target in permission.get("pagerduty") or []:
            kind = "s" if target["scheduleID"] else "p"
            ident = target["scheduleID"] or target["escalationPolicyID"]
            schedules[(kind, ident)] = target["oncall_users"]
        for entry, value in zip(
            permission.get("ownersFromRepos") or [],
            permission.get("repo_owners") or [],
            strict=True,
        ):
            owners[entry] = value
    assert schedules
    assert owners
    ids_s = sorted(i for k, i in schedules if k == "s")
    ids_p = sorted(i for k, i in schedules if k == "p")
    repos = sorted(owners)
    owner_fields = "\n".join(
        f'o{n}: vcs_owners_v1(repo_url: "{url}") {{ approvers reviewers }}'
        for n, url in enumerate(repos)
    )
    lookups = post(
        gateway.url,
        f"""query L($s: [String!]!, $p: [String!]!) {{
          s: pagerduty_schedules_v1(instance: "app-sre", ids: $s) {{
            id users {{ username email }} }}
          p: pagerduty_escalation_policies_v1(instance: "app-sre", ids: $p) {{
            id users {{ username email }} }}
          {owner_fields}
        }}""",
        s=ids_s,
        p=ids_p,
    )["data"]
    for item in lookups["s"]:
        assert schedules[("s", item["id"])] == item["users"]
    for item in lookups["p"]:
        assert schedules[("p", item["id"])] == item["users"]
    assert owners == {url: lookups[f"o{n}"] for n, url in enumerate(repos)}
    reconcile = owners["https://github.com/app-sre/qontract-reconcile"]
    assert reconcile == {"approvers": ["alice", "carol"], "reviewers": ["dave"]}
    assert schedules[("s", "PSCHED1")] == [
        {"username": "alice", "email": "alice@example.com"},
        {"username": "bob", "email": "bob@example.com"},
    ]


def test_a_repeated_pinned_query_makes_no_upstream_call(joined: Servers) -> None:
    """qontract-server's answer for (sha, document, variables) is exact: reused, not refetched."""
    gateway, standin, pagerduty, _ = joined
    first = post(gateway.url, JOINED, path=f"/graphqlsha/{SHA}")
    standin.reset()
    pagerduty.reset()
    again = post(gateway.url, JOINED, path=f"/graphqlsha/{SHA}")
    assert again["data"] == first["data"]
    assert again["extensions"]["schemas"] == first["extensions"]["schemas"]
    assert {p["outcome"] for p in again["extensions"]["provenance"]} == {"hit"}
    assert standin.count("/graphqlsha/") == 0
    assert pagerduty.total_calls() == 0


def test_one_fetch_per_pinned_answer_across_replicas(
    standin: QontractServerStandin, federated_factory: Callable[..., ServerThread]
) -> None:
    """Two replicas asked the same pinned query at once: qontract-server answers it once."""
    replicas = [federated_factory(standin.url) for _ in range(2)]
    standin.reset()
    standin.delay_seconds = 0.5
    query = '{ users_v1(org_username: "carol") { name } }'
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            bodies = list(
                pool.map(
                    lambda n: post(replicas[n % 2].url, query, path=f"/graphqlsha/{SHA}"),
                    range(8),
                )
            )
    finally:
        standin.delay_seconds = 0
    assert all(body == bodies[0] for body in bodies)
    assert standin.count(f"/graphqlsha/{SHA}") == 1


def test_an_error_in_a_live_value_is_placed_at_its_path(
    standin: QontractServerStandin, federated_factory: Callable[..., ServerThread]
) -> None:
    """A live value with an error needs its path, which only the decoded answer gives: the
    answer is decoded (once) and the error sits at the caller's path, the rest served."""
    gateway = federated_factory(standin.url)
    federation = gateway.app.state.federation  # type: ignore[attr-defined]
    body = post(
        gateway.url,
        '{ users_v1(org_username: "carol") { name slack_user(workspace: "nope") { id } } }',
        path=f"/graphqlsha/{SHA}",
    )
    assert body["data"] == {"users_v1": [{"name": "Carol Chen", "slack_user": None}]}
    assert [e["path"] for e in body["errors"]] == [["users_v1", 0, "slack_user"]]
    assert federation.decoded == 1
