"""GraphiQL that works offline: Strawberry's page, its CDN files served by the gateway itself."""

from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

CDN_PREFIX = "https://unpkg.com/"
ASSETS_DIR = Path(__file__).parent / "assets"
ASSETS_URL = "/graphiql/assets/"


def offline_graphiql_html() -> str:
    """Strawberry's GraphiQL page with every CDN URL pointing at the gateway's own copy.

    The page's SRI hashes stay as they are: the local files are the npm packages' files.
    """
    return get_graphql_ide_html("graphiql").replace(CDN_PREFIX, ASSETS_URL)
