"""qenerate, pinned in a venv of its own, generating reconcile_client's typed operations.

qenerate pins graphql-core 3.2 while Strawberry needs 3.3, so it cannot share the project's
environment. `python -m tests.support.qenerate install` makes the venv (CI does this before the
tests); `python -m tests.support.qenerate` regenerates reconcile_client/gql/*/*.py in place.
Each directory is generated against its schema's introspection: gql/gateway against the
gateway's Strawberry schema, gql/qontract_server against the real qontract-server's
(tests/data/qontract_server/introspection.json), gql/federated against the schema a federating
gateway serves: both merged, with the live fields (gateway.federation.merge, schema.app_interface).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from pathlib import Path
from typing import Any

from graphql import introspection_from_schema
from prometheus_client import CollectorRegistry

from gateway.federation.merge import merge_schema
from gateway.metrics import GatewayMetrics
from gateway.settings import QueryLimits
from resolvers.systems import SYSTEMS
from schema import build_schema
from schema.app_interface import TABLE

REPO_ROOT = Path(__file__).resolve().parents[2]
GQL_DIR = REPO_ROOT / "reconcile_client" / "gql"
QONTRACT_SERVER_INTROSPECTION = REPO_ROOT / "tests/data/qontract_server/introspection.json"
REQUIREMENT = "qenerate==0.8.1"
DIR_VARIABLE = "QONTRACT_GATEWAY_QENERATE_DIR"
REQUIRE_VARIABLE = "QONTRACT_GATEWAY_REQUIRE_QENERATE"
STAMP = "installed-requirement.txt"
TIMEOUT_SECONDS = 300


class QenerateUnavailable(Exception):
    """The venv is not installed or qenerate failed; the message says which."""


def install_dir() -> Path:
    """Where the venv lives: $QONTRACT_GATEWAY_QENERATE_DIR or a user cache."""
    configured = os.environ.get(DIR_VARIABLE)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "qontract-gateway" / "qenerate"


def executable(directory: Path) -> Path:
    """The qenerate script of the venv in `directory`."""
    return directory / "bin" / "qenerate"


def installed(directory: Path) -> bool:
    """Whether `directory` holds a venv with REQUIREMENT."""
    stamp = directory / STAMP
    return executable(directory).is_file() and stamp.is_file() and stamp.read_text() == REQUIREMENT


def _run(command: list[str], what: str) -> None:
    """Run `command`; QenerateUnavailable with its stderr when it fails."""
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )
    if result.returncode != 0:
        raise QenerateUnavailable(f"{what} failed:\n{result.stderr.strip()}")


def ensure_installed(directory: Path) -> Path:
    """`directory` with a venv holding REQUIREMENT, pip-installed if missing or stale."""
    if installed(directory):
        return directory
    (directory / STAMP).unlink(missing_ok=True)
    venv.create(directory, with_pip=True, clear=True)
    _run(
        [str(directory / "bin" / "python"), "-m", "pip", "install", "-q", REQUIREMENT],
        f"pip install {REQUIREMENT}",
    )
    (directory / STAMP).write_text(REQUIREMENT)
    return directory


def gateway_introspection() -> dict[str, Any]:
    """The gateway's introspection, from the Strawberry schema `export-schema` prints."""
    schema = build_schema(QueryLimits(), GatewayMetrics(CollectorRegistry()), SYSTEMS)
    return {"data": schema.introspect()}


def federated_introspection(qontract_server: dict[str, Any]) -> dict[str, Any]:
    """The merged schema's introspection: the gateway's, qontract-server's and the live fields."""
    gateway = build_schema(QueryLimits(), GatewayMetrics(CollectorRegistry()), SYSTEMS)
    merged = merge_schema(gateway._schema, qontract_server["data"], TABLE.sdl())
    return {"data": introspection_from_schema(merged.schema)}


def introspections() -> dict[str, dict[str, Any]]:
    """Each gql/ subdirectory's schema, as introspection JSON qenerate reads."""
    qontract_server = json.loads(QONTRACT_SERVER_INTROSPECTION.read_text())
    return {
        "gateway": gateway_introspection(),
        "qontract_server": qontract_server,
        "federated": federated_introspection(qontract_server),
    }


def generate(directory: Path, target: Path) -> dict[Path, str]:
    """Run qenerate (venv in `directory`) on a copy of GQL_DIR; the files it wrote, by path."""
    if not installed(directory):
        raise QenerateUnavailable(
            f"no qenerate in {directory}: run python -m tests.support.qenerate install"
        )
    generated: dict[Path, str] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, introspection in introspections().items():
            work = Path(scratch) / name
            work.mkdir()
            for source in (target / name).glob("*.gql"):
                shutil.copyfile(source, work / source.name)
            schema_file = Path(scratch) / f"{name}.json"
            schema_file.write_text(json.dumps(introspection))
            _run(
                [str(executable(directory)), "code", "-i", str(schema_file), str(work)],
                f"qenerate on {name}",
            )
            for module in sorted(work.glob("*.py")):
                generated[target / name / module.name] = module.read_text()
    return generated


def main(arguments: list[str]) -> int:
    """`install` makes the venv; no argument regenerates reconcile_client/gql in place."""
    directory = install_dir()
    if arguments == ["install"]:
        ensure_installed(directory)
        return 0
    if arguments:
        print("usage: python -m tests.support.qenerate [install]", file=sys.stderr)
        return 2
    for path, text in generate(directory, GQL_DIR).items():
        path.write_text(text)
        print(path.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
