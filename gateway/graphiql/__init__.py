"""GraphiQL that works offline: Strawberry's page, its CDN files served by the gateway itself."""

from html import escape
from pathlib import Path

import anyio
import structlog
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

from gateway.graphiql.assets import (
    ASSETS_DIR,
    CDN_PREFIX,
    invalid_assets,
    strawberry_graphiql_page,
)

ASSETS_URL = "/graphiql/assets/"
FETCH_COMMAND = "qontract-gateway fetch-graphiql-assets"

log = structlog.get_logger("gateway.graphiql")


def assets_missing_html(missing: list[str]) -> str:
    """A page telling the operator which GraphiQL files are missing and how to fetch them."""
    items = "".join(f"<li><code>{escape(name)}</code></li>" for name in missing)
    return (
        "<!doctype html><html><head><title>GraphiQL assets missing</title></head>"
        '<body style="font-family: sans-serif; margin: 2em">'
        "<h1>GraphiQL is not installed on this gateway</h1>"
        "<p>The GraphQL endpoint works; only the in-browser IDE is missing its files:</p>"
        f"<ul>{items}</ul>"
        f"<p>Run <code>{FETCH_COMMAND}</code> where the gateway is installed, "
        "then restart the gateway.</p></body></html>"
    )


def offline_graphiql_html(assets_dir: Path = ASSETS_DIR) -> str:
    """Strawberry's GraphiQL page with every CDN URL pointing at the gateway's own copy.

    The page's SRI hashes stay as they are: the local files are the npm packages' files.
    When any of them is missing or altered, a notice saying how to fetch them instead.
    """
    missing = [str(asset.relative_path) for asset in invalid_assets(assets_dir)]
    if missing:
        log.warning("graphiql assets missing", missing=missing, fix=FETCH_COMMAND)
        return assets_missing_html(missing)
    return strawberry_graphiql_page().replace(CDN_PREFIX, ASSETS_URL)


class AssetFiles(StaticFiles):
    """The fetched GraphiQL files; every path is a 404 until the directory exists."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, check_dir=False)

    async def check_config(self) -> None:
        """A missing directory means the assets were not fetched yet: not found, not an error."""
        if self.directory is not None and not await anyio.Path(self.directory).is_dir():
            raise HTTPException(404)
