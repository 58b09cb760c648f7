"""One qontract-server request and one upstream batch per (account, kind), whatever the parents."""

from collections.abc import Callable, Iterator

import pytest

from tests.emulators.pagerduty import PagerDutyEmulator
from tests.emulators.qontract_bundle import scaled_bundle
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.federation.conftest import pagerduty_state, post
from tests.support.server_thread import ServerThread

QUERY = """{ permissions_v1 { ... on PermissionSlackUsergroup_v1 {
  handle pagerduty { name instance { name } scheduleID escalationPolicyID
    oncall_users { username } } } } }"""


@pytest.fixture
def scaled() -> Iterator[QontractServerStandin]:
    """120 PagerDuty targets over `scaled-pd-0` and `scaled-pd-1`, used by 300 usergroups."""
    bundle = scaled_bundle(users=300, roles=60, usergroups=300, pagerduty_targets=120)
    with QontractServerStandin(bundle) as server:
        yield server


@pytest.fixture
def instances() -> Iterator[list[tuple[PagerDutyEmulator, ServerThread]]]:
    """PagerDuty emulators for the two scaled instances and the bundle's own `app-sre`."""
    started = []
    for n in range(3):
        emulator = PagerDutyEmulator()
        pagerduty_state(emulator, prefix=f"I{n}")
        started.append((emulator, ServerThread(emulator.app).start()))
    yield started
    for _, server in started:
        server.stop()


def test_one_qontract_server_request_and_one_fetch_per_key_across_two_instances(
    scaled: QontractServerStandin,
    instances: list[tuple[PagerDutyEmulator, ServerThread]],
    federated_factory: Callable[..., ServerThread],
) -> None:
    """≥ 100 targets in two instances: the desired state is fetched once, every schedule and
    policy of each instance once, in that instance's account; a repeat asks nothing again."""
    names = ["scaled-pd-0", "scaled-pd-1", "app-sre"]
    gateway = federated_factory(
        scaled.url, {name: server.url for name, (_, server) in zip(names, instances, strict=True)}
    )
    scaled.reset()
    body = post(gateway.url, QUERY)
    assert "errors" not in body, body["errors"][:3]
    assert scaled.count("/graphqlsha/") == 1
    targets = [
        t
        for p in body["data"]["permissions_v1"]
        if p
        for t in p.get("pagerduty") or []
        if t["instance"]["name"].startswith("scaled-pd-")
    ]
    assert len({t["name"] for t in targets}) >= 100
    wanted: dict[tuple[int, str], set[str]] = {}
    for target in targets:
        n = int(target["instance"]["name"].rsplit("-", 1)[1])
        if target["scheduleID"]:
            wanted.setdefault((n, "schedules"), set()).add(target["scheduleID"])
            assert target["oncall_users"] == [{"username": "alice"}]
        else:
            wanted.setdefault((n, "escalation_policies"), set()).add(target["escalationPolicyID"])
            assert target["oncall_users"] == [{"username": "carol"}]
    for (n, kind), ids in wanted.items():
        emulator = instances[n][0]
        for ident in ids:
            assert emulator.total_calls(f"GET /{kind}/{ident}") == 1, (n, kind, ident)
        assert emulator.total_calls(f"GET /{kind}/") == len(ids)
    for emulator, _ in instances:
        emulator.reset()
    scaled.reset()
    again = post(gateway.url, QUERY)
    assert again["data"] == body["data"]
    assert scaled.count("/graphqlsha/") == 0
    assert sum(emulator.total_calls() for emulator, _ in instances) == 0
