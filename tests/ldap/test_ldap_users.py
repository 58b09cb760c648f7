"""`LdapSource.users_exist` against a real OpenLDAP slapd that requires STARTTLS."""

import asyncio
import socket
from pathlib import Path

import ldap3
import pytest

from gateway.cache import Cached
from gateway.errors import ErrorCode, GatewayError
from reconcile_client.integrations.ldap_users_state import (
    AppInterfaceUser,
    DeletionAborted,
    users_to_delete,
)
from resolvers.ldap.source import Existence
from tests.ldap.conftest import LdapFactory
from tests.support.ldap_server import BASE_DN, EMPTY_BASE_DN, PrivateSlapd, make_certificates


def exists(answer: Existence) -> bool:
    """The answer's value, failing the test when it is an error."""
    assert isinstance(answer, Cached), answer
    return answer.value


def error(answer: Existence) -> GatewayError:
    """The answer's error, failing the test when it is a value."""
    assert isinstance(answer, GatewayError), answer
    return answer


async def test_existing_and_missing_users_are_answered_item_by_item(
    slapd: PrivateSlapd, ldap_factory: LdapFactory
) -> None:
    ldap = await ldap_factory(slapd)

    answers = await ldap.source.users_exist(["alice", "Bob", "nobody-here", "erin"])

    assert {name: exists(answer) for name, answer in answers.items()} == {
        "alice": True,
        "Bob": True,  # uid matching ignores case, as LDAP's does
        "nobody-here": False,
        "erin": False,  # a preserved user lives outside cn=users,cn=accounts
    }


async def test_answers_are_cached_per_user_so_one_more_name_is_one_search_for_it(
    slapd: PrivateSlapd, ldap_factory: LdapFactory
) -> None:
    ldap = await ldap_factory(slapd)
    first = await ldap.source.users_exist(["alice", "zoe"])
    searches = len(slapd.searches())

    second = await ldap.source.users_exist(["alice", "zoe", "carol"])

    new = slapd.searches()[searches:]
    assert new == ["(&(objectClass=person)(|(uid=carol)))"]
    assert exists(second["carol"]) is True
    assert (exists(second["alice"]), exists(second["zoe"])) == (True, False)
    assert second["alice"].lookup.outcome == "hit"  # type: ignore[union-attr]
    assert first["alice"].lookup.outcome == "miss"  # type: ignore[union-attr]


async def test_concurrent_callers_asking_for_the_same_new_name_share_one_search(
    slapd: PrivateSlapd, ldap_factory: LdapFactory
) -> None:
    ldap = await ldap_factory(slapd)
    searches = len(slapd.searches())

    answers = await asyncio.gather(*(ldap.source.users_exist(["dave", "yann"]) for _ in range(5)))

    assert [(exists(a["dave"]), exists(a["yann"])) for a in answers] == [(True, False)] * 5
    assert len(slapd.searches()[searches:]) == 1


async def test_a_batch_is_one_bind_with_one_search_per_chunk_of_names(
    slapd: PrivateSlapd, ldap_factory: LdapFactory
) -> None:
    ldap = await ldap_factory(slapd, names_per_search=2)
    searches, binds = len(slapd.searches()), slapd.binds()

    answers = await ldap.source.users_exist(["alice", "bob", "carol", "dave", "zed"])

    assert all(exists(answers[name]) for name in ("alice", "bob", "carol", "dave"))
    assert exists(answers["zed"]) is False
    assert len(slapd.searches()[searches:]) == 3
    assert slapd.binds() - binds == 1
    assert ldap.requests("users.search", "success") == 3


async def test_a_hostile_username_is_refused_alone_and_cannot_match_everyone(
    slapd: PrivateSlapd, ldap_factory: LdapFactory
) -> None:
    ldap = await ldap_factory(slapd)
    hostile = "*)(uid=*"

    answers = await ldap.source.users_exist([hostile, "alice"])
    found = await ldap.source.api.existing([hostile, "x)(objectclass=*", "*", "\\2a", "a\x00"])

    assert error(answers[hostile]).code is ErrorCode.BAD_USER_INPUT
    assert exists(answers["alice"]) is True
    assert found == set()  # even unvalidated, the name is escaped: it matches nobody
    assert slapd.searches()[-1] == (
        r"(&(objectClass=person)(|(uid=\2A\29\28uid=\2A)(uid=x\29\28objectclass=\2A)"
        r"(uid=\2A)(uid=\5C2a)(uid=a\00)))"
    )


async def test_the_server_requires_starttls_and_the_source_uses_it(
    slapd: PrivateSlapd, ldap_factory: LdapFactory
) -> None:
    plain = slapd.connection(start_tls=False)
    ldap = await ldap_factory(slapd)

    answers = await ldap.source.users_exist(["dave"])

    assert plain.result["description"] == "confidentialityRequired"
    assert exists(answers["dave"]) is True
    assert "oid=1.3.6.1.4.1.1466.20037" in slapd.log  # the StartTLS extended operation


async def test_a_server_certificate_from_another_ca_is_a_clear_upstream_error(
    slapd: PrivateSlapd, ldap_factory: LdapFactory, tmp_path: Path
) -> None:
    other = make_certificates(tmp_path)
    ldap = await ldap_factory(slapd, ca_file=other.ca)

    answers = await ldap.source.users_exist(["alice"])

    failure = error(answers["alice"])
    assert failure.code is ErrorCode.UPSTREAM_ERROR
    assert "STARTTLS failed" in failure.message


async def test_a_server_certificate_for_another_host_is_a_clear_upstream_error(
    ldap_factory: LdapFactory,
) -> None:
    with PrivateSlapd(certificate_host="ldap.other.invalid") as server:
        ldap = await ldap_factory(server)

        answers = await ldap.source.users_exist(["alice"])

    failure = error(answers["alice"])
    assert failure.code is ErrorCode.UPSTREAM_ERROR
    assert "STARTTLS failed" in failure.message


async def test_a_wrong_bind_password_is_a_clear_upstream_error_without_the_password(
    slapd: PrivateSlapd, ldap_factory: LdapFactory
) -> None:
    wrong = "not-the-password-4711"
    ldap = await ldap_factory(slapd, password=wrong)

    answers = await ldap.source.users_exist(["alice", "bob"])

    for answer in answers.values():
        failure = error(answer)
        assert failure.code is ErrorCode.UPSTREAM_ERROR
        assert "invalidCredentials" in failure.message
        assert wrong not in failure.message
        assert wrong not in str(failure.extensions)
    assert ldap.requests("bind", "invalidCredentials") == 1  # refused once, not retried


async def test_a_stopped_server_is_upstream_unavailable_then_fails_fast(
    ldap_factory: LdapFactory,
) -> None:
    with PrivateSlapd() as server:
        ldap = await ldap_factory(server, max_attempts=2)
        assert exists((await ldap.source.users_exist(["alice"]))["alice"]) is True
        server.stop()

        answers = [await ldap.source.users_exist([name]) for name in ("bob", "carol", "dave")]
        after = await ldap.source.users_exist(["erin"])

    for answer, name in zip(answers, ("bob", "carol", "dave"), strict=True):
        assert error(answer[name]).code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert "circuit open" in error(after["erin"]).message  # 6 failures opened the breaker
    breaker = ldap.runtime.metrics.registry.get_sample_value(
        "qontract_gateway_upstream_breaker_state", {"system": "ldap", "account": "main"}
    )
    assert breaker == 2


async def test_nobody_exists_is_all_false_while_a_missing_base_is_an_error(
    slapd: PrivateSlapd, ldap_factory: LdapFactory
) -> None:
    empty = await ldap_factory(slapd, base_dn=EMPTY_BASE_DN)
    missing = await ldap_factory(slapd, name="missing", base_dn="dc=missing,dc=com")

    nobody = await empty.source.users_exist(["alice", "bob"])
    broken = await missing.source.users_exist(["alice", "bob"])

    assert [exists(answer) for answer in nobody.values()] == [False, False]
    users = [AppInterfaceUser(name, f"/teams/a/users/{name}.yml") for name in nobody]
    with pytest.raises(DeletionAborted, match="none of the 2 users exist"):
        users_to_delete(users, {name: exists(answer) for name, answer in nobody.items()}, 1.0)
    for answer in broken.values():
        assert error(answer).code is ErrorCode.UPSTREAM_ERROR
        assert "does not exist" in error(answer).message


def test_the_independent_client_sees_the_same_users(slapd: PrivateSlapd) -> None:
    connection = slapd.connection(start_tls=True)
    connection.search(f"cn=users,cn=accounts,{BASE_DN}", "(objectclass=person)", attributes=["uid"])
    uids = sorted(str(entry["attributes"]["uid"][0]) for entry in connection.response or [])
    connection.unbind()
    assert uids == ["alice", "bob", "carol", "dave"]
    assert isinstance(connection, ldap3.Connection)


async def test_a_server_that_never_answers_is_a_timeout(
    slapd: PrivateSlapd, ldap_factory: LdapFactory
) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts connections; nothing ever answers on them
        port = silent.getsockname()[1]
        ldap = await ldap_factory(slapd, url=f"ldap://localhost:{port}", timeout=1, max_attempts=1)

        answers = await ldap.source.users_exist(["alice"])

    assert error(answers["alice"]).code is ErrorCode.TIMEOUT
