"""GraphiQL's files: derived from Strawberry's page, fetched from npm, refused when altered."""

import json
import sys
from pathlib import Path

import pytest

from gateway.graphiql import FETCH_COMMAND, offline_graphiql_html
from gateway.graphiql.assets import (
    CDN_PREFIX,
    AssetFetchError,
    external_urls,
    fetch_assets,
    invalid_assets,
    page_assets,
    strawberry_graphiql_page,
)

# Stands in for npm: packs each requested spec with altered copies of its FILES (spec -> files).
TAMPERING_NPM = """\
import io, json, sys, tarfile
from pathlib import Path

files = json.loads(FILES)
arguments = sys.argv[2:]
destination = Path(arguments[arguments.index("--pack-destination") + 1])
packed = []
for spec in arguments[: arguments.index("--json")]:
    filename = spec.replace("@", "").replace("/", "-") + ".tgz"
    with tarfile.open(destination / filename, "w:gz") as archive:
        for file in files[spec]:
            member = tarfile.TarInfo(f"package/{file}")
            member.size = len(b"tampered")
            archive.addfile(member, io.BytesIO(b"tampered"))
    packed.append({"id": spec, "filename": filename})
print(json.dumps(packed))
"""


def test_strawberry_page_loads_seven_cdn_files_each_pinned_by_a_sha384_hash() -> None:
    assets = page_assets()
    assert len(assets) == 7
    assert {asset.package for asset in assets} == {
        "react",
        "react-dom",
        "js-cookie",
        "graphiql",
        "@graphiql/plugin-explorer",
    }
    assert all(asset.integrity.startswith("sha384-") for asset in assets)
    assert all(url.startswith(CDN_PREFIX) for url in external_urls(strawberry_graphiql_page()))


def test_offline_page_loads_every_file_from_the_gateway(graphiql_assets: Path) -> None:
    html = offline_graphiql_html(graphiql_assets)
    assert external_urls(html) == []
    assert "/graphiql/assets/graphiql@" in html


def test_fetching_again_is_a_no_op_once_every_file_is_valid(graphiql_assets: Path) -> None:
    assert fetch_assets(graphiql_assets, npm="no-such-npm") == []


def test_page_tells_the_operator_to_fetch_the_assets_when_they_are_missing(
    tmp_path: Path,
) -> None:
    html = offline_graphiql_html(tmp_path)
    assert FETCH_COMMAND in html
    assert "graphiql@3.8.3/graphiql.min.js" in html
    assert external_urls(html) == []


def test_fetch_refuses_files_that_do_not_match_the_page_hash(tmp_path: Path) -> None:
    npm = tmp_path / "npm"
    files: dict[str, list[str]] = {}
    for asset in page_assets():
        files.setdefault(asset.spec, []).append(asset.file)
    npm.write_text(f"#!{sys.executable}\nFILES = {json.dumps(files)!r}\n{TAMPERING_NPM}")
    npm.chmod(0o755)
    dest = tmp_path / "assets"

    with pytest.raises(AssetFetchError, match="does not match the page's integrity"):
        fetch_assets(dest, npm=str(npm))
    assert len(invalid_assets(dest)) == 7
    assert not dest.exists() or not any(path.is_file() for path in dest.rglob("*"))
