"""Where the tests read the real qontract-server's recordings (schema, bundle, goldens)."""

import json
from pathlib import Path
from typing import Any

from tests.emulators.qontract_bundle import DATA_DIR


def qontract_server_file(name: str) -> Path:
    """The path of `name` (e.g. `goldens/04-reconcile-permissions.json`) in the recordings."""
    path = DATA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is not in {DATA_DIR}")
    return path


def golden_body(name: str) -> dict[str, Any]:
    """The JSON body qontract-server answered in golden `name` (e.g. `04-reconcile-permissions`)."""
    recorded = json.loads(qontract_server_file(f"goldens/{name}.json").read_text())
    body = recorded["response"]["body"]
    return json.loads(body) if isinstance(body, str) else dict(body)
