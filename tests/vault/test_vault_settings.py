"""Vault settings and credential references: refused at start-up naming the field, never a value."""

from typing import Any

import pytest

from gateway.registry import configured_accounts
from gateway.settings import InvalidSettings, Settings, load_settings
from resolvers.systems import SYSTEMS
from resolvers.vault.system import SYSTEM as VAULT


def test_a_credential_names_exactly_one_of_env_file_or_vault() -> None:
    both = {"env": "PD_TOKEN", "vault": {"instance": "main", "path": "a/b", "field": "token"}}
    account = {"name": "app-sre", "api_url": "http://127.0.0.1:9", "token": both}

    with pytest.raises(ValueError, match="exactly one of `env`, `file` or `vault`"):
        configured_accounts(Settings(upstreams={"pagerduty": [account]}).upstreams, SYSTEMS)


@pytest.mark.parametrize(
    ("reference", "field"),
    [
        ({"instance": "main", "path": "../etc", "field": "token"}, "token.vault.path"),
        ({"instance": "main", "path": "a/b", "field": ""}, "token.vault.field"),
        ({"instance": "main", "path": "a/b", "field": "t", "version": 0}, "token.vault.version"),
        ({"instance": "main", "path": "a/b", "field": "t", "value": "x"}, "token.vault.value"),
    ],
)
def test_a_bad_vault_reference_is_refused_naming_its_field(
    reference: dict[str, Any], field: str, tmp_path: Any
) -> None:
    account = {"name": "app-sre", "api_url": "http://127.0.0.1:9", "token": {"vault": reference}}
    config = tmp_path / "gateway.yaml"
    config.write_text(f"upstreams: {{pagerduty: [{account!r}]}}".replace("'", '"'))

    with pytest.raises(InvalidSettings, match=f"upstreams.pagerduty.0.{field}"):
        configured_accounts(load_settings(config).upstreams, SYSTEMS)


@pytest.mark.parametrize(
    ("auth", "problem"),
    [
        ({}, "upstreams.vault.0.auth: auth holds exactly one of `approle` or `token`"),
        (
            {"token": {"env": "A"}, "approle": {}},
            "upstreams.vault.0.auth: auth holds exactly one of `approle` or `token`",
        ),
        (
            {"token": {"vault": {"instance": "main", "path": "a/b", "field": "t"}}},
            "upstreams.vault.0.auth.token.token: Value error, a Vault login credential is an "
            "`env` or `file`",
        ),
        (
            {"approle": {"role_id": {"env": "R"}}},
            "upstreams.vault.0.auth.approle.approle.secret_id: Field required",
        ),
    ],
)
def test_bad_vault_account_settings_name_the_field(auth: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidSettings) as refused:
        VAULT.accounts([{"name": "main", "url": "http://127.0.0.1:8200", "auth": auth}])

    assert problem in str(refused.value)


def test_vault_instance_names_are_unique() -> None:
    account = {"name": "main", "url": "http://127.0.0.1:8200", "auth": {"token": {"env": "T"}}}

    with pytest.raises(InvalidSettings, match=r"upstreams\.vault: account names repeated: main"):
        VAULT.accounts([account, account])
