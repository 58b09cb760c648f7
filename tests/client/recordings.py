"""Where the tests read the real qontract-server's recordings (schema, bundle, goldens)."""

import json
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
# Vendored copy first (tests/data/qontract_server/, the whole shared folder), else the shared
# folder of the development machines.
ROOTS = (REPO_ROOT / "tests" / "data" / "qontract_server", Path("/work/shared/qontract-server"))


def qontract_server_file(name: str) -> Path:
    """The path of `name` (e.g. `goldens/04-reconcile-permissions.json`) in the recordings."""
    for root in ROOTS:
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(f"{name} is in none of {', '.join(str(root) for root in ROOTS)}")


def golden_body(name: str) -> dict[str, Any]:
    """The JSON body qontract-server answered in golden `name` (e.g. `04-reconcile-permissions`)."""
    recorded = json.loads(qontract_server_file(f"goldens/{name}.json").read_text())
    body = recorded["response"]["body"]
    return json.loads(body) if isinstance(body, str) else dict(body)
