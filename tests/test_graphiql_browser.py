"""GraphiQL at /graphql runs a query in headless Chromium, with no request leaving the host."""

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.chromium import REQUIRE_BROWSER_VARIABLE, Chromium
from tests.support.required import skip_unless_required
from tests.support.server_thread import ServerThread

CHROMIUM_VARIABLE = "QONTRACT_GATEWAY_CHROMIUM"
SCREENSHOT = Path("/tmp/qontract-gateway-graphiql.png")
QUERY = "{ gateway_info_v1 { version redis_mode } }"
QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
RESPONSE_EDITOR = ".graphiql-response .CodeMirror"
LOOPBACK = {"127.0.0.1", "localhost"}
# URLs the browser resolves from the page itself (GraphiQL's inlined fonts), not the network.
IN_PAGE_SCHEMES = {"data", "blob"}


@pytest.fixture
def chromium() -> Iterator[Chromium]:
    """Headless Chromium (`chromium`, or $QONTRACT_GATEWAY_CHROMIUM) with a fresh profile."""
    wanted = os.environ.get(CHROMIUM_VARIABLE, "chromium")
    binary = shutil.which(wanted)
    if binary is None:
        skip_unless_required(
            f"Chromium is not installed: {wanted} not found ({CHROMIUM_VARIABLE})",
            REQUIRE_BROWSER_VARIABLE,
        )
    with Chromium(binary) as browser:
        yield browser


@pytest.mark.browser
def test_graphiql_runs_a_query_offline_in_chromium(
    graphiql_assets: Path, gateway: ServerThread, chromium: Chromium
) -> None:
    page = chromium.open_page()
    try:
        page.send("Page.navigate", url=f"{gateway.url}/graphql")
        editor = f"document.querySelector({json.dumps(QUERY_EDITOR)})?.CodeMirror"
        # Edits made before the schema arrives can be undone by GraphiQL's re-render.
        page.wait_for(f"!!{editor}?.options.lint?.schema")
        page.evaluate(f"{editor}.setValue({json.dumps(QUERY)})")
        page.wait_for(f"{editor}.getValue() === {json.dumps(QUERY)}")
        page.click(".graphiql-execute-button")
        response = page.wait_for(
            f"(() => {{ const text = document.querySelector({json.dumps(RESPONSE_EDITOR)})"
            "?.CodeMirror.getValue();"
            " return text && text.includes('redis_mode') ? text : null; })()"
        )
        page.screenshot(SCREENSHOT)
        requested = page.requested_urls()
    finally:
        page.close()

    assert json.loads(response)["data"]["gateway_info_v1"]["redis_mode"] == "external"
    assert any("/graphiql/assets/graphiql@" in url for url in requested)
    outside = [
        url
        for url in requested
        if urlsplit(url).scheme not in IN_PAGE_SCHEMES and urlsplit(url).hostname not in LOOPBACK
    ]
    assert outside == []
