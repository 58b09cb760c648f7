"""Run `qontract-gateway serve` (or another command) as a subprocess of this checkout."""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.ports import free_port
from tests.support.wait import wait_until

CHECKOUT = Path(__file__).parents[2]


def clean_env() -> dict[str, str]:
    """The environment without any QONTRACT_GATEWAY_ setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("QONTRACT_GATEWAY_")}


def answers(url: str) -> bool:
    """True when the gateway at `url` is ready."""
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def serving(**settings: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A ready `serve` on a free port with `settings` as environment variables; killed after."""
    with running("serve", env=settings) as started:
        yield started


@contextmanager
def running(*arguments: str, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`qontract-gateway <arguments> --port <free port>` with `env` added, once its /readyz
    answers 200; killed after the block."""
    port = free_port()
    process = subprocess.Popen(
        ["qontract-gateway", *arguments, "--port", str(port)],
        env={**clean_env(), **env, "PYTHONPATH": str(CHECKOUT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: answers(url) or process.poll() is not None, 30, f"{arguments[0]} to be ready"
        )
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
