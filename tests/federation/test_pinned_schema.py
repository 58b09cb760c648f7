"""A request pinned to an older bundle is validated and planned against that bundle's schema."""

import copy
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from gateway.federation.service import MAX_PINNED_SCHEMAS
from tests.emulators.qontract_bundle import BUNDLE_PATH, load_bundle_dict
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.support.server_thread import ServerThread

ALICE = "/teams/app-sre/users/alice.yml"


def with_user_field(name: str, value: str, root: str | None = None) -> dict[str, Any]:
    """bundle.json with one more `User_v1` field, set on alice (and users as root `root`)."""
    bundle = copy.deepcopy(load_bundle_dict(BUNDLE_PATH))
    for conf in bundle["graphql"]["confs"]:
        if conf["name"] == "User_v1":
            conf["fields"].append({"name": name, "type": "string"})
        if conf["name"] == "Query" and root is not None:
            users = next(f for f in conf["fields"] if f["name"] == "users_v1")
            conf["fields"].append({**users, "name": root})
    bundle["data"][ALICE][name] = value
    return bundle


@pytest.fixture
def old_and_latest() -> Iterator[tuple[QontractServerStandin, str, str]]:
    """The stand-in with an older bundle (`User_v1.nickname`, root `people_v1`) and the latest
    (`User_v1.pronouns`, root `humans_v1`)."""
    with QontractServerStandin() as server:
        old = server.load(with_user_field("nickname", "ali", "people_v1"))
        latest = server.load(with_user_field("pronouns", "she/her", "humans_v1"))
        yield server, old, latest


def ask(gateway: ServerThread, sha: str, query: str) -> httpx.Response:
    """`query` pinned to `sha`."""
    return httpx.post(f"{gateway.url}/graphqlsha/{sha}", json={"query": query}, timeout=30)


def alice(field: str, joined: bool) -> str:
    """alice's `field`, alone or with a gateway field (then the query is federated)."""
    extra = " gateway_info_v1 { redis_mode }" if joined else ""
    return f'{{ users_v1(org_username: "alice") {{ {field} }}{extra} }}'


def test_a_root_field_of_one_bundle_is_passed_through_pinned_to_it_only(
    old_and_latest: tuple[QontractServerStandin, str, str],
    federated_factory: Callable[..., ServerThread],
) -> None:
    """A root field only in the older bundle's schema is passed through pinned to it and refused
    by the gateway pinned to the latest; a root field only in the latest, pinned to the older
    bundle, gets qontract-server's own refusal (passed through: it validates its bundle)."""
    standin, old, latest = old_and_latest
    gateway = federated_factory(standin.url)
    for sha, served in ((old, "people_v1"), (latest, "humans_v1")):
        answer = ask(gateway, sha, f'{{ {served}(org_username: "alice") {{ name }} }}')
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-qontract-bundle-sha"] == sha
        assert answer.json()["data"] == {served: [{"name": "Alice Archer"}]}
    refusal = ask(gateway, latest, '{ people_v1(org_username: "alice") { name } }')
    assert refusal.status_code == 200
    assert refusal.json()["data"] is None
    assert "Cannot query field 'people_v1' on type 'Query'" in refusal.text
    assert refusal.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    direct = httpx.post(
        f"{standin.url}/graphqlsha/{old}",
        json={"query": '{ humans_v1(org_username: "alice") { name } }'},
        timeout=30,
    )
    through = ask(gateway, old, '{ humans_v1(org_username: "alice") { name } }')
    assert direct.status_code == through.status_code == 400
    assert through.content == direct.content
    assert 'Cannot query field \\"humans_v1\\" on type \\"Query\\"' in through.text


def test_a_joined_query_is_validated_against_the_pinned_bundles_schema(
    old_and_latest: tuple[QontractServerStandin, str, str],
    federated_factory: Callable[..., ServerThread],
) -> None:
    """With a gateway field, a `User_v1` field only in the older bundle's schema is served
    pinned to it and refused by the gateway pinned to the latest, and the reverse; the current
    merged schema is not rebuilt for it."""
    standin, old, latest = old_and_latest
    gateway = federated_factory(standin.url)
    federation = gateway.app.state.federation  # type: ignore[attr-defined]
    builds = federation.builds
    for sha, served, refused, value in (
        (old, "nickname", "pronouns", "ali"),
        (latest, "pronouns", "nickname", "she/her"),
    ):
        answer = ask(gateway, sha, alice(served, joined=True))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert "errors" not in body, body
        assert body["data"]["users_v1"] == [{served: value}]
        assert body["data"]["gateway_info_v1"]["redis_mode"]
        assert body["extensions"]["bundle_sha"] == sha
        refusal = ask(gateway, sha, alice(refused, joined=True)).json()
        assert refusal.get("data") is None, refusal
        assert f"Cannot query field '{refused}' on type 'User_v1'" in str(refusal["errors"])
        # alone, the query is passed through: qontract-server's own 400 answers it
        alone = ask(gateway, sha, alice(refused, joined=False))
        assert alone.status_code == 400
        assert "GRAPHQL_VALIDATION_FAILED" in alone.text
    assert federation.builds == builds


def test_older_schemas_are_kept_by_fingerprint_and_bounded(
    federated_factory: Callable[..., ServerThread],
) -> None:
    """Bundles sharing a schema share one merged schema; at most MAX_PINNED_SCHEMAS are kept,
    and a schema evicted is learned again when asked for."""
    with QontractServerStandin() as standin:
        shas = [standin.load(with_user_field(f"extra{i}", f"v{i}")) for i in range(6)]
        same_schema = with_user_field("extra0", "other value")
        shas.append(standin.load(same_schema))
        standin.load(with_user_field("latest", "x"))
        gateway = federated_factory(standin.url)
        federation = gateway.app.state.federation  # type: ignore[attr-defined]
        for i, sha in enumerate(shas[:6]):
            body = ask(gateway, sha, alice(f"extra{i}", joined=True)).json()
            assert body["data"]["users_v1"] == [{f"extra{i}": f"v{i}"}], body
        assert len(federation.pinned_fingerprints()) == MAX_PINNED_SCHEMAS
        assert ask(gateway, shas[6], alice("extra0", True)).json()["data"]["users_v1"] == [
            {"extra0": "other value"}
        ]  # same schema as shas[0], evicted: learned again under its fingerprint
        fingerprints = federation.pinned_fingerprints()
        assert len(fingerprints) == MAX_PINNED_SCHEMAS
        assert ask(gateway, shas[0], alice("extra0", True)).json()["data"]["users_v1"] == [
            {"extra0": "v0"}
        ]
        assert federation.pinned_fingerprints() == fingerprints
