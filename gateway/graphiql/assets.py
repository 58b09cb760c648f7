"""The files Strawberry's GraphiQL page loads from its CDN, fetched from npm and checked by SRI."""

import base64
import hashlib
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

CDN_PREFIX = "https://unpkg.com/"
ASSETS_DIR = Path(__file__).parent / "assets"
# "<package>@<version>/<file>" after the CDN prefix; scoped packages start with "@scope/".
CDN_PATH = re.compile(r"(?P<package>(?:@[^/]+/)?[^/@]+)@(?P<version>[^/]+)/(?P<file>.+)")


class AssetFetchError(RuntimeError):
    """An asset could not be fetched, or its content does not match the page's SRI hash."""


@dataclass(frozen=True)
class Asset:
    """One file the page loads: npm package, version, path inside the package, SRI hash."""

    package: str
    version: str
    file: str
    integrity: str

    @property
    def spec(self) -> str:
        """The npm package spec, `name@version`."""
        return f"{self.package}@{self.version}"

    @property
    def relative_path(self) -> Path:
        """Where the file lives under the assets directory (and after the CDN prefix)."""
        return Path(self.spec) / self.file

    def matches(self, content: bytes) -> bool:
        """True when `content` has the page's SRI hash."""
        algorithm, _, expected = self.integrity.partition("-")
        digest = hashlib.new(algorithm, content).digest()
        return base64.b64encode(digest).decode() == expected


class _CdnReferences(HTMLParser):
    """Collects (url, integrity) of every `src`/`href` attribute of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.references: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            url = values.get(name)
            if url is not None:
                self.references.append((url, values.get("integrity")))


def strawberry_graphiql_page() -> str:
    """Strawberry's GraphiQL page as Strawberry ships it, CDN URLs included."""
    return get_graphql_ide_html("graphiql")


def external_urls(html: str) -> list[str]:
    """Every `src`/`href` of `html` that a browser would fetch from another host."""
    parser = _CdnReferences()
    parser.feed(html)
    return [url for url, _ in parser.references if url.startswith(("http:", "https:", "//"))]


def page_assets(html: str | None = None) -> list[Asset]:
    """The CDN files `html` (default: Strawberry's page) loads, each with its SRI hash."""
    parser = _CdnReferences()
    parser.feed(strawberry_graphiql_page() if html is None else html)
    assets = []
    for url, integrity in parser.references:
        if not url.startswith(CDN_PREFIX):
            continue
        match = CDN_PATH.fullmatch(url.removeprefix(CDN_PREFIX))
        if match is None or not integrity:
            raise AssetFetchError(f"cannot map {url} to an npm file with an SRI hash")
        assets.append(Asset(**match.groupdict(), integrity=integrity))
    return assets


def invalid_assets(dest: Path = ASSETS_DIR) -> list[Asset]:
    """The page's assets that are missing under `dest` or do not match their SRI hash."""
    return [
        asset
        for asset in page_assets()
        if not (dest / asset.relative_path).is_file()
        or not asset.matches((dest / asset.relative_path).read_bytes())
    ]


def _npm_pack(specs: list[str], workdir: Path, npm: str) -> dict[str, Path]:
    """Download the tarballs of `specs` into `workdir` with one `npm pack`; spec -> tarball."""
    binary = shutil.which(npm)
    if binary is None:
        raise AssetFetchError(f"{npm} is not on PATH; it is needed to fetch the GraphiQL assets")
    result = subprocess.run(
        [binary, "pack", *specs, "--json", "--pack-destination", str(workdir)],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssetFetchError(f"npm pack {' '.join(specs)} failed:\n{result.stderr.strip()}")
    packed = json.loads(result.stdout)
    return {entry["id"]: workdir / entry["filename"] for entry in packed}


def _extract(asset: Asset, tarball: Path, dest: Path) -> None:
    """Write `asset` from `tarball` under `dest`, only if it matches its SRI hash."""
    member = f"package/{asset.file}"
    with tarfile.open(tarball) as archive:
        try:
            source = archive.extractfile(member)
        except KeyError:
            source = None
        if source is None:
            raise AssetFetchError(f"{tarball.name} has no file {member}")
        content = source.read()
    if not asset.matches(content):
        raise AssetFetchError(
            f"{asset.spec}/{asset.file} from npm does not match the page's integrity "
            f"{asset.integrity}; refusing to install it"
        )
    target = dest / asset.relative_path
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(content)
    partial.replace(target)


def fetch_assets(dest: Path = ASSETS_DIR, npm: str = "npm") -> list[Asset]:
    """Fetch the page's missing or invalid assets into `dest` with `npm pack`; return those."""
    wanted = invalid_assets(dest)
    if not wanted:
        return []
    with tempfile.TemporaryDirectory(prefix="qontract-gateway-graphiql-") as workdir:
        tarballs = _npm_pack(sorted({asset.spec for asset in wanted}), Path(workdir), npm)
        for asset in wanted:
            _extract(asset, tarballs[asset.spec], dest)
    return wanted
