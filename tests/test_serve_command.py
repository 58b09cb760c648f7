"""`qontract-gateway serve` on its embedded defaults, as a newcomer runs it."""

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port
from tests.support.serve_process import clean_env, serving
from tests.support.wait import wait_until


def children_of(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in children.read_text().split()] if children.exists() else []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def serve() -> Iterator[tuple[subprocess.Popen[str], str]]:
    with serving() as started:
        yield started


def test_serve_with_no_configuration_answers_and_exits_cleanly_on_sigterm(
    serve: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = serve
    response = httpx.post(
        f"{url}/graphql", json={"query": "{ gateway_info_v1 { redis_mode redis_version } }"}
    )
    assert response.json()["data"]["gateway_info_v1"]["redis_mode"] == "embedded"
    redis_pids = [
        pid
        for pid in children_of(process.pid)
        if "redis-server" in Path(f"/proc/{pid}/cmdline").read_text()
    ]
    assert len(redis_pids) == 1

    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)

    assert process.returncode in (0, 128 + signal.SIGTERM)
    assert "embedded redis stopped" in output
    assert not alive(redis_pids[0]), "the embedded redis-server outlived the gateway"
    assert "Traceback" not in output


def test_serve_refuses_a_public_interface_without_an_auth_secret() -> None:
    result = subprocess.run(
        ["qontract-gateway", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without an auth secret" in result.stderr


def test_embedded_redis_dies_with_a_killed_gateway(
    serve: tuple[subprocess.Popen[str], str],
) -> None:
    process, _ = serve
    redis_pids = [
        pid
        for pid in children_of(process.pid)
        if "redis-server" in Path(f"/proc/{pid}/cmdline").read_text()
    ]
    process.kill()
    process.wait()
    wait_until(lambda: not alive(redis_pids[0]), 10, "embedded redis to exit with its parent")


def test_serve_refuses_to_start_with_a_missing_credential(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "upstreams:\n  pagerduty:\n    - {name: app-sre, api_url: 'http://127.0.0.1:9',"
        " token: {env: QGW_TEST_UNSET_TOKEN}}\n"
    )
    result = subprocess.run(
        ["qontract-gateway", "serve", "--port", str(free_port()), "--config", str(config)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "pagerduty account 'app-sre': credential variable QGW_TEST_UNSET_TOKEN is not set" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
