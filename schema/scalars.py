"""Scalars in qontract-server's style: JSON travels as a JSON *string*."""

import json
from typing import Any, NewType

import strawberry


def _parse_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


JSON = strawberry.scalar(
    NewType("JSON", object),
    name="JSON",
    description="Arbitrary JSON, serialised as a JSON string (as qontract-server does)",
    serialize=lambda value: json.dumps(value, separators=(",", ":"), sort_keys=True),
    parse_value=_parse_json,
)
