"""Start what a benchmark compares (Redis, emulator, gateway, baseline) and load it with wrk."""

import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.load import Load, load
from gateway.settings import Settings
from gateway.tasks.celery_app import create_celery_app
from tests.support.ports import free_port
from tests.support.wait import wait_until

REPO = Path(__file__).parents[1]


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.TransportError:
        return False


@contextmanager
def process(
    command: list[str], env: dict[str, str], ready: str | Callable[[], bool]
) -> Iterator["subprocess.Popen[bytes]"]:
    """Run `command` at the repo root until the block ends; wait until `ready` (or its URL) is."""
    is_ready: Callable[[], bool] = (
        functools.partial(_ready, ready) if isinstance(ready, str) else ready
    )
    with tempfile.TemporaryFile() as log:
        child = subprocess.Popen(
            command, env={**os.environ, **env}, cwd=REPO, stdout=log, stderr=log
        )
        try:
            wait_until(lambda: child.poll() is not None or is_ready(), 60, str(command))
            if child.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{command} exited: {log.read().decode()[-2000:]}")
            yield child
        finally:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)


def gateway_command(*arguments: str) -> list[str]:
    """`qontract-gateway <arguments>` of this checkout, whatever is on PATH."""
    return [sys.executable, "-m", "gateway", *arguments]


def gateway_env(redis_url: str, env: dict[str, str]) -> dict[str, str]:
    """The environment of a benchmark gateway or worker: this checkout, `redis_url`, `env`."""
    return {
        "PYTHONPATH": str(REPO),
        "QONTRACT_GATEWAY_REDIS__URL": redis_url,
        "QONTRACT_GATEWAY_REDIS__NAMESPACE": "bench",
        "QONTRACT_GATEWAY_LOG_LEVEL": "WARNING",
        **env,
    }


@contextmanager
def gateway_config(upstreams: dict[str, Any]) -> Iterator[Path]:
    """A YAML config file with `upstreams`, removed when the block ends."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "gateway.yaml"
        config.write_text(yaml.safe_dump({"upstreams": upstreams}))
        yield config


@contextmanager
def gateway(redis_url: str, upstreams: dict[str, Any], env: dict[str, str]) -> Iterator[str]:
    """`qontract-gateway serve` (one uvicorn worker, uvloop, httptools) on a free port."""
    with gateway_process(redis_url, upstreams, env) as (url, _):
        yield url


@contextmanager
def gateway_process(
    redis_url: str, upstreams: dict[str, Any], env: dict[str, str]
) -> Iterator[tuple[str, int]]:
    """As `gateway`, yielding its URL and the process id (the one process that serves)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with gateway_config(upstreams) as config:
        command = gateway_command("serve", "--port", str(port), "--config", str(config))
        with process(command, gateway_env(redis_url, env), f"{url}/readyz") as child:
            yield url, child.pid


def _answers_ping(redis_url: str, namespace: str) -> bool:
    app = create_celery_app(Settings(redis={"url": redis_url, "namespace": namespace}))
    try:
        return bool(app.control.ping(timeout=0.5))
    finally:
        app.close()


@contextmanager
def worker(
    redis_url: str, upstreams: dict[str, Any], env: dict[str, str], queues: str
) -> Iterator[int]:
    """`qontract-gateway worker` (Celery, one process) on `queues`, ready once it answers a ping.

    Yields the worker's main process id.
    """
    settings = gateway_env(redis_url, env)
    namespace = settings["QONTRACT_GATEWAY_REDIS__NAMESPACE"]
    with gateway_config(upstreams) as config:
        command = gateway_command(
            "worker", "--config", str(config), "--queues", queues, "--concurrency", "1"
        )
        with process(command, settings, lambda: _answers_ping(redis_url, namespace)) as child:
            yield child.pid


@contextmanager
def baseline(redis_url: str, cache_key: str) -> Iterator[str]:
    """The bare Starlette endpoint under the same uvicorn settings as the gateway."""
    with baseline_process(redis_url, cache_key) as (url, _):
        yield url


@contextmanager
def baseline_process(redis_url: str, cache_key: str) -> Iterator[tuple[str, int]]:
    """As `baseline`, yielding its URL and process id."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.baseline_app:create_app",
        "--factory",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    env = {
        "BASELINE_REDIS_URL": redis_url,
        "BASELINE_KEY": cache_key,
        "PYTHONPATH": str(REPO),
    }
    with process(command, env, f"{url}/graphql") as child:
        yield url, child.pid


_LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)$", re.M)
_ERRORS = re.compile(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*?timeout (\d+)")


def wrk(url: str, body: dict[str, Any], seconds: int = 5, connections: int = 32) -> Load:
    """Load `url` with POSTs of `body` for `seconds` (bounded; loopback only): with wrk when it
    is installed, else with `benchmarks.load`."""
    if shutil.which("wrk") is None:
        encoded = json.dumps(body).encode()
        return load(url, lambda _: encoded, seconds, connections)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(json.dumps(body))}\n"
        )
    try:
        output = subprocess.run(
            [
                "wrk",
                "--latency",
                "-t",
                "1",
                "-c",
                str(connections),
                "-d",
                f"{seconds}s",
                "-s",
                script.name,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latencies = {m[0]: float(m[1]) * scale[m[2]] for m in _LATENCY.findall(output)}
    errors = sum(int(a or b or 0) for a, b in _ERRORS.findall(output))
    rps = _RPS.search(output)
    if rps is None:
        raise RuntimeError(f"could not read wrk output:\n{output}")
    return Load(float(rps.group(1)), latencies["50"], latencies["99"], errors)


def interleaved(
    targets: dict[str, tuple[str, dict[str, Any]]], rounds: int, seconds: int
) -> dict[str, list[Load]]:
    """Run each target `rounds` times, alternating, so machine noise hits all of them alike."""
    results: dict[str, list[Load]] = {name: [] for name in targets}
    for _ in range(rounds):
        for name, (url, body) in targets.items():
            results[name].append(wrk(url, body, seconds))
    return results


def median_rps(loads: list[Load]) -> float:
    """The median requests/s of several runs."""
    return statistics.median(load.requests_per_second for load in loads)


def peak_rss_mb(pid: int) -> dict[int, float]:
    """Peak resident memory (VmHWM, MB) of `pid` and each of its child processes."""
    pids = [pid, *(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())]
    peaks: dict[int, float] = {}
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks[each] = int(line.split()[1]) / 1024
    return peaks


def rss_mb(pid: int) -> float:
    """Resident memory (VmRSS, MB) of `pid` now."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) `pid` has used so far: a figure machine load barely moves."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
