"""qontract-server down, restarted, reloaded: the gateway degrades, recovers and refreshes."""

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.emulators.qontract_bundle import BUNDLE_PATH, bundle_sha, load_bundle_dict
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.federation.conftest import post
from tests.support.server_thread import ServerThread
from tests.support.wait import wait_until

SHA = bundle_sha(BUNDLE_PATH)
NAME = '{ users_v1(org_username: "alice") { name } }'
JOINED = '{ users_v1(org_username: "bob") { name } gateway_info_v1 { redis_mode } }'
INFO = "{ gateway_info_v1 { redis_mode } }"


def readiness(gateway: ServerThread) -> dict[str, Any]:
    """The /readyz answer, which must stay 200."""
    response = httpx.get(f"{gateway.url}/readyz")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def code_of(body: dict[str, Any]) -> tuple[str, str | None]:
    """The first error's code and upstream."""
    extensions = body["errors"][0]["extensions"]
    return extensions["code"], extensions.get("upstream")


def test_qontract_server_down_then_back(
    standin: QontractServerStandin, federated_factory: Callable[..., ServerThread]
) -> None:
    """Down: gateway fields work, qontract-server fields fail fast with UPSTREAM_UNAVAILABLE
    naming it, pinned answers already cached are served, /readyz names it; then all recovers."""
    gateway = federated_factory(standin.url)
    pinned = post(gateway.url, NAME, path=f"/graphqlsha/{SHA}")
    assert pinned["data"]["users_v1"] == [{"name": "Alice Archer"}]
    standin.go_down("refuse")
    wait_until(lambda: "degraded" in readiness(gateway), 20, "readiness to name the outage")
    assert "qontract-server" in readiness(gateway)["degraded"]
    assert post(gateway.url, INFO)["data"]["gateway_info_v1"]["redis_mode"]
    for query in (NAME, JOINED):
        started = time.monotonic()
        body = post(gateway.url, query)
        assert code_of(body) == ("UPSTREAM_UNAVAILABLE", "qontract-server"), body
        assert time.monotonic() - started < 15
    assert post(gateway.url, NAME, path=f"/graphqlsha/{SHA}") == pinned
    standin.come_up()
    wait_until(lambda: "degraded" not in readiness(gateway), 30, "readiness to recover")
    wait_until(lambda: "errors" not in post(gateway.url, JOINED), 30, "joined queries to recover")
    assert post(gateway.url, NAME)["data"]["users_v1"] == [{"name": "Alice Archer"}]


def test_start_up_without_qontract_server(
    standin: QontractServerStandin, federated_factory: Callable[..., ServerThread]
) -> None:
    """Never seen: the gateway-only schema serves, qontract-server fields are unavailable,
    and it federates by itself once qontract-server answers. Seen before (by a replica, in
    Redis): the last schema and cached pinned answers serve at once."""
    standin.go_down("refuse")
    alone = federated_factory(standin.url)
    assert post(alone.url, INFO)["data"]["gateway_info_v1"]["redis_mode"]
    assert code_of(post(alone.url, NAME)) == ("UPSTREAM_UNAVAILABLE", "qontract-server")
    standin.come_up()
    wait_until(lambda: "errors" not in post(alone.url, JOINED), 30, "federation to start")
    pinned = post(alone.url, NAME, path=f"/graphqlsha/{SHA}")
    alone.stop()
    standin.go_down("refuse")
    later = federated_factory(standin.url)
    assert post(later.url, NAME, path=f"/graphqlsha/{SHA}") == pinned
    fields = post(later.url, '{ __type(name: "User_v1") { fields { name } } }')
    assert "slack_user" in {f["name"] for f in fields["data"]["__type"]["fields"]}


def test_a_new_field_is_queryable_after_a_reload_and_data_reloads_do_not_rebuild(
    standin: QontractServerStandin, federated_factory: Callable[..., ServerThread]
) -> None:
    """A schema change (a new field in the bundle's graphql section) is served within a poll
    interval; a data-only change is a new sha with the same fingerprint: no rebuild."""
    gateway = federated_factory(standin.url)
    federation = gateway.app.state.federation  # type: ignore[attr-defined]
    builds = federation.builds
    data_only = load_bundle_dict(BUNDLE_PATH)
    data_only["data"]["/teams/app-sre/users/alice.yml"]["name"] = "Alice Data"
    data_sha = standin.load(data_only)
    wait_until(
        lambda: post(gateway.url, NAME)["data"]["users_v1"] == [{"name": "Alice Data"}],
        10,
        "the new data",
    )
    assert post(gateway.url, JOINED)["extensions"]["bundle_sha"] == data_sha
    wait_until(lambda: federation.sha == data_sha, 10, "the poller to read the new sha")
    assert federation.builds == builds
    with_field = copy.deepcopy(data_only)
    for conf in with_field["graphql"]["confs"]:
        if conf["name"] == "User_v1":
            conf["fields"].append({"name": "nickname", "type": "string"})
    with_field["data"]["/teams/app-sre/users/alice.yml"]["nickname"] = "ali"
    standin.load(with_field)
    query = '{ users_v1(org_username: "alice") { nickname } gateway_info_v1 { redis_mode } }'
    wait_until(lambda: "errors" not in post(gateway.url, query), 10, "the new field")
    assert post(gateway.url, query)["data"]["users_v1"] == [{"nickname": "ali"}]
    assert federation.builds == builds + 1


def test_qontract_server_killed_and_restarted_under_load(
    standin: QontractServerStandin, federated_factory: Callable[..., ServerThread]
) -> None:
    """Requests keep coming while qontract-server dies and comes back: every answer is data
    or UPSTREAM_UNAVAILABLE (never a 5xx or INTERNAL), gateway fields never fail, and the
    gateway serves app-interface again by itself."""
    gateway = federated_factory(standin.url)
    stop = threading.Event()
    outcomes: list[str] = []
    gateway_only: list[str] = []

    def load(query: str) -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                response = client.post(f"{gateway.url}/graphql", json={"query": query})
                if response.status_code != 200:
                    outcomes.append(f"HTTP {response.status_code}")
                    continue
                body = response.json()
                outcome = body["errors"][0]["extensions"]["code"] if "errors" in body else "ok"
                (gateway_only if query == INFO else outcomes).append(outcome)

    workers = [
        threading.Thread(target=load, args=(query,)) for query in (NAME, JOINED, INFO, JOINED)
    ]
    for worker in workers:
        worker.start()
    try:
        wait_until(lambda: outcomes.count("ok") >= 20, 20, "load before the outage")
        standin.go_down("refuse")
        wait_until(lambda: "UPSTREAM_UNAVAILABLE" in outcomes, 20, "the outage to be seen")
        standin.come_up()
        seen = len(outcomes)
        wait_until(lambda: outcomes[seen:].count("ok") >= 20, 30, "recovery under load")
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert set(outcomes) <= {"ok", "UPSTREAM_UNAVAILABLE"}, set(outcomes)
    assert gateway_only
    assert set(gateway_only) == {"ok"}


def test_a_hung_qontract_server_does_not_hold_start_up(
    standin: QontractServerStandin, federated_factory: Callable[..., ServerThread]
) -> None:
    """qontract-server accepts but never answers in time: the gateway starts anyway (bounded
    wait), serves its own fields, and names the degraded upstream."""
    standin.delay_seconds = 25
    try:
        started = time.monotonic()
        gateway = federated_factory(standin.url, qontract_server={"timeout": 20})
        assert time.monotonic() - started < 20
        assert post(gateway.url, INFO)["data"]["gateway_info_v1"]["redis_mode"]
        assert "qontract-server" in readiness(gateway)["degraded"]
    finally:
        standin.delay_seconds = 0
