"""Bearer tokens: every bad token is UNAUTHENTICATED, a missing scope is FORBIDDEN."""

import datetime as dt
import os
import subprocess
from collections.abc import Callable

import httpx
import jwt
import pytest

from gateway.auth import mint_token
from tests.support.server_thread import ServerThread

SECRET = "test-secret-not-for-production-0123456789"
QUERY = {"query": "{ gateway_info_v1 { version } }"}


@pytest.fixture
def secured(gateway_factory: Callable[..., ServerThread]) -> ServerThread:
    return gateway_factory(auth={"secret": SECRET, "revoked_subjects": ["mallory"]})


def ask(server: ServerThread, authorization: str | None) -> httpx.Response:
    headers = {"authorization": authorization} if authorization is not None else {}
    return httpx.post(f"{server.url}/graphql", json=QUERY, headers=headers, timeout=10)


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert body["data"] is None
    return str(body["errors"][0]["extensions"]["code"])


def test_valid_token_with_read_scope_gets_data(secured: ServerThread) -> None:
    token = mint_token(SECRET, "slack-usergroups-api", ["read"], expires_days=1)
    response = ask(secured, f"Bearer {token}")
    assert response.json()["data"]["gateway_info_v1"]["version"]


def test_admin_scope_implies_every_scope(secured: ServerThread) -> None:
    token = mint_token(SECRET, "ops", ["admin"], expires_days=1)
    assert ask(secured, f"Bearer {token}").json()["data"]["gateway_info_v1"]


def expired_token() -> str:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return jwt.encode({"sub": "x", "scopes": ["read"], "exp": past}, SECRET, algorithm="HS256")


def forged_token() -> str:
    return mint_token("some-other-secret-of-sufficient-length", "x", ["read"], expires_days=1)


def no_exp_token() -> str:
    return jwt.encode({"sub": "x", "scopes": ["read"]}, SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "missing bearer token"),
        ("Bearer", "malformed Authorization header"),
        ("Basic dXNlcjpwYXNz", "malformed Authorization header"),
        ("Bearer not.a.jwt", "token malformed"),
        (f"Bearer {expired_token()}", "token expired"),
        (f"Bearer {forged_token()}", "token signature invalid"),
        (f"Bearer {no_exp_token()}", "token malformed"),
        (f"Bearer {mint_token(SECRET, 'mallory', ['read'], expires_days=1)}", "token revoked"),
    ],
    ids=["missing", "empty", "basic", "garbage", "expired", "forged", "no-exp", "revoked"],
)
def test_bad_tokens_are_unauthenticated(
    secured: ServerThread, authorization: str | None, message: str
) -> None:
    response = ask(secured, authorization)
    assert response.status_code == 200
    assert error_code(response) == "UNAUTHENTICATED"
    assert response.json()["errors"][0]["message"].startswith(message)


def test_token_without_the_needed_scope_is_forbidden(secured: ServerThread) -> None:
    token = mint_token(SECRET, "listener", ["events"], expires_days=1)
    response = ask(secured, f"Bearer {token}")
    assert error_code(response) == "FORBIDDEN"
    assert "'read'" in response.json()["errors"][0]["message"]


def test_errors_never_echo_the_token(secured: ServerThread) -> None:
    token = forged_token()
    assert token not in ask(secured, f"Bearer {token}").text


def test_token_command_mints_a_token_the_gateway_accepts(secured: ServerThread) -> None:
    env = {**os.environ, "QONTRACT_GATEWAY_AUTH__SECRET": SECRET}
    minted = subprocess.run(
        [
            "qontract-gateway",
            "token",
            "--subject",
            "ci",
            "--scopes",
            "read,events",
            "--expires-days",
            "2",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    claims = jwt.decode(minted, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "ci"
    assert claims["scopes"] == ["events", "read"]
    assert ask(secured, f"Bearer {minted}").json()["data"]["gateway_info_v1"]


def test_token_command_refuses_unknown_scopes() -> None:
    env = {**os.environ, "QONTRACT_GATEWAY_AUTH__SECRET": SECRET}
    result = subprocess.run(
        ["qontract-gateway", "token", "--subject", "ci", "--scopes", "root"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "unknown scopes" in result.stderr


def test_short_secret_is_refused_at_start_up() -> None:
    env = {**os.environ, "QONTRACT_GATEWAY_AUTH__SECRET": "short"}
    result = subprocess.run(
        ["qontract-gateway", "token", "--subject", "ci", "--scopes", "read"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "at least 32" in result.stderr
    assert "short" not in result.stderr.replace("at least", "")
