"""Settings come from a YAML or TOML file, and QONTRACT_GATEWAY_* variables win over it."""

from pathlib import Path

import pytest

from gateway.settings import InvalidSettings, load_settings


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
    assert settings.upstream_account_names() == [("pagerduty", "app-sre")]


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
    slack = load_settings(config).upstreams.slack
    assert slack[0].token.read().get_secret_value() == "file-token"
    with pytest.raises(InvalidSettings, match="MISSING_TOKEN_VAR is not set"):
        slack[1].token.read()
