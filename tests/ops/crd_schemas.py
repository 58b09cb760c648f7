"""Hand-written subsets of the custom resources' published schemas, for offline validation.

kubernetes-validate ships only the built-in Kubernetes kinds. For the KEDA and Prometheus
Operator kinds the template and rules use, these schemas require what the controllers require
and allow only the fields this repository uses (so a typo fails), with the CRDs' types.
"""

from typing import Any

_STRING: dict[str, Any] = {"type": "string", "minLength": 1}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_DURATION = {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}


def _closed(required: list[str], **properties: Any) -> dict[str, Any]:
    """An object with `properties` only, `required` among them."""
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


def _array(items: dict[str, Any], min_items: int = 0) -> dict[str, Any]:
    return {"type": "array", "items": items, "minItems": min_items}


def _kind(api_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    metadata = _closed(
        ["name"],
        name={"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        labels=_STRING_MAP,
        annotations=_STRING_MAP,
    )
    return _closed(
        ["apiVersion", "kind", "metadata", "spec"],
        apiVersion={"const": api_version},
        kind={"const": kind},
        metadata=metadata,
        spec=spec,
    )


# KEDA's Redis list scaler: every metadata value is a string.
_REDIS_TRIGGER = _closed(
    ["type", "metadata"],
    type={"const": "redis"},
    metadata=_closed(
        ["listName"],
        listName=_STRING,
        listLength={"type": "string", "pattern": "^[1-9][0-9]*$"},
        activationListLength={"type": "string", "pattern": "^[0-9]+$"},
        databaseIndex={"type": "string", "pattern": "^[0-9]+$"},
        enableTLS={"enum": ["true", "false"]},
    ),
    authenticationRef=_closed(["name"], name=_STRING),
)

SCALED_OBJECT = _kind(
    "keda.sh/v1alpha1",
    "ScaledObject",
    _closed(
        ["scaleTargetRef", "triggers"],
        scaleTargetRef=_closed(["name"], apiVersion=_STRING, kind=_STRING, name=_STRING),
        minReplicaCount={"type": "integer", "minimum": 0},
        maxReplicaCount={"type": "integer", "minimum": 1},
        pollingInterval={"type": "integer", "minimum": 1},
        cooldownPeriod={"type": "integer", "minimum": 0},
        triggers=_array(_REDIS_TRIGGER, min_items=1),
    ),
)

TRIGGER_AUTHENTICATION = _kind(
    "keda.sh/v1alpha1",
    "TriggerAuthentication",
    _closed(
        ["secretTargetRef"],
        secretTargetRef=_array(
            _closed(
                ["parameter", "name", "key"],
                parameter={"enum": ["address", "host", "port", "username", "password"]},
                name=_STRING,
                key=_STRING,
            ),
            min_items=1,
        ),
    ),
)

SERVICE_MONITOR = _kind(
    "monitoring.coreos.com/v1",
    "ServiceMonitor",
    _closed(
        ["selector", "endpoints"],
        selector=_closed([], matchLabels=_STRING_MAP),
        endpoints=_array(
            _closed(
                ["port"],
                port=_STRING,
                path={"type": "string", "pattern": "^/"},
                interval=_DURATION,
            ),
            min_items=1,
        ),
    ),
)

_ALERTING_RULE = _closed(
    ["alert", "expr"],
    alert={"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
    expr=_STRING,
    labels=_STRING_MAP,
    annotations=_STRING_MAP,
    **{"for": _DURATION},
)

PROMETHEUS_RULE = _kind(
    "monitoring.coreos.com/v1",
    "PrometheusRule",
    _closed(
        ["groups"],
        groups=_array(_closed(["name", "rules"], name=_STRING, rules=_array(_ALERTING_RULE, 1)), 1),
    ),
)

CUSTOM_RESOURCES: dict[tuple[str, str], dict[str, Any]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): SCALED_OBJECT,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): TRIGGER_AUTHENTICATION,
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICE_MONITOR,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PROMETHEUS_RULE,
}
