"""Settings come from a YAML or TOML file, and QONTRACT_GATEWAY_* variables win over it."""

from dataclasses import replace
from pathlib import Path

import pytest

from gateway.registry import AnySystem, configured_accounts
from gateway.settings import InvalidSettings, load_settings
from resolvers.ldap.system import SYSTEM as LDAP
from resolvers.pagerduty.system import SYSTEM as PAGERDUTY
from resolvers.systems import SYSTEMS


def test_yaml_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("port: 4100\nredis:\n  namespace: from-file\n  url: redis://file:6379\n")
    monkeypatch.setenv("QONTRACT_GATEWAY_REDIS__NAMESPACE", "from-env")
    settings = load_settings(config)
    assert settings.port == 4100
    assert settings.redis.url == "redis://file:6379"
    assert settings.redis.namespace == "from-env"


def test_toml_file_is_read_through_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[limits]\nmax_depth = 7\n[[upstreams.pagerduty]]\nname = "app-sre"\n'
        'api_url = "http://127.0.0.1:1"\ntoken = {env = "PD_TOKEN"}\n'
    )
    monkeypatch.setenv("QONTRACT_GATEWAY_CONFIG_FILE", str(config))
    settings = load_settings()
    assert settings.limits.max_depth == 7
    accounts = configured_accounts(settings.upstreams, SYSTEMS)
    assert [(system.name, account.name) for system, account in accounts] == [
        ("pagerduty", "app-sre")
    ]


def test_invalid_settings_name_the_field_but_never_the_value(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("auth:\n  secret: too-short-secret-value\nnope: 1\n")
    with pytest.raises(InvalidSettings) as refused:
        load_settings(config)
    message = str(refused.value)
    assert "auth.secret" in message
    assert "nope" in message
    assert "too-short-secret-value" not in message


def test_a_credential_names_an_env_variable_or_a_file_and_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text("file-token\n")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "upstreams:\n  slack:\n"
        f"    - {{name: a, api_url: 'http://x', token: {{file: '{secret_file}'}}}}\n"
        "    - {name: b, api_url: 'http://x', token: {env: MISSING_TOKEN_VAR}}\n"
    )
    monkeypatch.delenv("MISSING_TOKEN_VAR", raising=False)
    slack = [
        account for _, account in configured_accounts(load_settings(config).upstreams, SYSTEMS)
    ]
    assert slack[0].token.read().get_secret_value() == "file-token"
    with pytest.raises(InvalidSettings, match="MISSING_TOKEN_VAR is not set"):
        slack[1].token.read()


def test_an_unknown_system_is_refused_naming_it_and_the_known_ones(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("upstreams:\n  pagerduty: []\n  pagerdooty: []\n")
    upstreams = load_settings(config).upstreams
    with pytest.raises(InvalidSettings) as refused:
        configured_accounts(upstreams, SYSTEMS)
    assert "upstreams.pagerdooty: unknown system" in str(refused.value)
    assert "pagerduty" in str(refused.value).split("known:")[1]


def test_an_option_of_another_system_is_refused_naming_the_field(tmp_path: Path) -> None:
    """`auth_scheme` is Jira's: on a PagerDuty account it is an error at that field."""
    config = tmp_path / "gateway.yaml"
    account = "{name: a, api_url: 'http://x', token: {env: T}, auth_scheme: basic}"
    config.write_text(f"upstreams:\n  jira: [{account}]\n  pagerduty: [{account}]\n")
    upstreams = load_settings(config).upstreams
    with pytest.raises(InvalidSettings, match=r"upstreams\.pagerduty\.0\.auth_scheme: Extra"):
        configured_accounts(upstreams, SYSTEMS)
    del upstreams["pagerduty"]
    ((_, jira),) = configured_accounts(upstreams, SYSTEMS)
    assert jira.auth_scheme == "basic"


def test_a_ttl_of_a_data_type_the_system_does_not_have_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "upstreams:\n  slack:\n"
        "    - {name: a, api_url: 'http://x', token: {env: T}, ttl: {schedules: 60}}\n"
    )
    with pytest.raises(InvalidSettings, match=r"upstreams\.slack\.0\.ttl: unknown data type"):
        configured_accounts(load_settings(config).upstreams, SYSTEMS)


def test_accounts_from_the_environment_are_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "QONTRACT_GATEWAY_UPSTREAMS__GITHUB",
        '[{"name": "app-sre", "api_url": "http://x", "token": {"env": "T"}}]',
    )
    ((system, account),) = configured_accounts(load_settings().upstreams, SYSTEMS)
    assert (system.name, account.name) == ("github", "app-sre")


def test_a_system_declares_an_http_source_with_its_rate_limit_or_its_own_connections() -> None:
    with pytest.raises(TypeError, match="declare one of `source` and `own_connections`"):
        replace(LDAP, own_connections=None)
    ldap: AnySystem = LDAP
    with pytest.raises(TypeError, match="declare one of `source` and `own_connections`"):
        replace(ldap, source=PAGERDUTY.source)
    with pytest.raises(TypeError, match="an HTTP system declares its `rate_limit`"):
        replace(PAGERDUTY, rate_limit=None)


def test_ldap_accounts_are_checked_by_the_registry_like_any_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = (
        '{"name": "ipa", "url": "ldap://ipa.example.com", "base_dn": "dc=example,dc=com", '
        '"bind_dn": "uid=svc,dc=example,dc=com", "bind_password": {"env": "LDAP_PW"}}'
    )
    monkeypatch.setenv("QONTRACT_GATEWAY_UPSTREAMS__LDAP", f"[{account}]")
    ((system, ldap),) = configured_accounts(load_settings().upstreams, SYSTEMS)
    assert (system.name, ldap.users_dn) == ("ldap", "cn=users,cn=accounts,dc=example,dc=com")
    monkeypatch.setenv("QONTRACT_GATEWAY_UPSTREAMS__LDAP", f"[{account}, {account}]")
    with pytest.raises(InvalidSettings, match=r"upstreams\.ldap: account names repeated: ipa"):
        configured_accounts(load_settings().upstreams, SYSTEMS)
