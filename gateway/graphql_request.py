"""One reading of a GraphQL HTTP request (JSON body or GET parameters), checked before execution.

Every refusal is a cross_web `HTTPException` with a 4xx status; the view answers it with the
GraphQL-shaped error body. Nothing here is decompressed or parsed twice.
"""

import json
from collections.abc import Mapping
from typing import Any

from cross_web import HTTPException
from strawberry.http import GraphQLRequestData

IDENTITY_ENCODINGS = frozenset({"", "identity"})


def check_body_headers(headers: Mapping[str, str]) -> None:
    """Refuse (415) a POST body that is not uncompressed JSON."""
    encoding = headers.get("content-encoding", "").strip().lower()
    if encoding not in IDENTITY_ENCODINGS:
        raise HTTPException(415, "Content-Encoding is not supported: send the body uncompressed")
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise HTTPException(415, "Unsupported content type: send application/json")


def read_body(body: bytes, max_depth: int) -> GraphQLRequestData:
    """The request in a JSON POST body: UTF-8, an object with the standard fields."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, "The request body is not valid UTF-8") from None
    data = _decode_json(text, "request body", max_depth)
    if not isinstance(data, dict):
        raise HTTPException(400, "The request body must be a JSON object (batching is off)")
    return _request_data(data)


def read_params(params: Mapping[str, object], max_depth: int) -> GraphQLRequestData:
    """The request in GET parameters; `variables` and `extensions` are JSON-encoded."""
    data: dict[str, Any] = dict(params)
    for field in ("variables", "extensions"):
        value = data.pop(field, None)
        if isinstance(value, str) and value:
            data[field] = _decode_json(value, f"`{field}` parameter", max_depth)
    return _request_data(data)


def _decode_json(text: str, what: str, max_depth: int) -> object:
    try:
        value = json.loads(text)
    except RecursionError:
        raise HTTPException(400, f"The {what} is nested deeper than {max_depth} levels") from None
    except ValueError:  # JSONDecodeError, and integers longer than Python converts
        raise HTTPException(400, f"Unable to parse the {what} as JSON") from None
    if _depth_exceeds(value, max_depth):
        raise HTTPException(400, f"The {what} is nested deeper than {max_depth} levels")
    return value


def _depth_exceeds(value: object, max_depth: int) -> bool:
    """True when `value` nests lists or objects more than `max_depth` levels (no recursion)."""
    level: list[object] = [value]
    for _ in range(max_depth):
        below: list[object] = []
        for item in level:
            if isinstance(item, dict):
                below.extend(item.values())
            elif isinstance(item, list):
                below.extend(item)
        if not below:
            return False
        level = below
    return True


def _request_data(data: dict[str, Any]) -> GraphQLRequestData:
    query = data.get("query")
    if not isinstance(query, str | None):
        raise HTTPException(400, "The request's `query` must be a string")
    operation_name = data.get("operationName")
    if not isinstance(operation_name, str | None):
        raise HTTPException(400, "The request's `operationName` must be a string or null")
    variables = data.get("variables")
    if not isinstance(variables, dict | None):
        raise HTTPException(400, "The request's `variables` must be an object or null")
    extensions = data.get("extensions")
    if not isinstance(extensions, dict | None):
        raise HTTPException(400, "The request's `extensions` must be an object or null")
    return GraphQLRequestData(
        query=query, variables=variables, operation_name=operation_name, extensions=extensions
    )
