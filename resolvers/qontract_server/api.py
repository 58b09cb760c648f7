"""Typed async client of qontract-server: /sha256, /git-commit-info/<sha>, /graphqlsha/<sha>."""

import base64
import re
from dataclasses import dataclass
from typing import Any, Literal

from gateway.errors import BadUserInput, UpstreamError
from gateway.ratelimit import BucketSpec
from gateway.upstream import UpstreamClient, UpstreamPath

SHA = re.compile(r"^[0-9a-f]{64}$")
"""A bundle sha: sha256 hex, the only caller-supplied text that reaches a qontract-server URL."""

QONTRACT_SERVER = BucketSpec.within(6000, 60, burst=200)
"""qontract-server publishes no limit; this only keeps a runaway gateway from flooding it."""

ANSWERED = frozenset({400, 404, 413})
"""Statuses qontract-server answers meaningfully (validation failure, unknown sha, too large)."""


@dataclass(frozen=True)
class Answer:
    """One qontract-server HTTP answer, as it came: status, content type and body bytes."""

    status: int
    content_type: str
    body: bytes


def auth_headers(
    token: str | None, scheme: Literal["basic", "bearer", "verbatim"]
) -> dict[str, str]:
    """The Authorization header: `token` as is (as qontract-reconcile sends it), basic or bearer."""
    if token is None:
        return {}
    if scheme == "basic":
        return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}
    if scheme == "bearer":
        return {"Authorization": f"Bearer {token}"}
    return {"Authorization": token}


def checked_sha(sha: str) -> str:
    """`sha` when it is 64 lowercase hex digits, else BAD_USER_INPUT (never sent upstream)."""
    if not SHA.match(sha):
        raise BadUserInput("a bundle sha is 64 lowercase hexadecimal digits")
    return sha


class QontractServerApi:
    """The three qontract-server endpoints the gateway uses, through the upstream policy."""

    def __init__(self, client: UpstreamClient) -> None:
        self.client = client

    async def latest_sha(self) -> str:
        """The sha of the bundle qontract-server serves as latest."""
        response = await self.client.request("sha256", "GET", UpstreamPath("/sha256"))
        sha = response.text.strip()
        if not SHA.match(sha):
            raise UpstreamError("qontract-server answered /sha256 with something not a sha")
        return sha

    async def commit_info(self, sha: str) -> Answer:
        """`GET /git-commit-info/<sha>` as answered (404 included)."""
        response = await self.client.request(
            "git_commit_info",
            "GET",
            UpstreamPath("/git-commit-info/{}", checked_sha(sha)),
            answers=ANSWERED,
        )
        return _answer(response.status_code, response.headers, response.content)

    async def query(self, sha: str, payload: dict[str, Any]) -> Answer:
        """`POST /graphqlsha/<sha>` with `payload` (query, variables, operationName), as answered.

        A query only reads, so it is retried like a GET; 400 (validation) and 404 (unknown sha)
        are answers, not failures.
        """
        response = await self.client.request(
            "graphqlsha",
            "POST",
            UpstreamPath("/graphqlsha/{}", checked_sha(sha)),
            json=payload,
            idempotent=True,
            answers=ANSWERED,
        )
        return _answer(response.status_code, response.headers, response.content)


def _answer(status: int, headers: Any, body: bytes) -> Answer:
    content_type = str(headers.get("content-type", "application/json"))
    return Answer(status, content_type, body)
