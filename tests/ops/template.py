"""Process an OpenShift Template in Python as `oc process` does: parameters into its objects."""

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests.ops.crd_schemas import CUSTOM_RESOURCES

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "openshift" / "qontract-gateway.yaml"
# `${{NAME}}` as a whole value is replaced by the parameter parsed as JSON (numbers, booleans);
# `${NAME}` anywhere in a string by the parameter's text.
_WHOLE = re.compile(r"^\$\{\{([A-Z0-9_]+)\}\}$")
_INLINE = re.compile(r"\$\{([A-Z0-9_]+)\}")


class TemplateError(ValueError):
    """A parameter the template needs has no value, or an object names an unknown one."""


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The Template object in `path`."""
    template: dict[str, Any] = yaml.safe_load(path.read_text())
    return template


def parameter_values(template: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    """Each parameter's value: given, else its default; TemplateError for a missing required one."""
    declared = {parameter["name"]: parameter for parameter in template["parameters"]}
    unknown = set(given) - set(declared)
    if unknown:
        raise TemplateError(f"unknown parameters: {sorted(unknown)}")
    values: dict[str, str] = {}
    for name, parameter in declared.items():
        value = given.get(name, parameter.get("value"))
        if value is None and parameter.get("required"):
            raise TemplateError(f"parameter {name} is required")
        values[name] = "" if value is None else str(value)
    return values


def process(template: dict[str, Any], given: dict[str, str]) -> list[dict[str, Any]]:
    """The template's objects with every parameter reference replaced."""
    values = parameter_values(template, given)

    def value_of(name: str) -> str:
        if name not in values:
            raise TemplateError(f"the template refers to undeclared parameter {name}")
        return values[name]

    def substitute(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: substitute(value) for key, value in node.items()}
        if isinstance(node, list):
            return [substitute(item) for item in node]
        if isinstance(node, str):
            whole = _WHOLE.match(node)
            if whole:
                return json.loads(value_of(whole.group(1)))
            return _INLINE.sub(lambda match: value_of(match.group(1)), node)
        return node

    objects: list[dict[str, Any]] = substitute(template["objects"])
    return objects


KUBERNETES_VERSION = "1.31"  # OpenShift 4.18


def validate_object(obj: dict[str, Any]) -> None:
    """Validate `obj` offline: built-in kinds against kubernetes-validate's strict OpenAPI
    schemas, KEDA and Prometheus Operator kinds against crd_schemas; raise on any problem."""
    custom = CUSTOM_RESOURCES.get((obj["apiVersion"], obj["kind"]))
    if custom is not None:
        jsonschema.Draft202012Validator(custom).validate(obj)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
