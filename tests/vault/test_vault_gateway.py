"""Upstream accounts whose credentials live in Vault, through the whole gateway."""

import itertools
import logging
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from tests.emulators.pagerduty import PagerDutyEmulator
from tests.support.gateway import gateway_settings, graphql, start_gateway
from tests.support.openbao import KV1_MOUNT, PrivateOpenBao
from tests.support.ports import free_port
from tests.support.redis_server import PrivateRedis
from tests.support.serve_process import CHECKOUT, clean_env
from tests.support.server_thread import ServerThread
from tests.support.wait import wait_until
from tests.vault.conftest import approle_account

SCHEDULE = """query Schedule($instance: String!, $id: String!) {
  pagerduty_schedules_v1(instance: $instance, ids: [$id]) { id users { email } }
}"""


def pagerduty(token: str) -> tuple[PagerDutyEmulator, ServerThread]:
    """A PagerDuty emulator accepting `token`, with schedules S1 and S2 holding alice."""
    emulator = PagerDutyEmulator()
    emulator.state.token = token
    emulator.state.add_user("U1", "alice@example.com")
    emulator.state.oncall = {"S1": ["U1"], "S2": ["U1"]}
    return emulator, ServerThread(emulator.app).start()


@pytest.fixture
def servers() -> Iterator[list[ServerThread]]:
    """Servers a test started; stopped after it."""
    started: list[ServerThread] = []
    yield started
    for server in started:
        server.stop()


def pd_account(name: str, url: str, instance: str, path: str, **reference: Any) -> dict[str, Any]:
    """A PagerDuty account whose token is `token` of the secret at `path` in Vault `instance`."""
    return {
        "name": name,
        "api_url": url,
        "token": {"vault": {"instance": instance, "path": path, "field": "token", **reference}},
    }


def users(body: dict[str, Any]) -> list[str]:
    """The on-call emails of the one schedule in `body`."""
    assert "errors" not in body, body
    return [u["email"] for u in body["data"]["pagerduty_schedules_v1"][0]["users"]]


def test_pagerduty_token_read_from_vault_and_reread_when_the_cached_copy_expires(
    openbao: PrivateOpenBao,
    gateway_factory: Callable[..., ServerThread],
    monkeypatch: pytest.MonkeyPatch,
    servers: list[ServerThread],
    prefix: str,
) -> None:
    openbao.kv2_put(f"{prefix}/pd", {"token": "pd-token-from-vault"})
    emulator, upstream = pagerduty("pd-token-from-vault")
    servers.append(upstream)
    vault = approle_account(openbao, openbao.approle(prefix), monkeypatch, cache_ttl=1)
    gateway = gateway_factory(
        upstreams={
            "vault": [vault],
            "pagerduty": [pd_account("app-sre", upstream.url, "main", f"secret/{prefix}/pd")],
        }
    )

    before = users(graphql(gateway, SCHEDULE, instance="app-sre", id="S1"))
    openbao.kv2_put(f"{prefix}/pd", {"token": "pd-token-rotated"})
    emulator.state.token = "pd-token-rotated"

    def rotated() -> bool:
        body = graphql(gateway, SCHEDULE, instance="app-sre", id="S2")
        return "errors" not in body

    wait_until(rotated, timeout=30, what="the rotated token to be read from Vault")
    assert before == ["alice@example.com"]


def test_a_reference_to_an_unknown_vault_instance_is_refused_at_start_up(
    redis_url: str, namespace: str
) -> None:
    account = pd_account("app-sre", "http://127.0.0.1:9", "nowhere", "secret/pd")
    settings = gateway_settings(redis_url, namespace, upstreams={"pagerduty": [account]})

    with pytest.raises(ValueError, match="names Vault instance 'nowhere'"):
        start_gateway(settings)


def test_serve_with_vault_down_exits_with_a_clear_error(redis_url: str, tmp_path: Path) -> None:
    vault_url = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "token").write_text("a-vault-token-never-shown")
    config = {
        "redis": {"url": redis_url, "namespace": f"qgwtest-{uuid.uuid4().hex[:8]}"},
        "upstreams": {
            "vault": [
                {
                    "name": "main",
                    "url": vault_url,
                    "auth": {"token": {"file": str(tmp_path / "token")}},
                    "timeout": 1,
                }
            ],
            "pagerduty": [pd_account("app-sre", "http://127.0.0.1:9", "main", "secret/pd")],
        },
    }
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))

    finished = subprocess.run(
        [
            "qontract-gateway",
            "serve",
            "--port",
            str(free_port()),
            "--config",
            str(tmp_path / "gateway.yaml"),
        ],
        env={**clean_env(), "PYTHONPATH": str(CHECKOUT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    output = finished.stdout + finished.stderr
    assert finished.returncode != 0
    assert f"Vault instance 'main' ({vault_url}) failed at start-up" in output, output
    assert "could not reach the upstream" in output
    assert "a-vault-token-never-shown" not in output


def _raw(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _redis_contents(client: redis.Redis) -> list[bytes]:
    """Every key of the Redis, each with its value read by type and as DUMP's serialised form."""
    contents: list[object] = []
    for key in client.scan_iter(count=1000):
        contents.append(key)
        kind = _raw(client.type(key))
        if kind == b"string":
            contents.append(client.get(key))
        elif kind == b"hash":
            contents.extend(client.hgetall(key).items())
        elif kind == b"list":
            contents.extend(client.lrange(key, 0, -1))
        elif kind == b"set":
            contents.extend(client.smembers(key))
        elif kind == b"zset":
            contents.extend(client.zrange(key, 0, -1))
        elif kind == b"stream":
            contents.extend(fields for _, fields in client.xrange(key) or [])
        contents.append(client.dump(key))
    return [_raw(item) for item in contents]


def test_no_secret_reaches_logs_errors_responses_redis_or_metrics(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    servers: list[ServerThread],
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    with PrivateRedis() as private_redis, PrivateOpenBao() as bao:
        login = bao.approle("gateway")
        vault_token = bao.api(
            "POST", "auth/token/create", {"policies": ["gateway"], "ttl": "3s", "renewable": True}
        )["auth"]["client_token"]
        (tmp_path / "vault-token").write_text(vault_token)
        bao.kv2_put("pd/app-sre", {"token": "pd-v1-token-aaaa"})
        version = bao.kv2_put("pd/app-sre", {"token": "pd-v2-token-bbbb"})
        bao.api("POST", f"{KV1_MOUNT}/pd/other", {"token": "pd-kv1-token-cccc"})
        first_upstream = pagerduty("pd-v2-token-bbbb")[1]
        second_upstream = pagerduty("pd-kv1-token-cccc")[1]
        servers.extend([first_upstream, second_upstream])
        vaults = [
            approle_account(bao, login, monkeypatch, cache_ttl=3, timeout=1),
            {
                "name": "tokened",
                "url": bao.url,
                "auth": {"token": {"file": str(tmp_path / "vault-token")}},
                "cache_ttl": 3,
                "timeout": 1,
            },
        ]
        settings = gateway_settings(
            private_redis.url,
            "qgwtest-secrets",
            upstreams={
                "vault": vaults,
                "pagerduty": [
                    pd_account(
                        "app-sre", first_upstream.url, "main", "secret/pd/app-sre", version=version
                    ),
                    pd_account("other", second_upstream.url, "tokened", f"{KV1_MOUNT}/pd/other"),
                ],
            },
        )
        gateway = start_gateway(settings)
        servers.append(gateway)
        responses = [
            graphql(gateway, SCHEDULE, instance="app-sre", id="S1"),
            graphql(gateway, SCHEDULE, instance="other", id="S1"),
        ]
        assert [users(body) for body in responses] == [["alice@example.com"]] * 2
        renewal = 'account="tokened",operation="auth.token.renew_self",status="200"'

        def token_renewed() -> bool:
            return renewal in httpx.get(f"{gateway.url}/metrics", timeout=10).text

        wait_until(token_renewed, timeout=20, what="the configured Vault token to be renewed")
        bao.stop()
        outage: list[dict[str, Any]] = []
        ids = itertools.count(3)

        def vault_named() -> bool:
            body = graphql(gateway, SCHEDULE, instance="app-sre", id=f"S{next(ids)}")
            outage.append(body)
            return any(e["extensions"].get("upstream") == "vault" for e in body.get("errors", []))

        wait_until(vault_named, timeout=30, what="the cached credential to expire")
        error = outage[-1]["errors"][0]
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        stored = _redis_contents(redis.Redis(port=private_redis.port))
        gateway.stop()

    captured = capfd.readouterr()
    logs = "\n".join([caplog.text, *(r.getMessage() for r in caplog.records), *captured])
    texts = [logs, metrics, *(str(body) for body in [*responses, *outage])]
    secrets = [
        "pd-v1-token-aaaa",
        "pd-v2-token-bbbb",
        "pd-kv1-token-cccc",
        vault_token,
        login.role_id,
        login.secret_id,
        bao.root_token,
    ]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    assert error["extensions"]["upstream"] == "vault"
    assert "vault account 'main'" in error["message"]
    assert "vault token obtained" in logs
    assert 'system="vault"' in metrics
    assert any(b"pagerduty" in item for item in stored)
    for secret in secrets:
        which = secrets.index(secret)
        assert all(secret not in text for text in texts), f"secret {which} leaked"
        assert all(secret.encode() not in item for item in stored), f"secret {which} is in Redis"
