"""The GitLab client and source against the GitLab emulator over HTTP, with a real Redis."""

import re
from collections.abc import AsyncIterator, Iterator

import pytest
from prometheus_client import CollectorRegistry

from gateway.cache import Cache, CacheMetrics
from gateway.errors import BadUserInput, NotFound, UpstreamError, UpstreamRateLimited
from gateway.ratelimit import Bucket, RateLimiter, RateLimitMetrics
from gateway.redis import create_redis
from gateway.upstream import UpstreamAccount, UpstreamClient, UpstreamMetrics, UpstreamPolicy
from resolvers.gitlab import api
from resolvers.gitlab.source import RATE_LIMIT, SYSTEM, TIER, GitLabSource
from tests.emulators.gitlab import GitLabEmulator, GitLabProject
from tests.support.server_thread import ServerThread

TOKEN = "glpat-source-secret-123"
INSTANCE = "gitlab-com"
PROJECT = "service/app-interface"
FILES = f"GET /api/v4/projects/{PROJECT}/repository/files/"
ROOT_OWNERS = "approvers: [root-approvers, carol]\nreviewers: [dave]\n"
ALIASES = "aliases:\n  root-approvers: [alice, bob]\n  sig-reviewers: [erin, frank]\n"
DOCS_OWNERS = "approvers: [gina]\nreviewers: [sig-reviewers]\n"
ISOLATED_OWNERS = "options:\n  no_parent_owners: true\napprovers: [henry]\n"
FAST = UpstreamPolicy(backoff_initial=0.01, backoff_max=0.05, max_total_seconds=10.0)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[GitLabEmulator, str]]:
    emulator = GitLabEmulator()
    emulator.state.token = TOKEN
    project = emulator.state.add_project(PROJECT)
    project.files["master"] = {
        "OWNERS": ROOT_OWNERS,
        "OWNERS_ALIASES": ALIASES,
        "docs/OWNERS": DOCS_OWNERS,
        "secure/OWNERS": ISOLATED_OWNERS,
        "data/app.yml": "name: app\n",
        "image.png": b"\x89PNG\xff\x00",
        "big.txt": "x" * (api.MAX_FILE_BYTES + 1),
    }
    project.files["release/1.0"] = {"OWNERS": "approvers: [ivy]\n"}
    project.files["bare"] = {"README.md": "no owners\n"}
    for index in range(250):
        project.add_member(f"user{index:03d}", 1000 + index)
    emulator.state.add_project("service/empty").files["master"] = {}
    with ServerThread(emulator.app) as server:
        yield emulator, server.url + "/api/v4"


@pytest.fixture
def emulator(served: tuple[GitLabEmulator, str]) -> GitLabEmulator:
    served[0].reset()
    return served[0]


@pytest.fixture
async def source(
    redis_url: str, namespace: str, served: tuple[GitLabEmulator, str], emulator: GitLabEmulator
) -> AsyncIterator[GitLabSource]:
    """A GitLab source as the gateway builds one: real Redis cache and limiter, real HTTP."""
    registry = CollectorRegistry()
    redis = create_redis(redis_url)
    account = UpstreamAccount(
        system=SYSTEM,
        name=INSTANCE,
        base_url=served[1],
        bucket=Bucket(SYSTEM, INSTANCE, TIER, RATE_LIMIT),
        headers=api.headers(TOKEN),
        rate_limit_signal=api.rate_limit_signal,
    )
    limiter = RateLimiter(redis, namespace, RateLimitMetrics(registry))
    client = UpstreamClient(account, limiter, UpstreamMetrics(registry), FAST)
    cache = Cache(redis, namespace, CacheMetrics(registry), local_ttl=0.0)
    yield GitLabSource(INSTANCE, api.GitLabApi(client), cache)
    await client.aclose()
    await redis.aclose()


def _project(emulator: GitLabEmulator) -> GitLabProject:
    found = emulator.state.project(PROJECT)
    assert found is not None
    return found


async def test_owners_expand_aliases_and_inherit_from_parent_directories(
    source: GitLabSource,
) -> None:
    owners = await source.owners(PROJECT, "docs/guide", "master")
    assert owners.approvers == ["alice", "bob", "carol", "gina"]
    assert owners.reviewers == ["dave", "erin", "frank"]


async def test_owners_stop_inheriting_at_no_parent_owners(source: GitLabSource) -> None:
    owners = await source.owners(PROJECT, "/secure/keys/", "master")
    assert (owners.approvers, owners.reviewers) == (["henry"], [])


async def test_owners_at_a_ref_with_a_slash(source: GitLabSource) -> None:
    owners = await source.owners(PROJECT, "docs", "release/1.0")
    assert (owners.approvers, owners.reviewers) == (["ivy"], [])


async def test_second_owners_lookup_is_served_from_redis_without_calling_gitlab(
    source: GitLabSource, emulator: GitLabEmulator
) -> None:
    await source.owners(PROJECT, "docs/guide", "master")
    first = emulator.total_calls()
    assert first == 4, "OWNERS at the root, docs/, docs/guide/ and OWNERS_ALIASES"
    again = await source.owners(PROJECT, "docs/guide", "master")
    assert emulator.total_calls() == first
    assert {lookup.outcome for lookup in again.lookups} == {"hit"}
    assert len(again.lookups) == 4


async def test_owners_of_a_missing_ref_or_project_are_not_found(
    source: GitLabSource, emulator: GitLabEmulator
) -> None:
    with pytest.raises(NotFound, match="no-such-branch"):
        await source.owners(PROJECT, "docs", "no-such-branch")
    with pytest.raises(NotFound, match="service/gone"):
        await source.owners("service/gone", "", "master")
    commits = emulator.total_calls(f"GET /api/v4/projects/{PROJECT}/repository/commits/")
    assert commits == 1


async def test_owners_of_a_ref_without_owners_files_are_empty(source: GitLabSource) -> None:
    owners = await source.owners(PROJECT, "src", "bare")
    assert (owners.approvers, owners.reviewers) == ([], [])
    assert owners.lookups[-1].key.endswith(f"{PROJECT}@bare")


async def test_file_text_by_full_path_and_by_numeric_id(source: GitLabSource) -> None:
    by_path = await source.file_text(PROJECT, "/data//app.yml", "master")
    by_id = await source.file_text("1", "data/app.yml", "master")
    assert by_path.value == by_id.value == "name: app\n"


async def test_missing_file_is_none_and_cached_as_none(
    source: GitLabSource, emulator: GitLabEmulator
) -> None:
    for _ in range(3):
        assert (await source.file_text(PROJECT, "data/none.yml", "master")).value is None
    assert emulator.total_calls(FILES + "data/none.yml/raw") == 1


async def test_file_that_is_not_utf8_or_too_large_is_an_upstream_error(
    source: GitLabSource,
) -> None:
    with pytest.raises(UpstreamError, match="not UTF-8 text"):
        await source.file_text(PROJECT, "image.png", "master")
    with pytest.raises(UpstreamError, match="larger than"):
        await source.file_text(PROJECT, "big.txt", "master")


async def test_ref_exists_for_a_branch_or_commit_id_of_an_existing_project(
    source: GitLabSource, emulator: GitLabEmulator
) -> None:
    commit = _project(emulator).commit_id("release/1.0")
    assert (await source.ref_exists(PROJECT, "release/1.0")).value is True
    assert (await source.ref_exists(PROJECT, commit)).value is True
    assert (await source.ref_exists(PROJECT, "nope")).value is False
    assert (await source.ref_exists("service/gone", commit)).value is False


async def test_project_members_follow_x_next_page_through_every_page(
    source: GitLabSource, emulator: GitLabEmulator
) -> None:
    members = (await source.project_members(PROJECT)).value
    assert len(members) == 250
    assert (members[0].username, members[0].id, members[0].access_level) == ("user000", 1000, 30)
    assert members[-1].username == "user249"
    assert emulator.total_calls(f"GET /api/v4/projects/{PROJECT}/members/all") == 3
    cached = await source.project_members(PROJECT)
    assert cached.lookup.outcome == "hit"
    assert cached.value == members


async def test_members_of_an_unknown_project_are_not_found(source: GitLabSource) -> None:
    with pytest.raises(NotFound, match="service/gone"):
        await source.project_members("service/gone")


async def test_wrong_token_is_an_upstream_error_that_never_shows_the_token(
    source: GitLabSource, emulator: GitLabEmulator
) -> None:
    emulator.state.token = "glpat-rotated"
    try:
        with pytest.raises(UpstreamError) as refused:
            await source.file_text(PROJECT, "OWNERS", "master")
    finally:
        emulator.state.token = TOKEN
    assert refused.value.extensions["status"] == 401
    assert TOKEN not in str(refused.value.extensions) + refused.value.message


async def test_403_is_an_upstream_error(source: GitLabSource, emulator: GitLabEmulator) -> None:
    emulator.fail(403, body={"message": "403 Forbidden"})
    with pytest.raises(UpstreamError) as refused:
        await source.ref_exists(PROJECT, "master")
    assert refused.value.extensions["status"] == 403
    assert emulator.total_calls() == 1


async def test_429_is_retried_after_its_retry_after(
    source: GitLabSource, emulator: GitLabEmulator
) -> None:
    emulator.throttle(times=1, retry_after=1)
    assert (await source.file_text(PROJECT, "data/app.yml", "master")).value == "name: app\n"
    assert emulator.total_calls(FILES + "data/app.yml/raw") == 2


async def test_long_retry_after_is_rate_limited_and_pauses_every_caller(
    source: GitLabSource, emulator: GitLabEmulator
) -> None:
    emulator.throttle(times=1, retry_after=120)
    with pytest.raises(UpstreamRateLimited) as limited:
        await source.file_text(PROJECT, "OWNERS", "master")
    assert limited.value.extensions["retry_after"] > 60
    with pytest.raises(UpstreamRateLimited):
        await source.project_members(PROJECT)
    assert emulator.total_calls() == 1, "the 429 paused the instance's bucket"


async def test_last_request_of_the_quota_pauses_the_bucket_until_the_reset(
    source: GitLabSource, emulator: GitLabEmulator
) -> None:
    emulator.state.quota = 1
    assert (await source.file_text(PROJECT, "data/app.yml", "master")).value == "name: app\n"
    with pytest.raises(UpstreamRateLimited):
        await source.ref_exists(PROJECT, "master")
    assert emulator.total_calls() == 1, "RateLimit-Remaining: 0 paused the instance's bucket"


HOSTILE_PROJECTS = ["service/../members", "service/app-interface/../x", "-x/y", "a/b.git", "a"]
HOSTILE_REFS = ["../members/all", "master/../x", "ref with space", "a?b", "x~1", "a:b"]
HOSTILE_PATHS = ["../OWNERS", "docs/../../members/all", "docs/./OWNERS", "a\x00b", "", "//"]


@pytest.mark.parametrize("project", HOSTILE_PROJECTS)
async def test_malformed_project_is_bad_user_input_before_any_call(
    source: GitLabSource, emulator: GitLabEmulator, project: str
) -> None:
    with pytest.raises(BadUserInput, match="GitLab project"):
        await source.file_text(project, "OWNERS", "master")
    assert emulator.total_calls() == 0


@pytest.mark.parametrize("ref", HOSTILE_REFS)
async def test_malformed_ref_is_bad_user_input_before_any_call(
    source: GitLabSource, emulator: GitLabEmulator, ref: str
) -> None:
    with pytest.raises(BadUserInput, match="git ref"):
        await source.owners(PROJECT, "docs", ref)
    with pytest.raises(BadUserInput, match="git ref"):
        await source.ref_exists(PROJECT, ref)
    assert emulator.total_calls() == 0


@pytest.mark.parametrize("path", HOSTILE_PATHS)
async def test_malformed_file_path_is_bad_user_input_before_any_call(
    source: GitLabSource, emulator: GitLabEmulator, path: str
) -> None:
    with pytest.raises(BadUserInput):
        await source.file_text(PROJECT, path, "master")
    assert emulator.total_calls() == 0


async def test_overlong_file_path_is_bad_user_input(
    source: GitLabSource, emulator: GitLabEmulator
) -> None:
    with pytest.raises(BadUserInput, match="at most"):
        await source.file_text(PROJECT, "a/" * api.MAX_FILE_PATH, "master")
    assert emulator.total_calls() == 0


ONLY_FILES_AND_COMMITS = re.compile(
    r"/api/v4/projects/[^/]+/repository/(files/[^/]+/raw|commits/[^/]+)"
)


async def test_valid_but_hostile_names_stay_inside_their_one_encoded_segment(
    source: GitLabSource, emulator: GitLabEmulator
) -> None:
    assert (await source.file_text("1/members/all", "OWNERS", "master")).value is None
    assert (await source.file_text(PROJECT, "%2e%2e/members", "master")).value is None
    assert (await source.file_text(PROJECT, "OWNERS", "master&ref=release/1.0")).value is None
    assert (await source.file_text(PROJECT, "members/all#x", "master")).value is None
    assert (await source.ref_exists(PROJECT, "master%2Fmembers%2Fall")).value is False
    assert (await source.ref_exists(PROJECT, "#/members/all")).value is False
    assert emulator.total_calls() == 6
    assert all(ONLY_FILES_AND_COMMITS.fullmatch(raw) for raw in emulator.raw_paths), list(
        emulator.raw_paths
    )
    assert emulator.total_calls(f"GET /api/v4/projects/{PROJECT}/members") == 0
