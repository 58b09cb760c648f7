"""The recorded qontract-server exchanges (tests/data/qontract_server/goldens): load, replay."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.emulators.qontract_bundle import GOLDENS_DIR


@dataclass(frozen=True)
class Exchange:
    """One recorded request and the real qontract-server's answer to it."""

    name: str
    what: str
    method: str
    path: str
    json: Any
    status: int
    content_type: str
    body: Any


@dataclass(frozen=True)
class Golden:
    """A golden file: its exchanges, and the latest sha when it loads more than one bundle."""

    name: str
    what: str
    exchanges: list[Exchange]
    latest_sha256: str | None


def _exchange(name: str, what: str, recorded: dict[str, Any]) -> Exchange:
    request, response = recorded["request"], recorded["response"]
    return Exchange(
        name=name,
        what=what,
        method=request["method"],
        path=request["path"],
        json=request.get("json"),
        status=response["status"],
        content_type=response["content_type"],
        body=response["body"],
    )


def load_goldens(directory: Path = GOLDENS_DIR) -> list[Golden]:
    """Every golden file in name order (`NN-name.json`)."""
    goldens = []
    for path in sorted(directory.glob("*.json")):
        recorded = json.loads(path.read_text())
        what = recorded["what"]
        if "exchanges" in recorded:
            exchanges = [_exchange(path.stem, what, e) for e in recorded["exchanges"]]
        else:
            exchanges = [_exchange(path.stem, what, recorded)]
        goldens.append(Golden(path.stem, what, exchanges, recorded.get("latest_sha256")))
    return goldens


def replay(client: httpx.Client, base_url: str, exchange: Exchange) -> httpx.Response:
    """Send the recorded request to `base_url` (same method, path and JSON body)."""
    return client.request(exchange.method, base_url + exchange.path, json=exchange.json)


def mismatch(response: httpx.Response, exchange: Exchange) -> str | None:
    """Why `response` differs from the recorded answer (status, media type, body), or None."""
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    if response.status_code != exchange.status:
        return f"status {response.status_code} != recorded {exchange.status}: {response.text[:500]}"
    if media_type != exchange.content_type:
        return f"content type {media_type!r} != recorded {exchange.content_type!r}"
    if exchange.content_type == "application/json":
        body = response.json()
        if body != exchange.body:
            return f"body differs: {json.dumps(body)[:800]} != {json.dumps(exchange.body)[:800]}"
        return None
    if response.text != exchange.body:
        return f"body {response.text[:500]!r} != recorded {exchange.body[:500]!r}"
    return None
