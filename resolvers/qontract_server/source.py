"""qontract-server answers cached by (sha, document, variables), the latest sha, and schemas."""

import asyncio
import hashlib
import json
import time
from typing import Any

import redis.asyncio as aioredis
from graphql import get_introspection_query
from redis.exceptions import RedisError

from gateway.errors import BundleNotFound, GatewayError, UpstreamError
from gateway.redis_keys import AnswerKeys, SchemaKeys
from resolvers.qontract_server.answers import SharedAnswers
from resolvers.qontract_server.api import Answer, QontractServerApi, checked_sha
from resolvers.qontract_server.settings import QontractServerSettings

UPSTREAM = "qontract-server"
INTROSPECTION_TTL = 7 * 86_400.0
MAX_COMMITS = 256
"""`/git-commit-info/<sha>` answers kept (a few hundred bytes each, immutable per sha)."""


def named(error: GatewayError) -> GatewayError:
    """`error` with `extensions.upstream: "qontract-server"` (its class, message and code kept)."""
    if error.extensions.get("upstream") == UPSTREAM:
        return error
    extra = {k: v for k, v in error.extensions.items() if k != "code"}
    return type(error)(error.message, code=error.code, **{**extra, "upstream": UPSTREAM})


class UnknownBundle(BundleNotFound):
    """BUNDLE_NOT_FOUND, holding qontract-server's own 404 answer for transparent replies."""

    def __init__(self, sha: str, answer: Answer) -> None:
        super().__init__(f"qontract-server does not know bundle {sha}", upstream=UPSTREAM)
        self.answer = answer


class QontractServerSource:
    """Pinned reads of qontract-server: each answer fetched once per (sha, document, variables).

    A sha is immutable, so a stored answer is exact. Answers live in process (bounded in bytes,
    large ones compressed) and, up to `redis_entry_bytes` once compressed, in Redis; one
    replica fetches an answer at a time (`SharedAnswers`). Unknown shas (a replica that has not
    loaded the bundle yet) are retried for `unknown_sha_wait` seconds.
    """

    system = UPSTREAM
    upstream = UPSTREAM

    def __init__(
        self,
        api: QontractServerApi,
        redis: "aioredis.Redis",
        namespace: str,
        settings: QontractServerSettings,
    ) -> None:
        self.api = api
        self.redis = redis
        self.schema_keys = SchemaKeys(namespace, UPSTREAM)
        self.settings = settings
        self.answers = SharedAnswers(
            redis,
            AnswerKeys(namespace, UPSTREAM),
            settings.answer_cache_bytes,
            settings.redis_entry_bytes,
            settings.answer_ttl,
        )
        self._commits: dict[str, Answer] = {}
        self._latest: tuple[str, float] | None = None
        self._latest_lock = asyncio.Lock()

    async def latest_sha(self, fresh: bool = False) -> str:
        """The latest bundle sha, read at most once per `latest_ttl` seconds (unless `fresh`)."""
        latest = self._latest
        ttl = 0.0 if fresh else self.settings.latest_ttl
        if latest is not None and time.monotonic() - latest[1] < ttl:
            return latest[0]
        async with self._latest_lock:
            latest = self._latest
            if latest is not None and time.monotonic() - latest[1] < ttl:
                return latest[0]
            try:
                sha = await self.api.latest_sha()
            except GatewayError as error:
                raise named(error) from None
            self._latest = (sha, time.monotonic())
            return sha

    async def answer(self, sha: str, payload: dict[str, Any]) -> Answer:
        """qontract-server's answer to `payload` on bundle `sha` (cached; BundleNotFound if none).

        BundleNotFound carries qontract-server's own 404 answer in `answer`.
        """
        checked_sha(sha)
        request = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        ident = hashlib.sha256(f"{sha}:{request}".encode()).hexdigest()
        try:
            return await self.answers.get(ident, lambda: self._fetch(sha, payload))
        except UnknownBundle:
            raise
        except GatewayError as error:
            raise named(error) from None

    async def _fetch(self, sha: str, payload: dict[str, Any]) -> Answer:
        """One answer from qontract-server; an unknown sha is asked again until the wait ends."""
        deadline = time.monotonic() + self.settings.unknown_sha_wait
        pause = 0.05
        while True:
            answer = await self.api.query(sha, payload)
            if answer.status != 404:
                return answer
            if time.monotonic() + pause > deadline:
                raise UnknownBundle(sha, answer)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

    async def commit_info(self, sha: str) -> Answer:
        """`/git-commit-info/<sha>` as qontract-server answers it (immutable per sha)."""
        found = self._commits.get(checked_sha(sha))
        if found is not None:
            return found
        try:
            answer = await self.api.commit_info(sha)
        except GatewayError as error:
            raise named(error) from None
        if answer.status == 200:
            if len(self._commits) >= MAX_COMMITS:
                self._commits.pop(next(iter(self._commits)))
            self._commits[sha] = answer
        return answer

    async def introspection(self, sha: str) -> tuple[str, dict[str, Any]]:
        """(fingerprint, introspection data) of bundle `sha`'s schema, shared through Redis.

        The fingerprint is the sha256 of the introspection; a new bundle with the same schema
        (a data-only reload) costs one introspection per sha across all replicas, then none.
        """
        by_sha = self.schema_keys.by_sha(sha)
        last = self.schema_keys.last()
        try:
            fingerprint = await self.redis.get(by_sha)
            if fingerprint is not None:
                stored = await self._stored_schema(_text(fingerprint))
                if stored is not None:
                    return _text(fingerprint), stored
        except RedisError:
            pass
        answer = await self.answer(sha, {"query": get_introspection_query(descriptions=True)})
        body = json.loads(answer.body)
        data = body.get("data") if isinstance(body, dict) else None
        if answer.status != 200 or not isinstance(data, dict) or "__schema" not in data:
            raise named(UpstreamError("qontract-server did not answer its introspection"))
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        fingerprint_text = hashlib.sha256(text.encode()).hexdigest()
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(self._schema_key(fingerprint_text), text, ex=int(INTROSPECTION_TTL))
            pipe.set(by_sha, fingerprint_text, ex=int(INTROSPECTION_TTL))
            pipe.set(last, fingerprint_text)
            await pipe.execute()
        except RedisError:
            pass
        return fingerprint_text, data

    async def last_schema(self) -> tuple[str, dict[str, Any]] | None:
        """The last schema any replica learned (start-up while qontract-server is down)."""
        try:
            fingerprint = await self.redis.get(self.schema_keys.last())
            if fingerprint is None:
                return None
            stored = await self._stored_schema(_text(fingerprint))
        except RedisError:
            return None
        return None if stored is None else (_text(fingerprint), stored)

    def _schema_key(self, fingerprint: str) -> str:
        return self.schema_keys.by_fingerprint(fingerprint)

    async def _stored_schema(self, fingerprint: str) -> dict[str, Any] | None:
        raw = await self.redis.get(self._schema_key(fingerprint))
        if raw is None:
            return None
        data: dict[str, Any] = json.loads(raw)
        return data


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
