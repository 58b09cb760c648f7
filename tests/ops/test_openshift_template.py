"""The OpenShift template: every processed object validates offline and matches the gateway."""

import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import pytest
import redis
from pydantic import BaseModel, SecretStr

from gateway.redis_keys import TaskKeys
from gateway.settings import CONFIG_FILE_VARIABLE, Settings
from gateway.tasks.celery_app import RUN_TASK, create_celery_app
from gateway.tasks.engine import QUEUES
from tests.ops.template import (
    REPO,
    TemplateError,
    load_template,
    parameter_values,
    process,
    validate_object,
)
from tests.support.server_thread import ServerThread

PARAMETERS = {"IMAGE_TAG": "0123abc"}
ENV_PREFIX = "QONTRACT_GATEWAY_"


def objects(**given: str) -> list[dict[str, Any]]:
    """The template processed with IMAGE_TAG and `given`."""
    return process(load_template(), {**PARAMETERS, **given})


def of_kind(processed: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The objects of `kind` by name."""
    return {obj["metadata"]["name"]: obj for obj in processed if obj["kind"] == kind}


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers of a Deployment's pod template."""
    found: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return found


def option(args: list[str], flag: str) -> str:
    """The value following `flag` in `args`."""
    return args[args.index(flag) + 1]


def settings_field(env_name: str) -> Any:
    """The pydantic field an environment variable sets (prefix, nested with `__`), or None."""
    model: type[BaseModel] | None = Settings
    field = None
    for part in env_name.removeprefix(ENV_PREFIX).lower().split("__"):
        if model is None or part not in model.model_fields:
            return None
        field = model.model_fields[part]
        nested = field.annotation
        model = nested if isinstance(nested, type) and issubclass(nested, BaseModel) else None
    return field


def test_every_object_validates_offline() -> None:
    """Built-in kinds against the Kubernetes 1.31 OpenAPI (strict), CRDs against their subsets."""
    processed = objects()
    kinds = sorted({obj["kind"] for obj in processed})
    assert kinds == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ScaledObject",
        "Service",
        "ServiceMonitor",
        "TriggerAuthentication",
    ]
    for obj in processed:
        validate_object(obj)
    names = [(obj["kind"], obj["metadata"]["name"]) for obj in processed]
    assert len(names) == len(set(names))


def test_the_validators_catch_mistakes() -> None:
    """A misspelt field fails both the Kubernetes schemas and a CRD subset."""
    processed = objects()
    api = of_kind(processed, "Deployment")["qontract-gateway-api"]
    api["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_object(api)
    scaled = of_kind(processed, "ScaledObject")["qontract-gateway-worker-apply"]
    scaled["spec"]["triggers"][0]["metadata"]["listLength"] = 2
    with pytest.raises(jsonschema.ValidationError):
        validate_object(scaled)


def test_parameters_are_declared_used_and_substituted() -> None:
    """Every parameter is used, IMAGE_TAG is required, ${{...}} values become numbers."""
    template = load_template()
    assert template["apiVersion"] == "template.openshift.io/v1"
    assert template["kind"] == "Template"
    assert set(template) == {"apiVersion", "kind", "metadata", "parameters", "objects"}
    fields = {"name", "displayName", "description", "value", "required", "generate", "from"}
    for parameter in template["parameters"]:
        assert set(parameter) <= fields, parameter
        assert re.fullmatch(r"[A-Z0-9_]+", parameter["name"]), parameter
        assert isinstance(parameter.get("value", ""), str), f"{parameter['name']}: quote it"
    text = str(template["objects"])
    for parameter in template["parameters"]:
        assert re.search(r"\$\{\{?" + parameter["name"] + r"\}", text), parameter["name"]
    with pytest.raises(TemplateError, match="IMAGE_TAG is required"):
        process(template, {})
    processed = objects(API_MIN_REPLICAS="3", WORKER_CONCURRENCY="4", IMAGE="quay.io/x/y")
    api = of_kind(processed, "Deployment")["qontract-gateway-api"]
    assert api["spec"]["replicas"] == 3
    assert (
        of_kind(processed, "HorizontalPodAutoscaler")["qontract-gateway-api"]["spec"]["minReplicas"]
        == 3
    )
    assert containers(api)[0]["image"] == "quay.io/x/y:0123abc"
    worker = of_kind(processed, "Deployment")["qontract-gateway-worker-apply"]
    assert option(containers(worker)[0]["args"], "--concurrency") == "4"


def cli_help(command: str) -> str:
    """`python -m gateway <command> --help` as a user would run it."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_commands_and_flags_exist_in_the_cli() -> None:
    """Each container runs a real subcommand with flags its --help lists; one worker per queue."""
    deployments = of_kind(objects(), "Deployment")
    helps: dict[str, str] = {}
    worker_queues: list[str] = []
    for deployment in deployments.values():
        for container in containers(deployment):
            args = container["args"]
            assert "command" not in container, "the image's ENTRYPOINT is qontract-gateway"
            command = args[0]
            if command not in helps:
                helps[command] = cli_help(command)
            for flag in (arg for arg in args[1:] if arg.startswith("--")):
                assert re.search(rf"\s{flag}\b", helps[command]), (command, flag)
            if command == "serve":
                assert option(args, "--role") == "api"
                assert option(args, "--host") == "0.0.0.0"
            if command == "worker":
                worker_queues.extend(option(args, "--queues").split(","))
    assert set(helps) == {"serve", "worker", "notifier"}
    assert sorted(worker_queues) == sorted(QUEUES)


def test_environment_names_are_settings_and_secrets_are_references() -> None:
    """Every QONTRACT_GATEWAY_ variable is a Settings field; secret ones come from Secrets."""
    processed = objects()
    assert not of_kind(processed, "Secret"), "secrets are referenced, never in the template"
    seen: set[str] = set()
    for deployment in of_kind(processed, "Deployment").values():
        for container in containers(deployment):
            for variable in container["env"]:
                name = variable["name"]
                seen.add(name)
                assert name.startswith(ENV_PREFIX), name
                if name == CONFIG_FILE_VARIABLE:
                    continue
                field = settings_field(name)
                assert field is not None, f"{name} is not a setting"
                secret = name in {"QONTRACT_GATEWAY_REDIS__URL"} or SecretStr in getattr(
                    field.annotation, "__args__", (field.annotation,)
                )
                if secret:
                    assert "value" not in variable, name
                    assert set(variable["valueFrom"]) == {"secretKeyRef"}, name
    assert {"QONTRACT_GATEWAY_AUTH__SECRET", "QONTRACT_GATEWAY_REDIS__URL"} <= seen


def test_pods_run_non_root_on_a_read_only_root_filesystem() -> None:
    """Non-root, no privilege escalation, no capabilities, writable /tmp only, sized requests."""
    for name, deployment in of_kind(objects(), "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]["name"]], name
            writable = [path for path, mount in mounts.items() if not mount.get("readOnly")]
            assert writable == ["/tmp"], name
            config = next(v["value"] for v in container["env"] if v["name"] == CONFIG_FILE_VARIABLE)
            config_mount = next(p for p, m in mounts.items() if "configMap" in volumes[m["name"]])
            assert config.startswith(config_mount + "/"), name
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}, name
            assert "memory" in container["resources"]["limits"], name


def test_service_probes_budgets_and_scalers_point_at_the_right_pods() -> None:
    """Selectors match pod labels; probes use the served port; scalers target Deployments."""
    processed = objects()
    deployments = of_kind(processed, "Deployment")
    labels = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}

    def selects(selector: dict[str, str]) -> set[str]:
        return {name for name, have in labels.items() if selector.items() <= have.items()}

    service = of_kind(processed, "Service")["qontract-gateway"]
    assert selects(service["spec"]["selector"]) == {"qontract-gateway-api"}
    api = containers(deployments["qontract-gateway-api"])[0]
    port = service["spec"]["ports"][0]
    assert port["targetPort"] in {p["name"] for p in api["ports"]}
    assert api["ports"][0]["containerPort"] == int(option(api["args"], "--port"))
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    notifier = containers(deployments["qontract-gateway-notifier"])[0]
    assert notifier["ports"][0]["containerPort"] == int(option(notifier["args"], "--port"))
    assert notifier["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    budgets = of_kind(processed, "PodDisruptionBudget")
    assert sorted(
        name
        for budget in budgets.values()
        for name in selects(budget["spec"]["selector"]["matchLabels"])
    ) == sorted(deployments)
    hpa = of_kind(processed, "HorizontalPodAutoscaler")["qontract-gateway-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "qontract-gateway-api"
    scaled = of_kind(processed, "ScaledObject")
    workers = {name for name in deployments if "-worker-" in name}
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled.values()} == workers
    monitor = of_kind(processed, "ServiceMonitor")["qontract-gateway"]
    assert selects(monitor["spec"]["selector"]["matchLabels"]) == {"qontract-gateway-api"}
    assert monitor["spec"]["endpoints"][0]["port"] == port["name"]


def test_scaled_objects_watch_the_lists_celery_fills(redis_url: str, namespace: str) -> None:
    """A task sent through the gateway's Celery app lands in the list KEDA's trigger names."""
    processed = objects(REDIS_NAMESPACE=namespace)
    deployments = of_kind(processed, "Deployment")
    settings = Settings(redis={"url": redis_url, "namespace": namespace}, role="api")
    app = create_celery_app(settings)
    client = redis.Redis.from_url(redis_url)
    try:
        for scaled in of_kind(processed, "ScaledObject").values():
            target = deployments[scaled["spec"]["scaleTargetRef"]["name"]]
            queue = option(containers(target)[0]["args"], "--queues")
            list_name = scaled["spec"]["triggers"][0]["metadata"]["listName"]
            assert list_name == TaskKeys(namespace).celery_prefix() + queue
            assert client.llen(list_name) == 0
            app.send_task(RUN_TASK, args=["task-id", 1], queue=queue)
            assert client.llen(list_name) == 1
            assert client.type(list_name) == b"list"
    finally:
        app.close()
        for key in client.scan_iter(f"{namespace}:*"):
            client.delete(key)
        client.close()


def test_the_probed_and_scraped_paths_answer(gateway_factory: Callable[..., ServerThread]) -> None:
    """/healthz, /readyz and /metrics of a running gateway answer 200 as the probes expect."""
    server = gateway_factory(role="api")
    for path in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(server.url + path, timeout=10).status_code == 200, path


def test_defaults_need_only_the_image_tag() -> None:
    """Every parameter but IMAGE_TAG has a default, so the README's one-liner works."""
    values = parameter_values(load_template(), PARAMETERS)
    assert all(values.values())


def test_readme_lists_every_parameter_with_its_default() -> None:
    """The README's Deploying table names each parameter and shows its default."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Deploying") :]
    table = [line for line in section.splitlines() if line.startswith("| `")]
    for parameter in load_template()["parameters"]:
        row = next((line for line in table if f"`{parameter['name']}`" in line), None)
        assert row is not None, parameter["name"]
        cells = [cell.strip() for cell in row.split("|")]
        names = [name.strip(" `") for name in cells[1].split(" / ")]
        defaults = [value.strip(" `") for value in cells[2].split(" / ")]
        expected = parameter.get("value", "required")
        assert defaults[names.index(parameter["name"])] == expected, parameter["name"]
