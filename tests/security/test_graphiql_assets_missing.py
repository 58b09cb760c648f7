"""Before `fetch-graphiql-assets` has run, asset URLs are a plain 404, not a 500."""

from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.settings import Settings
from tests.support.server_log import server_errors
from tests.support.server_thread import ServerThread

ASSET = "/graphiql/assets/graphiql@3.8.3/graphiql.min.js"


@pytest.mark.parametrize("make_dir", [False, True], ids=["missing", "empty"])
def test_assets_not_fetched_yet_are_a_404_without_a_traceback(
    redis_url: str, namespace: str, tmp_path: Path, make_dir: bool
) -> None:
    assets = tmp_path / "assets"
    if make_dir:
        assets.mkdir()
    settings = Settings(redis={"url": redis_url, "namespace": namespace})
    with server_errors() as errors, ServerThread(create_app(settings, assets)) as server:
        responses = [httpx.get(f"{server.url}{ASSET}", timeout=10) for _ in range(2)]
        page = httpx.get(f"{server.url}/graphql", headers={"accept": "text/html"}, timeout=10)
    assert [response.status_code for response in responses] == [404, 404]
    assert "qontract-gateway fetch-graphiql-assets" in page.text
    assert errors == []
