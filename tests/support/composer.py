"""The pinned Federation 2 composer from npm, installed outside the repository, and run on SDL.

`python -m tests.support.composer [DIR]` installs it (CI does this before the tests).
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parents[1] / "federation" / "composer"
DIR_VARIABLE = "QONTRACT_GATEWAY_COMPOSER_DIR"
REQUIRE_VARIABLE = "QONTRACT_GATEWAY_REQUIRE_COMPOSER"
STAMP = "installed-package-lock.json"
TIMEOUT_SECONDS = 300


class ComposerUnavailable(Exception):
    """node or npm is missing, or the install failed; the message says which."""


@dataclass(frozen=True)
class Composition:
    """What the composer answered: the supergraph SDL, or its errors."""

    supergraph: str | None
    errors: list[str]


def install_dir() -> Path:
    """Where the composer's node_modules live: $QONTRACT_GATEWAY_COMPOSER_DIR or a user cache."""
    configured = os.environ.get(DIR_VARIABLE)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "qontract-gateway" / "federation-composer"


def ensure_installed(directory: Path) -> Path:
    """`directory` with the composer of SOURCE's package-lock.json, `npm ci`-installed if stale."""
    lock = (SOURCE / "package-lock.json").read_bytes()
    stamp = directory / STAMP
    if stamp.is_file() and stamp.read_bytes() == lock:
        return directory
    npm = shutil.which("npm")
    if npm is None:
        raise ComposerUnavailable("npm is not installed; it installs the Federation composer")
    directory.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(SOURCE / name, directory / name)
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise ComposerUnavailable(f"npm ci in {directory} failed:\n{result.stderr.strip()}")
    stamp.write_bytes(lock)
    return directory


def compose(directory: Path, subgraphs: dict[str, Path]) -> Composition:
    """Compose the `subgraphs` (name -> SDL file) with the composer installed in `directory`."""
    node = shutil.which("node")
    if node is None:
        raise ComposerUnavailable("node is not installed; it runs the Federation composer")
    arguments = [f"{name}={path}" for name, path in subgraphs.items()]
    result = subprocess.run(
        [node, str(SOURCE / "compose.mjs"), str(directory), *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"compose.mjs exited {result.returncode}:\n{result.stderr.strip()}")
    answer: dict[str, Any] = json.loads(result.stdout)
    return Composition(answer.get("supergraph"), answer.get("errors", []))


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else install_dir()
    print(f"Federation composer installed in {ensure_installed(target)}")
