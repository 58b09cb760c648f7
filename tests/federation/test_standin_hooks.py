"""The qontract-server stand-in's test hooks and the real-server rules no golden records."""

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from graphql import get_introspection_query

from tests.emulators.qontract_bundle import (
    BUNDLE_PATH,
    Bundle,
    add_datafile,
    bundle_sha,
    load_bundle_dict,
    ref,
    scaled_bundle,
)
from tests.emulators.qontract_server_standin import BODY_LIMIT, QontractServerStandin
from tests.support.wait import wait_until

ALICE = '{ users_v1(org_username: "alice") { name } }'


@pytest.fixture
def standin() -> Iterator[QontractServerStandin]:
    """A fresh stand-in serving the recorded bundle.json."""
    with QontractServerStandin() as server:
        yield server


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """An HTTP client for the stand-in."""
    with httpx.Client(timeout=30) as http:
        yield http


def renamed_alice(name: str) -> dict[str, Any]:
    """bundle.json with alice's name changed: same schema, another sha."""
    bundle = load_bundle_dict()
    bundle["data"]["/teams/app-sre/users/alice.yml"]["name"] = name
    return bundle


def alice_name(client: httpx.Client, url: str) -> Any:
    """Alice's name as the endpoint at `url` answers it."""
    answer = client.post(url, json={"query": ALICE})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]["users_v1"][0]["name"]


def test_load_makes_a_new_latest_and_old_shas_stay_pinned(
    standin: QontractServerStandin, client: httpx.Client
) -> None:
    """After a load, /sha256 and /graphql move to the new bundle; the old sha still answers."""
    old = client.get(standin.url + "/sha256").text
    bundle = renamed_alice("Alice Renamed")
    new = standin.load(bundle)
    assert new == bundle_sha(bundle) != old
    assert client.get(standin.url + "/sha256").text == new
    assert alice_name(client, standin.graphql_url) == "Alice Renamed"
    assert alice_name(client, f"{standin.url}/graphqlsha/{new}") == "Alice Renamed"
    assert alice_name(client, f"{standin.url}/graphqlsha/{old}") == "Alice Archer"
    info = client.get(f"{standin.url}/git-commit-info/{new}")
    assert info.json() == {"commit": bundle["git_commit"], "timestamp": "1767225600"}


def test_loading_a_known_sha_again_does_not_change_the_latest(
    standin: QontractServerStandin, client: httpx.Client
) -> None:
    """As the real /reload: data already loaded is skipped, the latest stays."""
    newer = standin.load(renamed_alice("Alice Newer"))
    assert standin.load(BUNDLE_PATH) == bundle_sha(BUNDLE_PATH)
    assert client.get(standin.url + "/sha256").text == newer


def test_a_forgotten_or_expired_sha_is_expresss_404(client: httpx.Client) -> None:
    """forget() and the sha TTL make a pinned sha unknown: the HTML 404, not JSON."""
    with QontractServerStandin(sha_ttl_seconds=0) as standin:
        first = standin.latest_sha
        second = standin.load(renamed_alice("Second"))
        third = standin.load(renamed_alice("Third"))
        assert standin.shas == [second, third]
        answer = client.post(f"{standin.url}/graphqlsha/{first}", json={"query": ALICE})
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")
        assert f"<pre>Cannot POST /graphqlsha/{first}</pre>" in answer.text
        standin.forget(second)
        assert client.post(f"{standin.url}/graphqlsha/{second}", json={}).status_code == 404
        assert client.get(f"{standin.url}/git-commit-info/{second}").text == (
            f"Bundle {second} not found"
        )


def test_go_down_refuses_or_answers_503_and_come_up_recovers(
    standin: QontractServerStandin, client: httpx.Client
) -> None:
    """Both outage modes are what a client sees from a dead server or a failing router."""
    standin.go_down("refuse")
    with pytest.raises(httpx.ConnectError):
        client.get(standin.url + "/sha256")
    standin.come_up()
    assert client.get(standin.url + "/sha256").text == standin.latest_sha
    standin.go_down("503")
    assert client.post(standin.graphql_url, json={"query": ALICE}).status_code == 503
    standin.come_up()
    assert alice_name(client, standin.graphql_url) == "Alice Archer"


def test_kill_drops_answers_in_flight_and_come_up_recovers(
    standin: QontractServerStandin, client: httpx.Client
) -> None:
    """A killed server resets the connection of a request it was answering, then refuses."""
    standin.delay_seconds = 30
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(client.get(standin.url + "/sha256").status_code)
        except httpx.TransportError as error:
            outcome.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    wait_until(lambda: standin.count("/sha256") == 1, 10, "the request to reach the stand-in")
    standin.go_down("kill")
    caller.join(timeout=15)
    assert not caller.is_alive(), "the request in flight was not dropped"
    assert isinstance(outcome[0], httpx.RemoteProtocolError | httpx.ReadError)
    with pytest.raises(httpx.ConnectError), httpx.Client() as fresh:
        fresh.get(standin.url + "/sha256")
    standin.delay_seconds = 0
    standin.come_up()
    assert client.get(standin.url + "/sha256").text == standin.latest_sha


def test_requests_are_counted_per_path_and_logged(
    standin: QontractServerStandin, client: httpx.Client
) -> None:
    """count() is exact per path prefix and method; the log keeps headers and bodies."""
    client.get(standin.url + "/sha256")
    for _ in range(3):
        client.post(
            f"{standin.url}/graphqlsha/{standin.latest_sha}",
            json={"query": ALICE},
            headers={"authorization": "verbatim-token"},
        )
    client.post(standin.graphql_url, json={"query": ALICE})
    assert standin.count() == 5
    assert standin.count("/graphqlsha/") == 3
    assert standin.count("/graphql", method="POST") == 4
    assert standin.count("/sha256", method="POST") == 0
    logged = standin.graphql_requests()
    assert [r.path for r in logged][-1] == "/graphql"
    assert logged[0].json() == {"query": ALICE}
    assert logged[0].headers["authorization"] == "verbatim-token"
    standin.reset()
    assert standin.count() == 0
    assert standin.requests == []


def test_delay_seconds_delays_every_answer(
    standin: QontractServerStandin, client: httpx.Client
) -> None:
    """An artificial delay holds each answer at least that long."""
    standin.delay_seconds = 0.3
    started = time.monotonic()
    assert client.get(standin.url + "/sha256").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_bodies_above_100_kb_are_refused_with_413(
    standin: QontractServerStandin, client: httpx.Client
) -> None:
    """Express's JSON body limit: 413 and its HTML page above 100 kB, parsed at the limit."""
    query = b'{"query":"{ users_v1 { name } }'
    at_limit = query + b" " * (BODY_LIMIT - len(query) - 2) + b'"}'
    over = b'{"query":"' + b" " * BODY_LIMIT + b'"}'
    json_type = {"content-type": "application/json"}
    refused = client.post(standin.graphql_url, content=over, headers=json_type)
    assert refused.status_code == 413
    assert "<pre>Payload Too Large</pre>" in refused.text
    assert len(at_limit) == BODY_LIMIT
    accepted = client.post(standin.graphql_url, content=at_limit, headers=json_type)
    assert accepted.status_code == 200, accepted.text


def test_request_errors_have_apollos_shapes(
    standin: QontractServerStandin, client: httpx.Client
) -> None:
    """Parse errors, an empty body and a malformed one answer as Apollo and Express do."""
    parse_error = client.post(standin.graphql_url, json={"query": "{ users_v1 {"})
    assert parse_error.status_code == 400
    assert parse_error.json()["errors"][0]["extensions"] == {"code": "GRAPHQL_PARSE_FAILED"}
    empty = client.post(standin.graphql_url, json={})
    assert empty.status_code == 400
    assert empty.json()["errors"][0]["extensions"] == {"code": "BAD_REQUEST"}
    malformed = client.post(
        standin.graphql_url, content=b"{nope", headers={"content-type": "application/json"}
    )
    assert (malformed.status_code, malformed.headers["content-type"][:9]) == (400, "text/html")


def test_nested_filters_follow_references_as_the_real_server_does(
    standin: QontractServerStandin, client: httpx.Client
) -> None:
    """`{in}` under a nested filter walks a list of references; a bare value on a list never
    matches (qontract-server's own tests state both)."""
    query = "query F($f: JSON) { users_v1(filter: $f) { org_username } }"
    nested_in = {"roles": {"filter": {"name": {"in": ["backend"]}}}}
    nested_eq = {"roles": {"filter": {"name": "backend"}}}
    found = client.post(standin.graphql_url, json={"query": query, "variables": {"f": nested_in}})
    assert [u["org_username"] for u in found.json()["data"]["users_v1"]] == ["dave", "erin"]
    none = client.post(standin.graphql_url, json={"query": query, "variables": {"f": nested_eq}})
    assert none.json()["data"]["users_v1"] == []


def test_scaled_bundle_has_the_requested_size_and_is_served(client: httpx.Client) -> None:
    """The generator gives 3,000 users and 120 targets over 2 PagerDuty instances, reproducibly."""
    bundle = scaled_bundle(users=3000, pagerduty_targets=120, pagerduty_instances=2)
    assert bundle_sha(bundle) == bundle_sha(scaled_bundle())
    loaded = Bundle.load(bundle)
    targets = [
        t
        for t in loaded.by_schema["/dependencies/pagerduty-target-1.yml"]
        if t["path"].startswith("/scaled/")
    ]
    assert len(targets) == 120
    assert {t["instance"]["$ref"] for t in targets} == {
        "/scaled/pagerduty/instances/pd0.yml",
        "/scaled/pagerduty/instances/pd1.yml",
    }
    with QontractServerStandin(bundle) as standin:
        answer = client.post(
            standin.graphql_url,
            json={"query": "{ pagerduty_instances_v1 { name } users_v1 { path } }"},
        )
    data = answer.json()["data"]
    assert len(data["users_v1"]) == 3000 + 306
    assert [i["name"] for i in data["pagerduty_instances_v1"]] == [
        "app-sre",
        "scaled-pd-0",
        "scaled-pd-1",
    ]


def test_add_datafile_adds_a_queryable_datafile(client: httpx.Client) -> None:
    """A datafile added with add_datafile is served with its references and back-references."""
    bundle = load_bundle_dict()
    add_datafile(
        bundle,
        "/teams/new/users/zed.yml",
        "/access/user-1.yml",
        name="Zed",
        org_username="zed",
        github_username="zed-gh",
        roles=[ref("/teams/app-sre/roles/app-sre.yml")],
    )
    with QontractServerStandin(bundle) as standin:
        answer = client.post(
            standin.graphql_url,
            json={"query": '{ roles_v1(name: "app-sre") { users { org_username } } }'},
        )
    users = [u["org_username"] for u in answer.json()["data"]["roles_v1"][0]["users"]]
    assert users == ["alice", "bob", "carol", "zed"]


def test_repeated_introspection_answers_are_identical_and_counted(
    standin: QontractServerStandin, client: httpx.Client
) -> None:
    """Introspection kept per bundle still reaches the server (counted) with the same bytes."""
    request = {"query": get_introspection_query()}
    first = client.post(standin.graphql_url, json=request)
    second = client.post(f"{standin.url}/graphqlsha/{standin.latest_sha}", json=request)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    assert first.json()["data"]["__schema"]["queryType"] == {"kind": "OBJECT", "name": "Query"}
    assert standin.count("/graphql") == 2


FILTERED = "query Q($f: JSON!) { users_v1(filter: $f) { path } }"
BY_NAME = "query Q($n: String) { users_v1(org_username: $n) { path } }"


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        (FILTERED, {}, 'Variable "$f" of required type "JSON!" was not provided.'),
        (FILTERED, {"f": None}, 'Variable "$f" of non-null type "JSON!" must not be null.'),
        (
            BY_NAME,
            {"n": ["a", 3]},
            'Variable "$n" got invalid value ["a", 3]; '
            'String cannot represent a non string value: ["a", 3]',
        ),
    ],
)
def test_bad_variables_are_graphql_js_messages_with_bad_user_input(
    standin: QontractServerStandin,
    client: httpx.Client,
    query: str,
    variables: dict[str, Any],
    message: str,
) -> None:
    """Variable coercion errors: HTTP 400, BAD_USER_INPUT, graphql-js 16's wording."""
    answer = client.post(standin.graphql_url, json={"query": query, "variables": variables})
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {
            "message": message,
            "locations": [{"line": 1, "column": 9}],
            "extensions": {"code": "BAD_USER_INPUT"},
        }
    ]
