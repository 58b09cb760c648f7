"""qontract-gateway-client installed alone, as an integration image would, runs without the server.

The venv gets the locked dependencies of requirements/client.txt from PyPI once per change of
that file (kept under ~/.cache/qontract-gateway/, or $QONTRACT_GATEWAY_CLIENT_VENV_DIR); the
client wheel is built from client/ and installed into it on every run.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client import test_slack_usergroups_e2e as e2e
from tests.client.conftest import REPO_ROOT
from tests.client.test_cli import COMMAND

# The dry run's real parts: the slack-usergroups-api end-to-end fixtures.
slack = e2e.slack
gateway = e2e.gateway
env = e2e.env

LOCK = REPO_ROOT / "requirements" / "client.txt"
INSTALL_TIMEOUT = 600
SERVER_MODULES = ("gateway", "schema", "resolvers", "strawberry", "celery", "starlette", "redis")
IMPORT_CHECK = """
import importlib, sys
import reconcile_client.cli, reconcile_client.integrations.slack_usergroups_api
server = [name for name in sys.argv[1:] if name in sys.modules]
assert not server, f"imported with the client: {server}"
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError:
        continue
    raise SystemExit(f"{name} is importable beside the client")
print("client only")
"""


def run(*command: str | Path, cwd: Path) -> str:
    """Run `command` to completion within INSTALL_TIMEOUT; fail the test with its output."""
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


def outside_the_repository(tmp: Path, **extra: str) -> dict[str, str]:
    """An environment in which nothing of this checkout is on the Python path."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("QONTRACT_RECONCILE_API_")
    }
    return {**clean, "HOME": os.environ.get("HOME", str(tmp)), **extra}


@pytest.fixture(scope="module")
def client_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client wheel, built from client/ as `pip wheel --no-deps ./client` builds it."""
    out = tmp_path_factory.mktemp("wheel")
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "-w",
        out,
        "./client",
        cwd=REPO_ROOT,
    )
    (wheel,) = out.glob("qontract_gateway_client-*.whl")
    return wheel


@pytest.fixture(scope="module")
def client_venv(client_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A venv with the client's locked dependencies (cached) and the client wheel (fresh)."""
    key = hashlib.sha256(LOCK.read_bytes() + sys.version.encode()).hexdigest()[:16]
    default = Path.home() / ".cache" / "qontract-gateway" / "client-venv"
    root = Path(os.environ.get("QONTRACT_GATEWAY_CLIENT_VENV_DIR", default))
    venv = root / key
    if not (venv / "locked").exists():
        shutil.rmtree(venv, ignore_errors=True)
        cwd = tmp_path_factory.mktemp("venv")
        run(sys.executable, "-m", "venv", venv, cwd=cwd)
        run(venv / "bin" / "pip", "install", "-q", "-r", LOCK, cwd=cwd)
        (venv / "locked").touch()
    cwd = tmp_path_factory.mktemp("install")
    pip = venv / "bin" / "pip"
    run(pip, "install", "-q", "--no-deps", "--force-reinstall", client_wheel, cwd=cwd)
    yield venv
    run(pip, "uninstall", "-q", "-y", "qontract-gateway-client", cwd=cwd)


def test_the_client_wheel_holds_reconcile_client_and_its_gql_documents_only(
    client_wheel: Path,
) -> None:
    names = zipfile.ZipFile(client_wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"reconcile_client", client_wheel.name.split("-")[0] + "-0.1.0.dist-info"}
    shipped = {
        str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "reconcile_client").rglob("*.gql")
    }
    assert shipped
    assert shipped <= set(names)


@pytest.mark.timeout(INSTALL_TIMEOUT * 2)
def test_the_client_alone_imports_nothing_of_the_server(client_venv: Path, tmp_path: Path) -> None:
    python = client_venv / "bin" / "python"
    out = run(python, "-c", IMPORT_CHECK, *SERVER_MODULES, cwd=tmp_path)
    assert out.strip() == "client only"
    installed = run(python, "-m", "pip", "list", "--format=freeze", cwd=tmp_path).lower()
    assert "qontract-gateway-client==0.1.0" in installed
    for server_only in ("strawberry-graphql", "starlette", "celery", "uvicorn", "redis=="):
        assert server_only not in installed


@pytest.mark.timeout(INSTALL_TIMEOUT * 2)
def test_the_client_alone_shows_its_cli_help(client_venv: Path, tmp_path: Path) -> None:
    out = run(client_venv / "bin" / "qontract-reconcile-api", "--help", cwd=tmp_path)
    assert "slack-usergroups-api" in out
    assert "event-log-sink" in out


@pytest.mark.timeout(INSTALL_TIMEOUT * 2)
def test_the_client_alone_runs_a_dry_run_against_a_served_gateway(
    client_venv: Path, env: dict[str, str], tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(client_venv / "bin" / "qontract-reconcile-api"), COMMAND],
        cwd=tmp_path,
        env=outside_the_repository(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert e2e.dry_run_lines(result.stdout) == e2e.EXPECTED_ACTIONS
