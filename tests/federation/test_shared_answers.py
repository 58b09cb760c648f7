"""qontract-server answers fetched once across gateway processes, kept compressed, and shared
through Redis as raw bytes (`resolvers/qontract_server/answers.py`)."""

import concurrent.futures
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
import yaml

from gateway.redis_keys import AnswerKeys
from resolvers.qontract_server.answers import AnswerMemory, Kept, SharedAnswers
from resolvers.qontract_server.api import Answer
from tests.emulators.qontract_bundle import BUNDLE_PATH, bundle_sha, scaled_bundle
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.support.serve_process import running

SHA = bundle_sha(BUNDLE_PATH)
USERS = "{ users_v1 { path name org_username roles { path name } } }"
LARGE = (
    "{ users_v1 { path name org_username github_username pagerduty_username "
    "roles { path name description permissions { path name } } } }"
)


@contextlib.contextmanager
def gateways(
    count: int, standin: QontractServerStandin, redis_url: str, namespace: str, folder: Path
) -> Iterator[list[str]]:
    """`count` `serve` processes federating `standin`, sharing one Redis namespace."""
    config = folder / "gateway.yaml"
    upstreams = {"qontract_server": {"url": standin.url, "poll_interval": 600}}
    config.write_text(yaml.safe_dump({"upstreams": upstreams}))
    env = {
        "QONTRACT_GATEWAY_REDIS__URL": redis_url,
        "QONTRACT_GATEWAY_REDIS__NAMESPACE": namespace,
    }
    with contextlib.ExitStack() as stack:
        urls = [
            stack.enter_context(running("serve", "--config", str(config), env=env))[1]
            for _ in range(count)
        ]
        yield urls


def ask(url: str, sha: str, query: str) -> httpx.Response:
    """POST `query` pinned to `sha`."""
    return httpx.post(f"{url}/graphqlsha/{sha}", json={"query": query}, timeout=60)


@pytest.mark.parametrize(("users", "query"), [(0, USERS), (3000, LARGE)], ids=["small", "large"])
def test_one_answer_is_fetched_once_by_three_gateway_processes(
    users: int, query: str, redis_url: str, namespace: str, tmp_path: Path
) -> None:
    """Three replicas asked the same pinned query at once: qontract-server answers it once,
    every replica serves its bytes; asked again, none of them asks qontract-server. Holds for
    an answer of megabytes too (stored compressed, under `redis_entry_bytes`: 1 MB)."""
    with QontractServerStandin(BUNDLE_PATH) as standin:
        sha = standin.load(scaled_bundle(users=users)) if users else SHA
        direct = ask(standin.url, sha, query).content
        with gateways(3, standin, redis_url, namespace, tmp_path) as urls:
            standin.reset()
            standin.delay_seconds = 0.5  # all three ask while the first fetch is under way
            with concurrent.futures.ThreadPoolExecutor(6) as pool:
                answers = list(pool.map(lambda url: ask(url, sha, query), urls * 2))
            standin.delay_seconds = 0.0
            assert len(direct) > (2_000_000 if users else 0)
            assert [a.status_code for a in answers] == [200] * 6
            assert {a.content for a in answers} == {direct}
            assert standin.count("/graphqlsha/") == 1
            assert {ask(url, sha, query).content for url in urls} == {direct}
            assert standin.count("/graphqlsha/") == 1


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """An asyncio client of the test Redis."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


def replica(client: aioredis.Redis, namespace: str, redis_entry_bytes: int) -> SharedAnswers:
    """One replica's answer store (its own memory) on the shared Redis."""
    return SharedAnswers(
        client, AnswerKeys(namespace, "qontract-server"), 8_000_000, redis_entry_bytes, 60.0
    )


def counted(answer: Answer, calls: list[int]) -> Callable[[], Awaitable[Answer]]:
    """A fetch returning `answer`, counting its calls."""

    async def fetch() -> Answer:
        calls.append(1)
        return answer

    return fetch


async def test_an_answer_too_large_for_redis_is_fetched_once_per_replica(
    redis_client: aioredis.Redis, namespace: str
) -> None:
    """Even compressed above `redis_entry_bytes`: Redis holds a marker, the other replica
    fetches it itself (once), and each keeps its copy in memory."""
    answer = Answer(200, "application/json", os.urandom(200_000))  # does not compress
    calls: list[int] = []
    first, second = (replica(redis_client, namespace, 1_000) for _ in range(2))
    assert await first.get("a" * 64, counted(answer, calls)) == answer
    await first.settled()
    for store in (second, second, first):
        assert await store.get("a" * 64, counted(answer, calls)) == answer
    assert len(calls) == 2
    assert first.memory.size == len(answer.body)  # incompressible: kept as is


async def test_a_redis_value_the_gateway_did_not_write_is_a_miss(
    redis_client: aioredis.Redis, namespace: str
) -> None:
    """Whatever else sits under an answer's key is ignored: the answer is fetched."""
    keys = AnswerKeys(namespace, "qontract-server")
    await redis_client.set(keys.value("b" * 64), b"not an answer")
    answer = Answer(400, "application/json", b'{"errors":[]}')
    calls: list[int] = []
    store = replica(redis_client, namespace, 1_000_000)
    assert await store.get("b" * 64, counted(answer, calls)) == answer
    assert calls == [1]


def test_large_answers_are_kept_compressed_within_the_byte_bound() -> None:
    """Kept compressed (app-interface JSON shrinks ~15 x), least recently used out first."""
    body = b'{"data":{"users_v1":[' + b'{"name":"Alice Archer","path":"/u.yml"},' * 5000 + b"]}}"
    kept = Kept.of(Answer(200, "application/json", body))
    assert kept.compressed
    assert len(kept.stored) < len(body) // 10
    assert Kept.decoded(kept.encoded()) == kept
    memory = AnswerMemory(3 * len(kept.stored))
    for name in "xyzw":
        memory.put(name, kept)
    assert memory.get("x") is None
    assert memory.get("w") == Answer(200, "application/json", body)
    assert memory.size == 3 * len(kept.stored)
