"""qontract-server-only requests through the gateway: the same status, media type and body."""

import threading
from collections.abc import Callable, Iterator

import httpx
import pytest
import requests

from gateway.auth import mint_token
from tests.emulators.qontract_bundle import BUNDLE_PATH, BUNDLE_V2_PATH, bundle_sha
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.support.qontract_goldens import load_goldens, mismatch, replay
from tests.support.server_thread import ServerThread

GOLDENS = load_goldens()
V1, V2 = bundle_sha(BUNDLE_PATH), bundle_sha(BUNDLE_V2_PATH)
NAME = '{ users_v1(org_username: "alice") { name } }'


@pytest.fixture
def two_bundles() -> Iterator[QontractServerStandin]:
    """The stand-in with bundle.json then bundle-v2.json (the latest)."""
    with QontractServerStandin(BUNDLE_PATH, BUNDLE_V2_PATH) as server:
        yield server


def test_goldens_replayed_through_the_gateway(
    standin: QontractServerStandin,
    two_bundles: QontractServerStandin,
    federated_factory: Callable[..., ServerThread],
) -> None:
    """Every recorded exchange (/sha256, commit info, 400s, the unknown sha's HTML 404, `{}`
    dropping) answers through the gateway exactly as the real qontract-server did."""
    one = federated_factory(standin.url)
    two = federated_factory(two_bundles.url)
    problems = []
    with httpx.Client(timeout=30) as client:
        for gateway in (one, two):  # GraphiQL's page first: a GET without a query
            page = client.get(gateway.url + "/graphql", headers={"accept": "text/html"})
            assert page.status_code == 200
            assert "text/html" in page.headers["content-type"]
        for golden in GOLDENS:
            gateway = two if golden.latest_sha256 else one
            for exchange in golden.exchanges:
                problem = mismatch(replay(client, gateway.url, exchange), exchange)
                if problem is not None:
                    problems.append(f"{golden.name} ({golden.what}): {problem}")
            if golden.latest_sha256:
                assert client.get(gateway.url + "/sha256").text == golden.latest_sha256
    assert len(GOLDENS) >= 18
    assert problems == []


def test_pinning_reads_exactly_one_bundle_whichever_way_it_is_asked(
    two_bundles: QontractServerStandin, federated_factory: Callable[..., ServerThread]
) -> None:
    """Path, header or latest: the answer comes from that bundle and names its sha."""
    gateway = federated_factory(two_bundles.url)
    joined = '{ users_v1(org_username: "alice") { name } gateway_info_v1 { redis_mode } }'
    with httpx.Client(timeout=30) as client:

        def name(path: str, query: str, **headers: str) -> tuple[str, str]:
            response = client.post(gateway.url + path, json={"query": query}, headers=headers)
            body = response.json()
            sha = (
                body.get("extensions", {}).get("bundle_sha")
                or response.headers["x-qontract-bundle-sha"]
            )
            return body["data"]["users_v1"][0]["name"], sha

        assert name(f"/graphqlsha/{V1}", NAME) == ("Alice Archer", V1)
        assert name(f"/graphqlsha/{V2}", NAME) == ("Alice Archer-Smith", V2)
        assert name("/graphql", NAME, **{"X-Qontract-Bundle-Sha": V1}) == ("Alice Archer", V1)
        assert name("/graphql", NAME) == ("Alice Archer-Smith", V2)
        assert name(f"/graphqlsha/{V1}", joined) == ("Alice Archer", V1)
        assert name("/graphql", joined) == ("Alice Archer-Smith", V2)
        assert client.get(gateway.url + "/sha256").text == V2


def test_an_unknown_sha_in_a_joined_query_is_bundle_not_found(
    standin: QontractServerStandin, federated_factory: Callable[..., ServerThread]
) -> None:
    """Retried briefly (replica lag), then a clear code; a malformed sha never goes upstream."""
    gateway = federated_factory(standin.url)
    unknown = "f" * 64
    joined = "{ users_v1 { org_username } gateway_info_v1 { redis_mode } }"
    standin.reset()
    body = httpx.post(f"{gateway.url}/graphqlsha/{unknown}", json={"query": joined}).json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BUNDLE_NOT_FOUND"
    assert body["errors"][0]["extensions"]["upstream"] == "qontract-server"
    assert standin.count(f"/graphqlsha/{unknown}") >= 2
    bad = httpx.post(f"{gateway.url}/graphqlsha/not-a-sha", json={"query": NAME})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert standin.count("/graphqlsha/not-a-sha") == 0


def test_a_bundle_loaded_after_a_request_is_found_by_the_retry(
    standin: QontractServerStandin, federated_factory: Callable[..., ServerThread]
) -> None:
    """A replica that has not loaded the sha yet: the brief retry finds it once it is there."""
    gateway = federated_factory(standin.url, qontract_server={"unknown_sha_wait": 5.0})
    standin.load(BUNDLE_V2_PATH)
    standin.forget(V2)
    timer = threading.Timer(0.5, standin.load, args=(BUNDLE_V2_PATH,))
    timer.start()
    try:
        body = httpx.post(f"{gateway.url}/graphqlsha/{V2}", json={"query": NAME}, timeout=30).json()
    finally:
        timer.join()
    assert body["data"]["users_v1"][0]["name"] == "Alice Archer-Smith"


def test_qontract_reconciles_gql_flow_works_with_only_url_and_token_changed(
    standin: QontractServerStandin,
    federated_factory: Callable[..., ServerThread],
) -> None:
    """reconcile/utils/gql.py's exchanges, made as it makes them (requests, the token sent
    verbatim in Authorization): /sha256, /git-commit-info/<sha>, then /graphqlsha/<sha>."""
    secret = "federation-test-secret-0123456789abcdef"
    gateway = federated_factory(standin.url, auth={"secret": secret})
    token = "Bearer " + mint_token(secret, "qontract-reconcile", ["app-interface:read"], 1)
    headers = {"Authorization": token}
    response = requests.get(f"{gateway.url}/sha256", headers=headers, timeout=60)
    response.raise_for_status()
    sha = response.content.decode("utf-8")
    assert sha == V1
    info = requests.get(f"{gateway.url}/git-commit-info/{sha}", headers=headers, timeout=60)
    info.raise_for_status()
    assert info.json() == httpx.get(f"{standin.url}/git-commit-info/{sha}").json()
    result = requests.post(
        f"{gateway.url}/graphqlsha/{sha}",
        json={"query": NAME, "variables": None},
        headers=headers,
        timeout=30,
    ).json()
    assert result["data"] == {"users_v1": [{"name": "Alice Archer"}]}
    assert result["extensions"]["schemas"] == ["/access/user-1.yml"]


def test_service_sdl_stays_gateway_only(
    standin: QontractServerStandin, federated_factory: Callable[..., ServerThread]
) -> None:
    """The subgraph SDL never shows qontract-server's types, even from the merged schema."""
    gateway = federated_factory(standin.url)
    for path in ("/graphql", f"/graphqlsha/{V1}"):
        sdl = httpx.post(f"{gateway.url}{path}", json={"query": "{ _service { sdl } }"}).json()
        text = sdl["data"]["_service"]["sdl"]
        assert "pagerduty_schedules_v1" in text
        assert " users_v1(" not in text
        assert "PagerDutyTarget_v1" not in text
        assert "oncall_users" not in text
