"""`ldap_users_v1` through the gateway's HTTP endpoint, LDAP declared as a registered system,
against a real slapd that requires STARTTLS."""

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from gateway.errors import ErrorCode
from gateway.registry import configured_accounts
from gateway.settings import InvalidSettings
from resolvers.systems import SYSTEMS
from tests.ldap.conftest import PASSWORD_VARIABLE
from tests.support.gateway import graphql
from tests.support.ldap_server import BASE_DN, BIND_DN, PrivateSlapd
from tests.support.server_thread import ServerThread

USERS = """query Users($instance: String!, $usernames: [String!]!) {
  ldap_users_v1(instance: $instance, usernames: $usernames) { username exists }
}"""


def ldap_upstream(server: PrivateSlapd, **extra: Any) -> dict[str, Any]:
    """`upstreams.ldap` with one account `main` on `server`, its password from the environment."""
    account = {
        "name": "main",
        "url": server.url,
        "base_dn": BASE_DN,
        "bind_dn": BIND_DN,
        "bind_password": {"env": PASSWORD_VARIABLE},
        "ca_file": str(server.certificates.ca),
        "timeout": 5.0,
        "connect_timeout": 2.0,
        **extra,
    }
    return {"ldap": [account]}


@pytest.fixture
def ldap_gateway(
    gateway_factory: Callable[..., ServerThread], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., ServerThread]:
    """`start(server, password=None, **account)`: a gateway whose `main` LDAP is `server`."""

    def start(server: PrivateSlapd, password: str | None = None, **extra: Any) -> ServerThread:
        monkeypatch.setenv(PASSWORD_VARIABLE, password or server.bind_password)
        return gateway_factory(upstreams=ldap_upstream(server, **extra))

    return start


def unknown_name() -> str:
    """A username nobody in the directory has, fresh for each test (the slapd is shared)."""
    return f"gone-{uuid.uuid4().hex[:10]}"


def test_existing_and_missing_users_are_answered_item_by_item_with_provenance(
    slapd: PrivateSlapd, ldap_gateway: Callable[..., ServerThread]
) -> None:
    gateway = ldap_gateway(slapd)
    missing = unknown_name()

    body = graphql(gateway, USERS, instance="main", usernames=["alice", "Bob", missing, "bad name"])

    assert body["data"]["ldap_users_v1"] == [
        {"username": "alice", "exists": True},
        {"username": "Bob", "exists": True},
        {"username": missing, "exists": False},
        None,
    ]
    [bad] = body["errors"]
    assert bad["path"] == ["ldap_users_v1", 3]
    assert bad["extensions"]["code"] == ErrorCode.BAD_USER_INPUT.value
    provenance = body["extensions"]["provenance"]
    assert sorted(p["key"].split("{ldap/main/users}:v2:value:")[1] for p in provenance) == sorted(
        ["alice", "bob", missing]
    )
    assert {p["outcome"] for p in provenance} == {"miss"}


def test_each_user_is_cached_on_its_own_so_a_longer_list_searches_only_the_new_names(
    slapd: PrivateSlapd, ldap_gateway: Callable[..., ServerThread]
) -> None:
    gateway = ldap_gateway(slapd)
    first, second = unknown_name(), unknown_name()
    before = len(slapd.searches())

    graphql(gateway, USERS, instance="main", usernames=["carol", first])
    after_first = slapd.searches()[before:]
    body = graphql(gateway, USERS, instance="main", usernames=["carol", first, "dave", second])
    after_second = slapd.searches()[before + len(after_first) :]
    again = graphql(gateway, USERS, instance="main", usernames=[second, "dave"])

    [search] = after_first
    assert "(uid=carol)" in search
    [search] = after_second  # one search, for the two new names only
    assert "(uid=dave)" in search
    assert f"(uid={second})" in search
    assert "carol" not in search
    assert first not in search
    assert [item["exists"] for item in body["data"]["ldap_users_v1"]] == [True, False, True, False]
    assert len(slapd.searches()) == before + 2  # the third request was all hits
    assert {p["outcome"] for p in again["extensions"]["provenance"]} == {"hit"}


def test_an_unknown_instance_is_bad_user_input_naming_the_configured_ones(
    slapd: PrivateSlapd, ldap_gateway: Callable[..., ServerThread]
) -> None:
    gateway = ldap_gateway(slapd)

    body = graphql(gateway, USERS, instance="elsewhere", usernames=["alice"])

    [error] = body["errors"]
    assert error["extensions"]["code"] == ErrorCode.BAD_USER_INPUT.value
    assert "unknown LDAP instance 'elsewhere'; configured: main" in error["message"]


def test_a_refused_bind_is_a_clear_upstream_error_per_user_never_exists_false(
    slapd: PrivateSlapd, ldap_gateway: Callable[..., ServerThread]
) -> None:
    wrong = "not-the-password-0815"
    gateway = ldap_gateway(slapd, password=wrong)

    body = graphql(gateway, USERS, instance="main", usernames=["alice", "bob"])

    assert body["data"]["ldap_users_v1"] == [None, None]
    assert len(body["errors"]) == 2
    for error in body["errors"]:
        assert error["extensions"]["code"] == ErrorCode.UPSTREAM_ERROR.value
        assert "the bind as" in error["message"]
        assert "invalidCredentials" in error["message"]
    assert wrong not in str(body)


def test_a_stopped_server_is_upstream_unavailable(
    ldap_gateway: Callable[..., ServerThread],
) -> None:
    with PrivateSlapd() as server:
        gateway = ldap_gateway(server, max_attempts=2)
        server.stop()

        body = graphql(gateway, USERS, instance="main", usernames=["alice"])

    assert body["data"]["ldap_users_v1"] == [None]
    [error] = body["errors"]
    assert error["extensions"]["code"] == ErrorCode.UPSTREAM_UNAVAILABLE.value
    assert "ldap account 'main'" in error["message"]


def test_too_many_usernames_are_refused_before_any_search(
    slapd: PrivateSlapd, ldap_gateway: Callable[..., ServerThread]
) -> None:
    gateway = ldap_gateway(slapd)
    before = len(slapd.searches())

    body = graphql(gateway, USERS, instance="main", usernames=["alice"] * 1001)

    [error] = body["errors"]
    assert error["extensions"]["limit"] == "limits.max_list_items"
    assert len(slapd.searches()) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": "ldaps://ipa.example.com"}, "upstreams.ldap.0.url"),
        ({"api_url": "https://x"}, "upstreams.ldap.0.api_url"),
        ({"ttl": {"groups": 5}}, "upstreams.ldap.0.ttl"),
    ],
)
def test_the_registry_validates_ldap_accounts_naming_the_field(
    slapd: PrivateSlapd, change: dict[str, Any], field: str
) -> None:
    upstreams = ldap_upstream(slapd)
    upstreams["ldap"][0].update(change)

    with pytest.raises(InvalidSettings, match=field.replace(".", r"\.")):
        configured_accounts(upstreams, SYSTEMS)
