"""The qontract-server stand-in answers every recorded exchange as the real server did."""

import json
from collections.abc import Iterator

import httpx
import pytest
from graphql import build_client_schema, get_introspection_query, print_schema

from tests.emulators.qontract_bundle import (
    BUNDLE_PATH,
    BUNDLE_V2_PATH,
    INTROSPECTION_PATH,
    bundle_sha,
)
from tests.emulators.qontract_server_standin import QontractServerStandin
from tests.support.qontract_goldens import Golden, load_goldens, mismatch, replay

GOLDENS = load_goldens()


@pytest.fixture(scope="module")
def standin() -> Iterator[QontractServerStandin]:
    """The stand-in with the recorded bundle.json, as the goldens were recorded."""
    with QontractServerStandin(BUNDLE_PATH) as server:
        yield server


@pytest.fixture(scope="module")
def two_bundles() -> Iterator[QontractServerStandin]:
    """The stand-in with bundle.json then bundle-v2.json (latest), as golden 18 was recorded."""
    with QontractServerStandin(BUNDLE_PATH, BUNDLE_V2_PATH) as server:
        yield server


def test_every_golden_file_is_replayed() -> None:
    """The parity test covers every recorded file (18 at the time of recording)."""
    assert len(GOLDENS) >= 18
    assert [g.name[:2] for g in GOLDENS] == [f"{i:02d}" for i in range(1, len(GOLDENS) + 1)]


@pytest.mark.parametrize("golden", GOLDENS, ids=[g.name for g in GOLDENS])
def test_standin_answers_as_recorded(
    golden: Golden, standin: QontractServerStandin, two_bundles: QontractServerStandin
) -> None:
    """Status, media type and body equal the real qontract-server's recorded answer."""
    server = two_bundles if golden.latest_sha256 else standin
    with httpx.Client(timeout=30) as client:
        for exchange in golden.exchanges:
            problem = mismatch(replay(client, server.url, exchange), exchange)
            assert problem is None, f"{golden.name} ({golden.what}): {problem}"
        if golden.latest_sha256:
            assert client.get(server.url + "/sha256").text == golden.latest_sha256


def test_recorded_bundles_have_the_recorded_shas() -> None:
    """The sha of a bundle is the sha256 of its file (the goldens name both)."""
    assert bundle_sha(BUNDLE_PATH).startswith("cb210e68")
    assert bundle_sha(BUNDLE_V2_PATH).startswith("067285db")


def test_introspection_equals_the_real_servers(standin: QontractServerStandin) -> None:
    """The standard introspection query describes the same schema: every type, in the same order.

    The introspection meta-types (`__Type`, `@deprecated`, ...) come from graphql-core 3.3, not
    graphql-js 16, and differ in details no client schema depends on; they are left out of the
    raw comparison and covered by the printed-schema comparison.
    """
    recorded = json.loads(INTROSPECTION_PATH.read_text())
    with httpx.Client(timeout=30) as client:
        answer = client.post(standin.graphql_url, json={"query": get_introspection_query()})
    assert answer.status_code == 200
    body = answer.json()
    assert body["extensions"] == recorded["extensions"]
    served, real = body["data"]["__schema"], recorded["data"]["__schema"]
    assert [t["name"] for t in served["types"]] == [t["name"] for t in real["types"]]
    app_types = [t for t in served["types"] if not t["name"].startswith("__")]
    assert app_types == [t for t in real["types"] if not t["name"].startswith("__")]
    assert served["queryType"] == real["queryType"]
    assert [d["name"] for d in served["directives"]] == [d["name"] for d in real["directives"]]
    assert print_schema(build_client_schema(body["data"])) == print_schema(
        build_client_schema(recorded["data"])
    )
