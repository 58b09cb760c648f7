"""An `upstreams.ldap` account's settings, and a bind password read from Vault (a real OpenBao)."""

import uuid
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from gateway.cache import Cached
from gateway.registry import Sources
from gateway.runtime import Runtime
from gateway.settings import Settings, validation_problems
from resolvers.ldap.settings import LdapAccountSettings
from resolvers.ldap.source import LdapSource
from resolvers.systems import SYSTEMS
from tests.ldap.conftest import ldap_account
from tests.support.ldap_server import BASE_DN, BIND_DN, PrivateSlapd
from tests.support.openbao import PrivateOpenBao
from tests.vault.conftest import approle_account

ACCOUNT = {
    "name": "ipa",
    "url": "ldap://ipa.example.com:389",
    "base_dn": BASE_DN,
    "bind_dn": BIND_DN,
    "bind_password": {"vault": {"instance": "main", "path": "app-sre/ldap", "field": "pw"}},
}


@pytest.fixture(scope="module")
def openbao() -> Iterator[PrivateOpenBao]:
    """A `bao server -dev` for this module's Vault test."""
    with PrivateOpenBao() as server:
        yield server


def test_an_account_takes_a_credential_reference_and_names_its_users_container() -> None:
    account = LdapAccountSettings.model_validate(ACCOUNT)

    assert account.bind_password.vault is not None
    assert account.users_dn == f"cn=users,cn=accounts,{BASE_DN}"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"url": "ldaps://ipa.example.com"}, "upstreams.ldap.0.url"),
        ({"url": "ldap://ipa.example.com/dc=x??sub"}, "upstreams.ldap.0.url"),
        ({"base_dn": "not a dn"}, "upstreams.ldap.0.base_dn"),
        ({"bind_password": "hunter2-plain"}, "upstreams.ldap.0.bind_password"),
        ({"names_per_search": 100_000}, "upstreams.ldap.0.names_per_search"),
    ],
)
def test_bad_accounts_are_refused_naming_the_field_never_the_value(
    change: dict[str, object], problem: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        LdapAccountSettings.model_validate({**ACCOUNT, **change})

    problems = validation_problems(refused.value, "upstreams.ldap.0")
    assert problem in problems
    for value in change.values():
        assert str(value) not in problems


async def test_the_bind_password_may_come_from_vault_through_the_registry(
    slapd: PrivateSlapd,
    openbao: PrivateOpenBao,
    redis_url: str,
    namespace: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = f"ldap-{uuid.uuid4().hex[:8]}"
    openbao.kv2_put(path, {"bind_password": slapd.bind_password})
    vault = approle_account(openbao, openbao.approle(f"role-{path}"), monkeypatch)
    reference = {"instance": "main", "path": f"secret/{path}", "field": "bind_password"}
    ldap = ldap_account(slapd, bind_password={"vault": reference}).model_dump(mode="json")
    runtime = Runtime.create(
        Settings(
            redis={"url": redis_url, "namespace": namespace},
            upstreams={"vault": [vault], "ldap": [ldap]},
        )
    )
    sources = Sources.create(runtime, SYSTEMS)
    try:
        await sources.start()  # logs in to Vault and reads the bind password once
        answers = await sources.get(LdapSource, "main").users_exist(["alice"])
    finally:
        await sources.aclose()
        await runtime.aclose()

    assert isinstance(answers["alice"], Cached)
    assert answers["alice"].value is True
