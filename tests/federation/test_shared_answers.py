"""qontract-server answers fetched once across gateway processes, kept compressed, and shared
through Redis as raw bytes (`resolvers/qontract_server/answers.py`)."""

import concurrent.futures
import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

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
