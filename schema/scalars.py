"""Scalars in qontract-server's style: JSON travels as a JSON *string*."""

import json
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

JSON = NewType("JSON", object)
"""Arbitrary JSON; annotate fields with it and build the schema with `SCALARS`."""


def _parse_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


SCALARS: dict[object, ScalarDefinition] = {
    JSON: strawberry.scalar(
        name="JSON",
        description="Arbitrary JSON, serialised as a JSON string (as qontract-server does)",
        serialize=lambda value: json.dumps(value, separators=(",", ":"), sort_keys=True),
        parse_value=_parse_json,
    )
}
"""`StrawberryConfig(scalar_map=SCALARS)`."""
