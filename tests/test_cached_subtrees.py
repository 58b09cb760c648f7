"""Cache-hit items completed once per selection: every selection still gets exactly its own
shape, a changed value its new data, and every request its own errors and provenance."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulators.pagerduty import PagerDutyEmulator
from tests.support.gateway import gateway_settings, graphql, start_gateway
from tests.support.server_thread import ServerThread

TOKEN = "pd-subtrees-token-0001"
PLAIN = """query S($ids: [String!]!) {
  pagerduty_schedules_v1(instance: "app-sre", ids: $ids) { id users { id username } }
}"""
RESHAPED = """query S($ids: [String!]!, $withMail: Boolean!) {
  pagerduty_schedules_v1(instance: "app-sre", ids: $ids) {
    __typename
    schedule: id
    oncall: users { login: username ...Mail @include(if: $withMail) }
  }
}
fragment Mail on PagerDutyUser_v1 { email }"""
INVALIDATE = """mutation I {
  cache_invalidate_v1(system: "pagerduty", account: "app-sre", data_type: "schedule_users")
}"""
ENTITY = """query E($r: [_Any!]!) {
  _entities(representations: $r) { ... on PagerDutySchedule_v1 { id users { username } } }
}"""


@pytest.fixture
def pagerduty() -> PagerDutyEmulator:
    emulator = PagerDutyEmulator()
    emulator.state.token = TOKEN
    emulator.state.add_user("U1", "alice@example.com")
    emulator.state.add_user("U2", "bob@example.com")
    emulator.state.oncall = {"PA": ["U1"], "PB": ["U2"]}
    return emulator


@pytest.fixture
def gateway(
    pagerduty: PagerDutyEmulator, redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerThread]:
    """A gateway whose local tier keeps values for the whole test, without the result cache
    (so every request is executed)."""
    monkeypatch.setenv("QGW_TEST_PD_TOKEN", TOKEN)
    with ServerThread(pagerduty.app) as upstream:
        token = {"env": "QGW_TEST_PD_TOKEN"}
        account = {"name": "app-sre", "api_url": upstream.url, "token": token}
        settings = gateway_settings(
            redis_url,
            namespace,
            cache={"local_ttl": 600, "result_cache_entries": 0},
            upstreams={"pagerduty": [account]},
        )
        server = start_gateway(settings)
        yield server
        server.stop()


def schedules(body: dict[str, Any]) -> Any:
    assert "errors" not in body, body
    return body["data"]["pagerduty_schedules_v1"]


def test_each_selection_of_the_same_cached_schedules_gets_its_own_shape(
    gateway: ServerThread,
) -> None:
    plain = [
        {"id": "PA", "users": [{"id": "U1", "username": "alice"}]},
        {"id": "PB", "users": [{"id": "U2", "username": "bob"}]},
    ]
    with_mail = [
        {
            "__typename": "PagerDutySchedule_v1",
            "schedule": "PA",
            "oncall": [{"login": "alice", "email": "alice@example.com"}],
        },
    ]
    without_mail = [{**with_mail[0], "oncall": [{"login": "alice"}]}]
    for _ in range(2):  # the second round is served from what the first completed
        assert schedules(graphql(gateway, PLAIN, ids=["PA", "PB"])) == plain
        assert schedules(graphql(gateway, RESHAPED, ids=["PA"], withMail=True)) == with_mail
        assert schedules(graphql(gateway, RESHAPED, ids=["PA"], withMail=False)) == without_mail
        assert schedules(graphql(gateway, PLAIN, ids=["PB", "PA"])) == plain[::-1]


def test_a_changed_schedule_is_served_with_its_new_users_after_invalidation(
    gateway: ServerThread, pagerduty: PagerDutyEmulator
) -> None:
    assert schedules(graphql(gateway, PLAIN, ids=["PA"]))[0]["users"][0]["username"] == "alice"
    pagerduty.state.oncall["PA"] = ["U2"]
    assert schedules(graphql(gateway, PLAIN, ids=["PA"]))[0]["users"][0]["username"] == "alice"
    assert graphql(gateway, INVALIDATE)["data"]["cache_invalidate_v1"]
    assert schedules(graphql(gateway, PLAIN, ids=["PA"]))[0]["users"][0]["username"] == "bob"


def test_every_request_reports_its_own_errors_and_provenance(gateway: ServerThread) -> None:
    for _ in range(2):
        body = graphql(gateway, PLAIN, ids=["PA", "not a schedule id", "PB"])
        first, bad, last = body["data"]["pagerduty_schedules_v1"]
        assert (first["id"], bad, last["id"]) == ("PA", None, "PB")
        [error] = body["errors"]
        assert error["path"] == ["pagerduty_schedules_v1", 1]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        keys = [entry["key"] for entry in body["extensions"]["provenance"]]
        assert [key.rsplit(":", 1)[1] for key in keys] == ["PA", "PB"]


def test_an_entity_of_a_schedule_already_completed_in_a_list_is_resolved_as_an_entity(
    gateway: ServerThread,
) -> None:
    schedules(graphql(gateway, PLAIN, ids=["PA"]))
    representation = {"__typename": "PagerDutySchedule_v1", "instance": "app-sre", "id": "PA"}
    body = graphql(gateway, ENTITY, r=[representation])
    assert body["data"]["_entities"] == [{"id": "PA", "users": [{"username": "alice"}]}]


def test_documents_of_different_shapes_keep_their_own_shapes_when_run_again(
    gateway: ServerThread,
) -> None:
    """A document's plain selections are worked out once and reused by its later runs: each
    document still gets its own shape, whatever ran in between (fragments included)."""
    by_fragment = """query F($ids: [String!]!) {
      s: pagerduty_schedules_v1(instance: "app-sre", ids: $ids) { ...Schedule }
    }
    fragment Schedule on PagerDutySchedule_v1 { id users { ... on PagerDutyUser_v1 { email } } }"""
    expected = {
        PLAIN: {
            "pagerduty_schedules_v1": [{"id": "PB", "users": [{"id": "U2", "username": "bob"}]}]
        },
        by_fragment: {"s": [{"id": "PB", "users": [{"email": "bob@example.com"}]}]},
    }
    for _ in range(3):
        for document, data in expected.items():
            body = graphql(gateway, document, ids=["PB"])
            assert "errors" not in body, body
            assert body["data"] == data
